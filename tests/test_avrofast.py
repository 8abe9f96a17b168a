"""The schema-compiled Avro walker: same values as fastavro, bounds-checked, with a fallback."""

from __future__ import annotations

import io
import json

import fastavro
import pytest

from alertlib.io import avrofast
from alertlib.io.packets import (
    _HISTORY_FIELDS,
    CUTOUT_FIELDS,
    PacketError,
    _stamp,
    iter_avro_records,
    read_avro_container,
)
from tests.test_packets import CUTOUT_SCHEMA, write_avro

# Every construct the walker compiles: primitives, enum, fixed, maps, arrays of records (histories),
# a flat record (the candidate), a nullable record, nested unions, cutouts as records and as bytes.
RICH_SCHEMA = {
    "type": "record",
    "name": "alert",
    "namespace": "test",
    "fields": [
        {"name": "alertId", "type": "long"},
        {"name": "flag", "type": "boolean"},
        {"name": "ratio", "type": ["null", "float", "double"]},
        {"name": "objectId", "type": ["null", "string"]},
        {
            "name": "candidate",
            "type": {
                "type": "record",
                "name": "candidate",
                "fields": [
                    {"name": "candid", "type": "long"},
                    {"name": "jd", "type": "double"},
                    {"name": "magpsf", "type": ["null", "float"]},
                    {"name": "fid", "type": "int"},
                    {"name": "isdiffpos", "type": "string"},
                    {"name": "bright", "type": ["boolean", "null"]},
                    {"name": "raw", "type": ["null", "bytes"]},
                ],
            },
        },
        {"name": "band", "type": {"type": "enum", "name": "band", "symbols": ["g", "r", "i"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "digest", "size": 4}},
        {"name": "extras", "type": {"type": "map", "values": ["null", "double"]}},
        {
            "name": "prv_candidates",
            "type": ["null", {"type": "array", "items": "candidate"}],
        },
        {
            "name": "nested",
            "type": {"type": "array", "items": {"type": "map", "values": {"type": "array", "items": "long"}}},
        },
        {
            "name": "host",
            "type": ["null", {"type": "record", "name": "host", "fields": [{"name": "z", "type": "double"}]}],
        },
        {
            "name": "cutoutScience",
            "type": ["null", CUTOUT_SCHEMA],
        },
        {"name": "cutoutTemplate", "type": ["null", "cutout"]},
        {"name": "cutoutDifference", "type": ["null", "bytes"]},
    ],
}


def rich_record(i: int) -> dict:
    candidate = {
        "candid": 10**17 + i,  # beyond float64's exact integers: must stay an int
        "jd": 2460000.123456789 + i,
        "magpsf": None if i % 3 == 0 else 18.25 + i,
        "fid": -i,
        "isdiffpos": "tü"[: 1 + i % 2],
        "bright": None if i % 2 else bool(i % 4),
        "raw": None if i % 2 else bytes([i, 0, 255]),
    }
    return {
        "alertId": -(2**62) + i,
        "flag": bool(i % 2),
        "ratio": [None, 0.5, 1e300][i % 3],
        "objectId": None if i == 1 else f"obj{i}",
        "candidate": candidate,
        "band": "gri"[i % 3],
        "digest": bytes([i, i + 1, i + 2, i + 3]),
        "extras": {f"k{j}": (None if j == 1 else j / 3) for j in range(i % 4)},
        "prv_candidates": None if i % 2 else [candidate] * (i + 2),
        "nested": [{"a": list(range(i)), "b": []}] * (i % 3),
        "host": None if i % 2 else {"z": 0.01 * i},
        "cutoutScience": {"fileName": "s.fits", "stampData": b"S" * (i + 1)},
        "cutoutTemplate": None if i == 2 else {"fileName": "t.fits", "stampData": b""},
        "cutoutDifference": None if i == 3 else b"D" * (300 + i),
    }


def _comparable(record: dict) -> dict:
    """A record as the walker path returns it: histories emptied, cutouts as their stamp bytes."""
    out = {}
    for key, value in record.items():
        if key in CUTOUT_FIELDS.values():
            value = _stamp(value)
        elif isinstance(value, list):
            value = []
        elif key == "extras":
            value = {}
        out[key] = value
    return out


def test_walker_gives_fastavro_values_for_every_construct(tmp_path):
    records = [rich_record(i) for i in range(8)]
    path = write_avro(tmp_path / "rich.avro", records, codec="deflate", schema=RICH_SCHEMA)
    data = path.read_bytes()
    walked = list(iter_avro_records(data, walker=True))
    full = list(fastavro.reader(io.BytesIO(data)))
    assert len(walked) == len(full) == 8
    for mine, theirs in zip(walked, full, strict=True):
        assert list(mine) == list(theirs)  # same fields, same order
        assert mine == _comparable(theirs)
        assert type(mine["candidate"]["candid"]) is int and type(mine["candidate"]["jd"]) is float
    # The program: histories skipped, cutouts sliced, the rest decoded.
    metadata, _ = read_avro_container(data)
    program = avrofast.compile_schema(
        metadata["avro.schema"], needed={"candidate"}, stamp_fields=CUTOUT_FIELDS.values()
    )
    modes = {f.name: f.mode for f in program.fields}
    assert modes["prv_candidates"] == modes["nested"] == modes["extras"] == "skip"
    assert modes["cutoutScience"] == modes["cutoutTemplate"] == modes["cutoutDifference"] == "stamp"
    assert modes["candidate"] == modes["band"] == "decode"


def test_flat_runs_and_fallbacks():
    candidate = RICH_SCHEMA["fields"][4]["type"]
    flat = avrofast.flat_run(["alertId", "objectId", "candidate"], ["long", ["null", "string"], candidate])
    assert flat is not None and flat.leaf_first.shape[0] == 2 + len(candidate["fields"])
    # Enums, fixed, logical types, and records of records are left to fastavro.
    assert avrofast.flat_run(["band"], [{"type": "enum", "name": "b", "symbols": ["g"]}]) is None
    assert avrofast.flat_run(["t"], [{"type": "long", "logicalType": "timestamp-millis"}]) is None
    nested = {"type": "record", "name": "outer", "fields": [{"name": "inner", "type": candidate}]}
    assert avrofast.flat_run(["outer"], [nested]) is None


def _long(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def test_array_blocks_with_byte_sizes_are_jumped():
    """A negative block count carries the block's size in bytes (writers may use it; fastavro doesn't)."""
    schema = {
        "type": "record",
        "name": "r",
        "fields": [{"name": "items", "type": {"type": "array", "items": "long"}}, {"name": "after", "type": "string"}],
    }
    items = _long(7) + _long(-300)
    block = _long(-2) + _long(len(items)) + items + _long(1) + _long(5) + _long(0) + _long(3) + b"end"
    assert fastavro.schemaless_reader(io.BytesIO(block), fastavro.parse_schema(schema), None) == {
        "items": [7, -300, 5],
        "after": "end",
    }
    program = avrofast.compile_schema(schema)
    status, complete, ranges = avrofast.walk(program, block, 1)
    assert (status, complete) == (avrofast.OK, 1)
    start, end = ranges[0, program.fields[1].slot]
    assert block[start:end] == _long(3) + b"end"


@pytest.mark.parametrize("cut", [1, 5, 20, 100])
def test_truncated_and_corrupt_records_stop_the_walk(cut):
    program = avrofast.compile_schema(RICH_SCHEMA, needed={"candidate"}, stamp_fields=CUTOUT_FIELDS.values())
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(RICH_SCHEMA), rich_record(4))
    block = buffer.getvalue()
    status, complete, _ = avrofast.walk(program, block[:-cut], 1)
    assert (status, complete) == (avrofast.TRUNCATED, 0)
    status, complete, _ = avrofast.walk(program, block + block, 3)  # asks for a third record
    assert (status, complete) == (avrofast.TRUNCATED, 2)
    # A union branch that does not exist: 'ratio' is the third field, after a long and a boolean.
    bad = bytearray(block)
    bad[len(_long(rich_record(4)["alertId"])) + 1] = 0x7E
    status, complete, _ = avrofast.walk(program, bytes(bad), 1)
    assert (status, complete) == (avrofast.CORRUPT, 0)


def test_a_recursive_schema_falls_back_to_fastavro(tmp_path):
    node = {
        "type": "record",
        "name": "node",
        "fields": [{"name": "value", "type": "long"}, {"name": "next", "type": ["null", "node"]}],
    }
    with pytest.raises(avrofast.UnsupportedSchema, match="contains itself"):
        avrofast.compile_schema(node)
    path = tmp_path / "linked.avro"
    records = [{"value": 1, "next": {"value": 2, "next": None}}]
    write_avro(path, records, schema=node)
    assert list(iter_avro_records(path.read_bytes())) == records


def test_a_packet_cut_inside_a_record_is_a_truncated_avro(tmp_path):
    path = write_avro(tmp_path / "rich.avro", [rich_record(i) for i in range(2)], schema=RICH_SCHEMA)
    data = path.read_bytes()
    metadata, blocks = read_avro_container(data)
    count, block = blocks[0]
    from alertlib.io.packets import _record_reader

    reader = _record_reader(metadata["avro.schema"])
    first = next(reader(block, count, 0))
    assert first["objectId"] == "obj0"
    with pytest.raises(PacketError, match="truncated avro"):
        list(reader(block[: len(block) // 2], count, 0))


def _projected(record: dict) -> dict:
    """A record as the projected fastavro path returns it: each entry of a ZTF history an empty dict."""
    if "candidate" not in record:  # only ZTF-like schemas are projected
        return record
    return {
        key: [{} for _ in value] if key in _HISTORY_FIELDS and isinstance(value, list) else value
        for key, value in record.items()
    }


@pytest.mark.realdata
@pytest.mark.parametrize("walker", [True, False], ids=["walker", "projected-fastavro"])
def test_walker_equals_fastavro_on_every_real_avro_packet(shared_data, walker):
    """Both fast paths (the walker, and fastavro with a projected reader schema) against a full decode."""
    comparable = _comparable if walker else _projected
    root = shared_data / "alert-packets"
    files = sorted(p for p in root.rglob("*.avro"))
    if not files:
        pytest.skip("no real Avro packets under the shared data")
    compared = rejected = 0
    for path in files:
        data = path.read_bytes()
        try:
            full = list(fastavro.reader(io.BytesIO(data)))
        except (ValueError, IndexError, EOFError):
            # The shared data keeps real-world faults on purpose (truncated and corrupt containers):
            # what fastavro cannot read, the walker must refuse with a PacketError, never half-decode.
            with pytest.raises(PacketError):
                list(iter_avro_records(data, walker=walker))
            rejected += 1
            continue
        walked = list(iter_avro_records(data, walker=walker))
        assert len(walked) == len(full), path
        for mine, theirs in zip(walked, full, strict=True):
            assert mine == comparable(theirs), path
            compared += 1
    assert compared >= 200
    assert rejected < len(files) // 10
    assert json.loads(read_avro_container(files[0].read_bytes())[0]["avro.schema"])  # a real schema was read


def test_a_corrupt_block_count_stops_at_once():
    """A count that cannot fit in the bytes left is truncation; a huge count of empty items is corrupt."""
    schema = {"type": "record", "name": "r", "fields": [{"name": "items", "type": {"type": "array", "items": "long"}}]}
    program = avrofast.compile_schema(schema)
    status, complete, _ = avrofast.walk(program, _long(10**12) + b"\x00" * 10, 1)
    assert (status, complete) == (avrofast.TRUNCATED, 0)
    nulls = {"type": "record", "name": "n", "fields": [{"name": "items", "type": {"type": "array", "items": "null"}}]}
    program = avrofast.compile_schema(nulls)
    assert avrofast.walk(program, _long(3) + _long(0), 1)[:2] == (avrofast.OK, 1)
    assert avrofast.walk(program, _long(10**12) + _long(0), 1)[:2] == (avrofast.CORRUPT, 0)


def test_a_block_size_longer_than_ten_bytes_is_corrupt():
    """The byte size after a negative block count is a varint like any other: more than 10 bytes is corrupt."""
    schema = {"type": "record", "name": "r", "fields": [{"name": "items", "type": {"type": "array", "items": "long"}}]}
    program = avrofast.compile_schema(schema)
    block = _long(-1) + b"\xff" * 11 + b"\x01" + _long(7) + _long(0)
    assert avrofast.walk(program, block, 1)[:2] == (avrofast.CORRUPT, 0)
