"""Alert packets to triplets: readers for ZTF, ATLAS and Rubin packets (Avro and Parquet).

One concern: alert packet files in, normalised triplets and candidate rows out (the containers, the
records, the stamps, and the reasons an alert is skipped), with the conventional reference decoder beside
the fast one.

One call does it all: :func:`load_triplets` (one dataset, e.g. ZTF) or :func:`decode_packets` (every
dataset found) turn packet files into BTSbot-normalised triplets, a candidate table and a table of
what was skipped and why. Every alert either becomes a triplet or gets a row in ``skipped`` naming
its file and the reason; nothing is dropped silently and one bad file never stops the others.

Formats read
------------
- **ZTF Avro**, schema 3.x to 4.02, one or more alerts per file, codecs ``null``, ``deflate`` and
  ``snappy`` (via cramjam); also the Spark-rewritten variant whose record is ``topLevelRecord`` and
  has no top-level ``candid`` (the candidate's ``candid`` is used). Cutouts are gzipped FITS.
- **ZTF Parquet** as distributed by the Fink broker (``candidate`` struct, cutout structs).
- **ATLAS Avro** (as relayed by ALeRCE): science and difference cutouts only, plain FITS.
- **Rubin/LSST** Avro or Parquet (``diaSource`` records): cutouts are plain FITS with PRIMARY,
  UNCERT and PSFIMAGE HDUs (the PRIMARY image is used), or null.

Preprocessing (BTSbot, :mod:`alertlib.io.preprocess`)
--------------------------------------------------
Each cutout: NaN -> 0, padded at the bottom/right to 63x63 (ZTF, ATLAS), divided by its L2 norm; an
all-zero cutout makes its alert skipped. Rubin cutouts keep their native size (30x30 and a few
larger): the dataset layer, not the reader, decides on resizing, and each native size is its own
dataset (``rubin/30x30``, ...).

A missing reference (ATLAS)
---------------------------
ATLAS packets carry no reference cutout. The reference channel is then **all zeros** and the
candidate column ``has_reference`` is False. A real reference is never all zeros after L2
normalisation (all-zero cutouts are rejected), so a model can always tell the two apart.

Skip reasons
------------
``empty file``, ``wrong format`` (not Avro or Parquet), ``truncated avro``, ``corrupt avro``,
``unknown codec``, ``unsupported schema``, ``corrupt parquet``, ``no cutouts``, ``missing cutout``,
``corrupt gzip``, ``bad FITS``, ``unreadable file``, ``cutout shapes differ``, ``cutout too large``, ``all-zero cutout``.

Two decoders give identical triplets and candidate tables (the tests compare them on every real
packet):

- ``"fast"``: this module's Avro container reader; :mod:`alertlib.io.avrofast`, a schema-compiled walker
  that jumps over the histories and slices the stamp bytes, and a compiled decoder for the flat
  candidate record (fastavro decodes the few fields that are not flat); Parquet read without its
  history columns; ISA-L gunzip; :mod:`alertlib.io.fitsfast` (one-block headers looked up by their
  bytes); and a compiled division into the channels-last triplet. Kernels are numba-compiled once
  and cached on disk.
- ``"astropy"``: the conventional reference for the tests and the benchmark (``fastavro.reader``,
  ``gzip``, ``astropy.io.fits``, :func:`alertlib.io.preprocess.normalise_cutout`).

``benchmarks/bench_decode.py`` times both per packet folder on one core, beside the rate that
gunzipping the stamps alone allows; ``benchmarks/bench_avro_walker.py`` times the fast decoder with
and without the walker (``avro_walker=False``: fastavro with a projected reader schema), beside the
reference. ``data/benchmarks/decode/*.csv`` hold their results.
"""

from __future__ import annotations

import functools
import gzip
import io
import itertools
import json
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.jit import kernel
from alertlib.core.vocab import CHANNELS, STAMP_SIZE
from alertlib.io import fitsfast
from alertlib.io.preprocess import EmptyCutout, normalise_cutout

# Gunzip of the stamps is the largest single cost of decoding an alert. ISA-L inflates 2.2x faster
# than zlib on ZTF stamps, and its CRC32 (for snappy blocks) is 14x faster than zlib's (measured
# here); zlib gives the same bytes and checksums where isal is missing.
try:
    from isal.isal_zlib import crc32 as _crc32
    from isal.isal_zlib import decompress as _inflate
except ImportError:  # pragma: no cover - isal is a declared dependency
    from zlib import crc32 as _crc32
    from zlib import decompress as _inflate


def _gunzip(data: bytes) -> bytes:
    return _inflate(data, 47)


# Packet field of each channel, per survey.
CUTOUT_FIELDS = {"science": "cutoutScience", "reference": "cutoutTemplate", "difference": "cutoutDifference"}
_CUTOUT_FIELD_NAMES = frozenset(CUTOUT_FIELDS.values())
SURVEYS = ("ztf", "atlas", "rubin")
SUPPORTED_CODECS = ("null", "deflate", "snappy")
SKIPPED_COLUMNS = ("file", "alert", "reason", "detail")

_AVRO_MAGIC = b"Obj\x01"
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_SCHEMA_CACHE: dict[bytes, object] = {}


class PacketError(ValueError):
    """An alert or a file that cannot become a triplet; ``reason`` is one of the documented skip reasons."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class RawAlert:
    """One alert as read from a packet: its scalar fields and its raw cutout bytes."""

    survey: str
    file: str
    index: int
    fields: dict
    cutouts: dict[str, bytes | None]


@dataclass
class PacketDataset:
    """Triplets of one survey and cutout size, row-aligned with their candidate table."""

    name: str
    triplets: np.ndarray
    candidates: pd.DataFrame


@dataclass
class DecodedPackets:
    """What :func:`decode_packets` found: datasets by name, the skipped alerts, and the count read."""

    datasets: dict[str, PacketDataset]
    skipped: pd.DataFrame
    read: int
    files: int = 0
    written: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        """Counts: alerts read, written per dataset, skipped per reason."""
        return {
            "files": self.files,
            "read": self.read,
            "written": {name: len(d.candidates) for name, d in self.datasets.items()},
            "skipped": {str(k): int(v) for k, v in self.skipped["reason"].value_counts().sort_index().items()},
        }


# ---------------------------------------------------------------------------------------------
# Avro container files (own reader: fast, and it says exactly what is wrong with a bad file)
# ---------------------------------------------------------------------------------------------


def _read_long(data: bytes, position: int) -> tuple[int, int]:
    """Avro zig-zag varint at ``position``; returns (value, next position)."""
    shift = result = 0
    while True:
        if position >= len(data):
            raise PacketError("truncated avro", f"file ends inside a number at byte {position}")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise PacketError("corrupt avro", f"a number longer than 10 bytes at byte {position}")


def _read_bytes(data: bytes, position: int) -> tuple[bytes, int]:
    length, position = _read_long(data, position)
    if length < 0 or position + length > len(data):
        raise PacketError("truncated avro", f"a {length}-byte value runs past the end of the file")
    return data[position : position + length], position + length


def read_avro_container(data: bytes) -> tuple[dict, list[tuple[int, bytes]]]:
    """Parse an Avro object container file: (header metadata, [(record count, decompressed block)]).

    Raises :class:`PacketError` when any block is truncated or corrupt; :func:`iter_avro_records`
    reads the blocks one by one instead, keeping the records of the blocks before a bad one.
    """
    metadata, blocks = _avro_container(data)
    return metadata, list(blocks)


def _avro_container(data: bytes) -> tuple[dict, Iterator[tuple[int, bytes]]]:
    """The header metadata and a lazy iterator of (record count, decompressed block).

    Each block is checked (its sync marker follows it) before it is given out: a block that is
    truncated or corrupt raises :class:`PacketError` when it is reached, after the good blocks before it.
    """
    if not data.startswith(_AVRO_MAGIC):
        raise PacketError("wrong format", "not an Avro object container file")
    for header, known in _HEADERS:
        if data.startswith(header):
            metadata, position = dict(known), len(header)
            break
    else:
        metadata, position = _read_avro_header(data)
    codec = metadata.get("avro.codec", b"null").decode("ascii", "replace")
    sync = data[position : position + 16]
    if len(sync) < 16:
        raise PacketError("truncated avro", "the file ends inside its header")

    def blocks() -> Iterator[tuple[int, bytes]]:
        position, index = start, 0
        while position < len(data):
            count, position = _read_long(data, position)
            block, position = _read_bytes(data, position)
            if data[position : position + 16] != sync:
                reason = "truncated avro" if position + 16 > len(data) else "corrupt avro"
                raise PacketError(reason, f"block {index} is not followed by the sync marker")
            position += 16
            yield count, _decompress_block(block, codec, index)
            index += 1

    start = position + 16
    return metadata, blocks()


# One survey's packets share a few headers (magic and metadata: schema, codec); each file's own
# sync marker follows. A header seen before is recognised by its bytes instead of parsed again, and
# its schema is then the same bytes object, whose hash (the reader cache's key, 25 kB for ZTF) is
# computed once: together about 20 us per ZTF packet (measured).
_HEADERS: list[tuple[bytes, dict[str, bytes]]] = []
_HEADERS_KEPT = 64


def _read_avro_header(data: bytes) -> tuple[dict[str, bytes], int]:
    """Parse the metadata of a container file's header: (metadata, position of the sync marker)."""
    position = len(_AVRO_MAGIC)
    metadata: dict[str, bytes] = {}
    while True:
        count, position = _read_long(data, position)
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the block's size in bytes
            count = -count
            _, position = _read_long(data, position)
        for _ in range(count):
            key, position = _read_bytes(data, position)
            value, position = _read_bytes(data, position)
            metadata[key.decode("utf-8", "replace")] = value
    if "avro.schema" not in metadata:
        raise PacketError("corrupt avro", "the header has no avro.schema")
    codec = metadata.get("avro.codec", b"null").decode("ascii", "replace")
    if codec not in SUPPORTED_CODECS:
        raise PacketError("unknown codec", f"codec {codec!r}; supported: {', '.join(SUPPORTED_CODECS)}")
    if len(_HEADERS) >= _HEADERS_KEPT:
        del _HEADERS[0]
    _HEADERS.append((data[:position], dict(metadata)))
    return metadata, position


def _decompress_block(block: bytes, codec: str, index: int) -> bytes:
    try:
        if codec == "null":
            return block
        if codec == "deflate":
            return zlib.decompress(block, -15)
        import cramjam

        raw = bytes(cramjam.snappy.decompress_raw(block[:-4]))
    except (zlib.error, ValueError, Exception) as error:  # cramjam raises its own DecompressionError
        raise PacketError("corrupt avro", f"block {index} does not decompress with codec {codec}: {error}") from error
    if _crc32(raw) != int.from_bytes(block[-4:], "big"):
        raise PacketError("corrupt avro", f"block {index} fails its snappy CRC check")
    return raw


def _parsed_schema(schema_json: bytes):
    """fastavro's parsed (writer schema, projected reader schema or None), cached per embedded schema.

    One survey's packets share a handful of schemas, so parsing and projecting is done once each.
    """
    cached = _SCHEMA_CACHE.get(schema_json)
    if cached is None:
        from fastavro import parse_schema

        try:
            writer = parse_schema(json.loads(schema_json))
        except Exception as error:  # json or fastavro schema errors
            raise PacketError("corrupt avro", f"the embedded schema does not parse: {error}") from error
        cached = (writer, _projected_reader_schema(writer))
        _SCHEMA_CACHE[schema_json] = cached
    return cached


# Histories that a projected reader schema skips instead of building dicts for.
_HISTORY_FIELDS = frozenset({"prv_candidates", "fp_hists"})


def _named_types(schema, named: dict, found: set) -> set:
    """Full names of every named type reachable from ``schema`` (a parsed fastavro schema)."""
    if isinstance(schema, str):
        if schema in named and schema not in found:
            _named_types(named[schema], named, found)
    elif isinstance(schema, list):
        for member in schema:
            _named_types(member, named, found)
    elif isinstance(schema, dict):
        if "name" in schema:
            if schema["name"] in found:
                return found
            found.add(schema["name"])
        for part in [f["type"] for f in schema.get("fields", ())] + [schema.get("items"), schema.get("values")]:
            if part is not None:
                _named_types(part, named, found)
    return found


def _projected_reader_schema(writer: dict):
    """A reader schema that skips the ZTF histories (``prv_candidates``, ``fp_hists``), or None.

    The records of a skipped history keep their name but have no field, so fastavro's compiled
    reader skips their bytes and returns an empty dict per entry: the field is still a list (or
    None), exactly as :func:`_scalars` sees it in a full decode, while everything a triplet and its
    candidate row are made of (top-level scalars, ``candidate``, the cutouts) decodes as before.
    Only ZTF-like schemas are projected: for Rubin and ATLAS packets fastavro's schema resolution
    costs more than it saves (measured), and None means a plain decode.
    """
    from fastavro import parse_schema

    fields = writer.get("fields") or []
    if not any(f["name"] in _HISTORY_FIELDS for f in fields) or not any(f["name"] == "candidate" for f in fields):
        return None
    named = writer.get("__named_schemas", {})
    needed: set = set()
    for f in fields:
        if f["name"] not in _HISTORY_FIELDS:
            _named_types(f["type"], named, needed)
    emitted = {writer["name"]}

    def project(schema):
        if isinstance(schema, str):
            # A named type is defined where it first occurs, referenced by name after that.
            return project(named[schema]) if schema in named and schema not in emitted else schema
        if isinstance(schema, list):
            return [project(member) for member in schema]
        plain = {k: v for k, v in schema.items() if not k.startswith("__")}
        if schema["type"] in ("record", "error"):
            emitted.add(schema["name"])
            kept = schema["fields"] if schema["name"] in needed else []
            return {
                "type": "record",
                "name": schema["name"],
                "fields": [{**f, "type": project(f["type"])} for f in kept],
            }
        if "name" in schema:  # enum, fixed
            emitted.add(schema["name"])
        if schema["type"] == "array":
            plain["items"] = project(schema["items"])
        elif schema["type"] == "map":
            plain["values"] = project(schema["values"])
        return plain

    top = {"type": "record", "name": writer["name"], "fields": [{**f, "type": project(f["type"])} for f in fields]}
    try:
        return parse_schema(top)
    except Exception:  # an unusual schema: decode it in full (same records, only slower)
        return None


def iter_avro_records(data: bytes, walker: bool = True) -> Iterator[dict]:
    """The records of an Avro container file, in order.

    With ``walker`` (the default), :mod:`alertlib.io.avrofast` finds each top-level field's bytes; the
    fields a triplet and its candidate row need are decoded from their slice (flat ones by a compiled
    loop, the others by fastavro), the cutout
    fields become their stamp bytes, and the histories (``prv_candidates``, ...) are skipped without
    being decoded (None or an empty list, as the record had). Without it, or for a schema the walker
    cannot compile, fastavro decodes every record with a projected reader schema
    (:func:`_projected_reader_schema`). Either way each record has the same keys as a full decode and
    the same values outside the histories and the cutouts (whose stamp bytes are the same).
    """
    metadata, blocks = _avro_container(data)
    schema_json = metadata["avro.schema"]
    try:
        reader = _record_reader(schema_json) if walker else None
        parsed = _parsed_schema(schema_json) if reader is None else None
    except ValueError as error:  # json.JSONDecodeError, fastavro's SchemaParseException
        raise PacketError("corrupt avro", f"the embedded schema does not parse: {str(error)[:200]}") from error
    if reader is None:
        yield from _fastavro_block_records(blocks, *parsed)
        return
    for block_index, (count, block) in enumerate(blocks):
        yield from reader(block, count, block_index)


def _fastavro_block_records(blocks, writer, reader) -> Iterator[dict]:
    from fastavro import schemaless_reader

    for block_index, (count, block) in enumerate(blocks):
        stream = io.BytesIO(block)
        for _ in range(count):
            try:
                yield schemaless_reader(stream, writer, reader)
            except Exception as error:  # fastavro raises EOFError, ValueError, UnicodeDecodeError, ...
                raise PacketError(
                    "corrupt avro", f"record in block {block_index} does not decode: {type(error).__name__}"
                ) from error


_READER_CACHE: dict[bytes, object] = {}
# Top-level fields that are never skipped as histories, whatever their type.
_NEEDED_FIELDS = frozenset({"candidate", "diaSource", "diaObject"})


def _record_reader(schema_json: bytes):
    """A function (block, count, block index) -> records, built on the compiled walker; None when the
    schema cannot be compiled (cached per embedded schema, like fastavro's parsed schemas)."""
    if schema_json in _READER_CACHE:
        return _READER_CACHE[schema_json]
    from fastavro import schemaless_reader

    from alertlib.io import avrofast

    try:
        program = avrofast.compile_schema(schema_json, needed=_NEEDED_FIELDS, stamp_fields=CUTOUT_FIELDS.values())
    except avrofast.UnsupportedSchema:
        _READER_CACHE[schema_json] = None
        return None
    # Consecutive decoded fields form a run, decoded from one slice: by a compiled loop where every
    # field is flat (primitives, ZTF's candidate, Rubin's diaSource: avrofast.FlatRun), by fastavro
    # otherwise (enums, fixed, logical types, nested records).
    plan: list[list] = []
    for index, top in enumerate(program.fields):
        kind = top.mode
        if kind == "decode":
            flat = avrofast.flat_run([top.name], program.field_types[index : index + 1]) is not None
            kind = "flat" if flat else "fastavro"
        if plan and plan[-1][0] == kind and kind in ("flat", "fastavro"):
            plan[-1][2] = index + 1
        else:
            plan.append([kind, index, index + 1])
    runs = []
    for kind, start, stop in plan:
        reader = None
        if kind == "flat":
            names = [f.name for f in program.fields[start:stop]]
            reader = avrofast.flat_run(names, program.field_types[start:stop])
        elif kind == "fastavro":
            reader = program.reader(start, stop)
        runs.append(("decode" if reader is not None else kind, start, stop, reader))
    fields = program.fields

    def read(block: bytes, count: int, block_index: int) -> Iterator[dict]:
        status, complete, ranges = avrofast.walk(program, block, count)
        buf = np.frombuffer(block, dtype=np.uint8)
        for r in range(complete):
            slots = ranges[r]
            record: dict = {}
            for mode, start, stop, reader in runs:
                if mode == "decode":
                    begin = int(slots[fields[start].slot, 0])
                    end = int(slots[fields[stop - 1].slot, 1])
                    try:
                        if isinstance(reader, avrofast.FlatRun):
                            record.update(reader.decode(buf, block, begin, end))
                        else:
                            record.update(schemaless_reader(io.BytesIO(block[begin:end]), reader, None))
                    except Exception as error:  # bad UTF-8, an impossible union branch, ...
                        raise PacketError(
                            "corrupt avro",
                            f"record {r} in block {block_index} does not decode: {type(error).__name__}",
                        ) from error
                    continue
                top = fields[start]
                if mode == "stamp":
                    begin, end = slots[top.stamp_slot]
                    record[top.name] = None if begin < 0 else block[begin:end]
                else:  # a skipped history: None where the union took its null branch, else empty
                    null = top.null_branches and _read_long(block, int(slots[top.slot, 0]))[0] in top.null_branches
                    record[top.name] = None if null else type(top.empty)()
            yield record
        if status != avrofast.OK:
            reason = "truncated avro" if status == avrofast.TRUNCATED else "corrupt avro"
            raise PacketError(reason, f"record {complete} in block {block_index} runs past the block or is malformed")

    _READER_CACHE[schema_json] = read
    return read


# ---------------------------------------------------------------------------------------------
# Records to alerts, per survey
# ---------------------------------------------------------------------------------------------


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _scalars(mapping: dict) -> dict:
    # A record whose values are all plain scalars (a decoded candidate) is copied whole; otherwise an
    # exact-type lookup first: it decides almost every value, and costs a fraction of isinstance.
    if set(map(type, mapping.values())) <= _SCALAR_TYPES:
        return dict(mapping)
    return {
        k: v
        for k, v in mapping.items()
        if type(v) in _SCALAR_TYPES or isinstance(v, (str, int, float, bool, np.generic))
    }


def _stamp(value) -> bytes | None:
    """The stamp bytes of a cutout field: ZTF/ATLAS ``{fileName, stampData}``, Rubin plain bytes."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("stampData")
    return bytes(value)


def survey_of(record: dict) -> str:
    """Which survey a decoded record comes from, from its fields."""
    if "diaSource" in record:
        return "rubin"
    if "candidate" in record and isinstance(record["candidate"], dict):
        publisher = str(record.get("publisher") or "")
        if publisher.upper().startswith("ATLAS") or "Mag" in record["candidate"]:
            return "atlas"
        return "ztf"
    raise PacketError("unsupported schema", f"a record with fields {sorted(record)[:8]}: no candidate or diaSource")


def record_to_alert(record: dict, file: str, index: int) -> RawAlert:
    """Turn a decoded Avro record or Parquet row into a :class:`RawAlert`."""
    survey = survey_of(record)
    top = {k: v for k, v in _scalars(record).items() if k not in _CUTOUT_FIELD_NAMES}
    if survey == "rubin":
        source = record["diaSource"]
        if not isinstance(source, dict):
            raise PacketError("unsupported schema", "diaSource is not a record")
        fields = {**top, **_scalars(source)}
        fields["objectId"] = str(source.get("diaObjectId", (record.get("diaObject") or {}).get("diaObjectId")))
        fields["candid"] = source.get("diaSourceId")
    else:
        fields = {**top, **_scalars(record["candidate"])}
        fields["objectId"] = str(record.get("objectId"))
        # The Spark-rewritten ZTF packets have no top-level candid: the candidate's is the same number.
        fields["candid"] = record.get("candid", record["candidate"].get("candid"))
    cutouts = {channel: _stamp(record.get(name)) for channel, name in CUTOUT_FIELDS.items()}
    return RawAlert(survey=survey, file=file, index=index, fields=fields, cutouts=cutouts)


def _parquet_rows(data: bytes, projected: bool = True) -> list[dict]:
    """The rows of a Parquet packet file as dicts, without the histories (list columns).

    ``projected`` (the fast decoder) reads only the columns it keeps, so the histories are never
    decompressed (half the time of a Fink ZTF file, measured); otherwise (the reference decoder) the
    whole table is read and the histories dropped after. Both give the same dicts.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if projected:
            source = pq.ParquetFile(io.BytesIO(data))
            table = source.read(columns=[f.name for f in source.schema_arrow if not _is_list(f.type)])
        else:
            table = pq.read_table(io.BytesIO(data))
            table = table.select([f.name for f in table.schema if not _is_list(f.type)])
    except (pa.ArrowException, OSError) as error:
        raise PacketError("corrupt parquet", str(error)[:200]) from error
    return table.to_pylist()


def _is_list(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)


def _fastavro_records(data: bytes) -> Iterator[dict]:
    """The conventional reader (``fastavro.block_reader``), used by the reference decoder.

    Like :func:`iter_avro_records`, it gives the records of a block only once the block's sync
    marker has been checked, so both decoders keep the same records of a damaged file.
    """
    import fastavro

    try:
        for block in fastavro.block_reader(io.BytesIO(data)):
            yield from block
    except ValueError as error:
        reason = "unknown codec" if "codec" in str(error).lower() else "corrupt avro"
        raise PacketError(reason, str(error)[:200]) from error
    except EOFError as error:
        raise PacketError("truncated avro", str(error)[:200] or "unexpected end of file") from error
    except Exception as error:  # fastavro raises many types on bad bytes
        raise PacketError("corrupt avro", f"{type(error).__name__}: {str(error)[:200]}") from error


def read_packet_file(
    path: str | Path, reference: bool = False, avro_walker: bool = True
) -> tuple[list[RawAlert], list[dict]]:
    """Read one packet file: its alerts, and skip rows for what could not be read.

    A file that fails part-way keeps the alerts read before the failure; the failure is one skip row.
    ``reference=True`` reads Avro with ``fastavro.reader`` instead of this module's container reader
    (an independent path for the reference decoder and the tests). ``avro_walker`` is passed to
    :func:`iter_avro_records` (False: fastavro with a projected reader schema, the walker's ablation).
    """
    name = str(path)
    alerts: list[RawAlert] = []
    skipped: list[dict] = []
    index = 0
    try:
        with open(name, "rb", buffering=0) as file:  # unbuffered: one read, no copy through a buffer
            data = file.read()
        if not data:
            raise PacketError("empty file", "0 bytes")
        if data.startswith(_AVRO_MAGIC):
            records: Iterable[dict] = _fastavro_records(data) if reference else iter_avro_records(data, avro_walker)
        elif data.startswith(_PARQUET_MAGIC):
            records = _parquet_rows(data, projected=not reference)
        elif data.startswith(_GZIP_MAGIC):
            raise PacketError("wrong format", "a gzip file: gunzip it first (packets are Avro or Parquet)")
        else:
            raise PacketError("wrong format", f"starts with {data[:8]!r}; expected Avro ('Obj\\x01') or Parquet")
        for index, record in enumerate(records):
            try:
                alerts.append(record_to_alert(record, name, index))
            except PacketError as error:
                skipped.append(_skip_row(name, index, error))
    except PacketError as error:
        skipped.append(_skip_row(name, len(alerts) + len(skipped) if alerts or skipped else "", error))
    except OSError as error:
        skipped.append(_skip_row(name, "", PacketError("unreadable file", str(error))))
    return alerts, skipped


def _skip_row(file: str, alert, error: PacketError) -> dict:
    return {"file": file, "alert": alert, "reason": error.reason, "detail": error.detail}


# ---------------------------------------------------------------------------------------------
# Stamps to triplets
# ---------------------------------------------------------------------------------------------


def decode_stamp_fast(stamp: bytes, native: bool = True) -> np.ndarray:
    """Gunzip when gzipped (ISA-L or zlib), then :func:`alertlib.io.fitsfast.read_image`.

    ``native=False`` may return a big-endian view of the pixels (see ``fitsfast.read_image``).
    """
    if stamp[:2] == _GZIP_MAGIC:
        try:
            stamp = _gunzip(stamp)
        except Exception as error:  # each library raises its own error class
            raise PacketError("corrupt gzip", str(error) or type(error).__name__) from error
    try:
        return fitsfast.read_image(stamp, native)
    except fitsfast.FitsError as error:
        raise PacketError("bad FITS", str(error)) from error


def decode_stamp_astropy(stamp: bytes) -> np.ndarray:
    """The reference decoder: ``gzip`` and ``astropy.io.fits``, one HDUList per stamp."""
    import warnings

    from astropy.io import fits

    if stamp[:2] == _GZIP_MAGIC:
        try:
            stamp = gzip.decompress(stamp)
        except (OSError, EOFError, zlib.error) as error:
            raise PacketError("corrupt gzip", str(error)) from error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns about non-standard cards; the pixels are what count
            with fits.open(io.BytesIO(stamp), memmap=False) as hdus:
                data = hdus[0].data
                if data is None:
                    raise PacketError("bad FITS", "the primary HDU holds no image")
                return np.array(data)
    except PacketError:
        raise
    except Exception as error:  # astropy raises OSError, ValueError, TypeError, VerifyError on bad bytes
        raise PacketError("bad FITS", str(error)[:200]) from error


# The fast decoder's pixels may stay big-endian views: _normalise_channels copies them anyway.
STAMP_DECODERS = {"fast": functools.partial(decode_stamp_fast, native=False), "astropy": decode_stamp_astropy}


def alert_to_triplet(alert: RawAlert, decoder: str = "fast") -> tuple[np.ndarray, dict]:
    """Decode and normalise one alert's cutouts.

    Returns
    -------
    (np.ndarray, dict)
        The triplet (H, W, 3) float32 (63x63 for ZTF and ATLAS, native for Rubin) and the candidate
        row (the alert's scalar fields plus ``survey``, ``file``, ``has_reference``, ``stamp_height``,
        ``stamp_width`` (native) and ``label`` = NaN: packets carry no label).
    """
    decode = STAMP_DECODERS[decoder]
    stamps = alert.cutouts
    if all(stamps.get(c) is None for c in CHANNELS):
        raise PacketError("no cutouts", "every cutout of the alert is null")
    has_reference = stamps.get("reference") is not None
    for channel in CHANNELS:
        if stamps.get(channel) is None and not (channel == "reference" and alert.survey == "atlas"):
            raise PacketError("missing cutout", f"{CUTOUT_FIELDS[channel]} is null")
    images = {c: decode(stamps[c]) for c in CHANNELS if stamps.get(c) is not None}
    shapes = {image.shape for image in images.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise PacketError("cutout shapes differ", f"{ {c: i.shape for c, i in images.items()} }")
    height, width = next(iter(shapes))
    size = None if alert.survey == "rubin" else STAMP_SIZE
    if size is not None and (height > size or width > size):
        raise PacketError("cutout too large", f"{height}x{width} is larger than {size}x{size}")
    out_shape = (height, width) if size is None else (size, size)
    if decoder == "fast":  # every value is written by the division
        triplet = np.empty((*out_shape, 3), dtype=np.float32)
        _normalise_channels(triplet, images)
    else:
        triplet = np.zeros((*out_shape, 3), dtype=np.float32)
    for channel_index, channel in enumerate(CHANNELS):
        if channel not in images or decoder == "fast":
            continue  # the documented missing reference: an all-zero channel, has_reference False
        try:
            triplet[:, :, channel_index] = normalise_cutout(images[channel], size)
        except EmptyCutout as error:
            raise PacketError("all-zero cutout", f"{CUTOUT_FIELDS[channel]}: {error}") from error
    row = {
        **alert.fields,
        "survey": alert.survey,
        "file": alert.file,
        "alert_index": alert.index,
        "has_reference": has_reference,
        "stamp_height": height,
        "stamp_width": width,
        "label": np.nan,
    }
    return triplet, row


def _normalise_channels(triplet: np.ndarray, images: dict[str, np.ndarray]) -> None:
    """:func:`alertlib.io.preprocess.normalise_cutout` of every channel at once, into ``triplet``.

    Bit-identical to it (the tests compare with the reference decoder on every real packet): the
    same float64 padded cutouts with NaN and infinities -> 0, the norm as numpy's ``x.dot(x)`` of
    each raveled padded cutout (what ``np.linalg.norm`` computes; calling it keeps BLAS's summation
    order) and float64 division rounded to float32. One buffer holds the three channels (the copy
    into it also swaps big-endian FITS pixels: for three big-endian float32 stamps, ZTF's, in one
    compiled loop); NaN -> 0 runs only when a norm is not finite, since a finite sum of squares
    means there was no NaN or infinity to replace; and the division and the channels-last store run
    in one compiled loop.
    """
    height, width = triplet.shape[:2]
    padded = any(image.shape != (height, width) for image in images.values()) or len(images) < 3
    buffer = (np.zeros if padded else np.empty)((3, height, width), dtype=np.float64)
    stamps = [images.get(channel) for channel in CHANNELS]
    if len(images) == 3 and all(stamp.dtype == _BIG_ENDIAN_FLOAT32 for stamp in stamps):
        _widen_big_endian(*(stamp.view(np.uint32) for stamp in stamps), buffer)
    else:
        for index, image in enumerate(stamps):
            if image is not None:  # a missing reference stays all zeros (documented above)
                buffer[index, : image.shape[0], : image.shape[1]] = image
    flat = buffer.reshape(3, -1)
    squares = [flat[0].dot(flat[0]), flat[1].dot(flat[1]), flat[2].dot(flat[2])]
    if not all(map(math.isfinite, squares)):
        np.nan_to_num(buffer, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        squares = [flat[0].dot(flat[0]), flat[1].dot(flat[1]), flat[2].dot(flat[2])]
    norms = [math.sqrt(square) for square in squares]  # correctly rounded, as np.sqrt
    for index, channel in enumerate(CHANNELS):
        if norms[index] == 0.0 and channel in images:
            detail = "cutout is all zeros (or NaN) after NaN -> 0"
            raise PacketError("all-zero cutout", f"{CUTOUT_FIELDS[channel]}: {detail}")
    _divide_into_channels_last(flat, np.array([norm or 1.0 for norm in norms]), triplet.reshape(-1, 3))


_BIG_ENDIAN_FLOAT32 = np.dtype(">f4")


@kernel
def _widen_big_endian(science, reference, difference, buffer):  # pragma: no cover - compiled by numba
    """``buffer[c, :h, :w]`` = the float64 values of big-endian float32 pixels (given as their raw
    32-bit words), for the three channels; the rest of ``buffer`` is left as it is."""
    for c, words in enumerate((science, reference, difference)):
        swapped = np.empty(words.shape, dtype=np.uint32)
        for i in range(words.shape[0]):
            for j in range(words.shape[1]):
                word = words[i, j]
                swapped[i, j] = (word >> 24) | ((word >> 8) & 0xFF00) | ((word << 8) & 0xFF0000) | (word << 24)
        pixels = swapped.view(np.float32)
        for i in range(words.shape[0]):
            for j in range(words.shape[1]):
                buffer[c, i, j] = pixels[i, j]


@kernel
def _divide_into_channels_last(flat, norms, out):  # pragma: no cover - compiled by numba
    """``out[k, c] = float32(flat[c, k] / norms[c])``: each channel divided in a contiguous loop
    (vectorised), then the three interleaved into channels-last pixels."""
    divided = np.empty(flat.shape, dtype=np.float32)
    for c in range(flat.shape[0]):
        norm = norms[c]
        for k in range(flat.shape[1]):
            divided[c, k] = np.float32(flat[c, k] / norm)
    for k in range(flat.shape[1]):  # three channels, written out so that the loop vectorises
        out[k, 0] = divided[0, k]
        out[k, 1] = divided[1, k]
        out[k, 2] = divided[2, k]


def dataset_name(survey: str, triplet_shape: tuple[int, ...]) -> str:
    """``ztf`` and ``atlas`` (all 63x63); Rubin by native size, e.g. ``rubin/30x30``."""
    if survey == "rubin":
        return f"rubin/{triplet_shape[0]}x{triplet_shape[1]}"
    return survey


# ---------------------------------------------------------------------------------------------
# Many files
# ---------------------------------------------------------------------------------------------


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files given, and every regular file under folders given (sorted; hidden files left out)."""
    files: list[Path] = []
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = path if isinstance(path, Path) else Path(path)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    # Hidden below the folder given; the folder's own path may hold "..".
                    if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
                )
            )
        else:
            files.append(path)
    return files


def decode_file(
    path: str | Path, decoder: str = "fast", avro_walker: bool = True
) -> tuple[list[tuple[str, np.ndarray, dict]], list[dict], int]:
    """One file to ``([(dataset name, triplet, candidate row)], skip rows, alerts read)``."""
    alerts, skipped = read_packet_file(path, reference=decoder == "astropy", avro_walker=avro_walker)
    decoded = []
    for alert in alerts:
        try:
            triplet, row = alert_to_triplet(alert, decoder)
        except PacketError as error:
            skipped.append(_skip_row(alert.file, alert.index, error))
            continue
        decoded.append((dataset_name(alert.survey, triplet.shape), triplet, row))
    return decoded, skipped, len(decoded) + len(skipped)


# Files decoded as one task (in this process, or by one worker): enough alerts that a worker's result
# crosses the pipe as a few arrays rather than one per alert.
BATCH_FILES = 16


@dataclass
class DecodedBatch:
    """A run of files decoded: per dataset its stacked triplets and candidate rows, in file order;
    the skip rows; the alerts read; the files."""

    datasets: dict[str, tuple[np.ndarray, list[dict]]]
    skipped: list[dict]
    read: int
    files: int


def _decode_batch(files: list[Path], decoder: str = "fast", avro_walker: bool = True) -> DecodedBatch:
    """:func:`decode_file` of each file, grouped by dataset (a worker's task)."""
    grouped: dict[str, tuple[list, list]] = {}
    skipped: list[dict] = []
    read = 0
    for path in files:
        decoded, file_skipped, count = decode_file(path, decoder, avro_walker)
        read += count
        skipped.extend(file_skipped)
        for name, triplet, row in decoded:
            triplets, rows = grouped.setdefault(name, ([], []))
            triplets.append(triplet)
            rows.append(row)
    datasets = {name: (np.stack(triplets), rows) for name, (triplets, rows) in grouped.items()}
    return DecodedBatch(datasets, skipped, read, len(files))


class _TripletStack:
    """The triplets of one dataset, batch after batch, in preallocated blocks, stacked at the end.

    Blocks of many triplets are large allocations, which numpy asks the kernel to back with huge
    pages: filling them costs a fraction of the page faults of one small array per triplet.
    """

    def __init__(self, shape: tuple[int, ...], expected: int):
        self.shape, self.capacity = shape, max(1, expected)
        self.blocks: list[np.ndarray] = []
        self.filled = 0  # rows used in the last block

    def extend(self, triplets: np.ndarray) -> None:
        start = 0
        while start < len(triplets):
            if not self.blocks or self.filled == len(self.blocks[-1]):
                self.blocks.append(np.empty((self.capacity, *self.shape), dtype=triplets.dtype))
                self.filled, self.capacity = 0, 2 * self.capacity
            block = self.blocks[-1]
            taken = min(len(triplets) - start, len(block) - self.filled)
            block[self.filled : self.filled + taken] = triplets[start : start + taken]
            self.filled, start = self.filled + taken, start + taken

    def stacked(self) -> np.ndarray:
        if len(self.blocks) == 1 and self.filled == len(self.blocks[0]):
            return self.blocks[0]
        return np.concatenate([*self.blocks[:-1], self.blocks[-1][: self.filled]])


def decode_packets(
    paths: Iterable[str | Path] | str | Path,
    decoder: str = "fast",
    workers: int = 1,
    progress: bool = False,
    avro_walker: bool = True,
) -> DecodedPackets:
    """Decode every packet under ``paths`` into datasets (by survey and cutout size).

    Parameters
    ----------
    paths:
        Files and folders (folders are searched recursively; every file in them is tried).
    decoder:
        ``"fast"`` or ``"astropy"`` (the reference); both give identical triplets.
    workers:
        Processes for decoding; 1 decodes in this process. Results keep the file order either way
        (:func:`decoded_batches` says how the processes start).
    progress:
        Show a tqdm progress bar over files.
    avro_walker:
        The fast decoder reads Avro records with :mod:`alertlib.io.avrofast`'s walker (True) or with
        fastavro and a projected reader schema (False; ``benchmarks/bench_avro_walker.py`` compares them).
    """
    files = expand_paths(paths)
    stacks: dict[str, _TripletStack] = {}
    rows: dict[str, list[dict]] = {}
    skipped_rows: list[dict] = []
    read = 0
    for batch in decoded_batches(files, decoder, workers, progress, avro_walker):
        read += batch.read
        skipped_rows.extend(batch.skipped)
        for name, (triplets, batch_rows) in batch.datasets.items():
            if name not in stacks:
                stacks[name] = _TripletStack(triplets.shape[1:], min(len(files), 4096))
            stacks[name].extend(triplets)
            rows.setdefault(name, []).extend(batch_rows)
    datasets = {name: PacketDataset(name, stacks[name].stacked(), pd.DataFrame(rows[name])) for name in sorted(stacks)}
    skipped = pd.DataFrame(skipped_rows, columns=list(SKIPPED_COLUMNS))
    return DecodedPackets(datasets=datasets, skipped=skipped, read=read, files=len(files))


def decoded_batches(
    paths: Iterable[str | Path] | str | Path,
    decoder: str = "fast",
    workers: int = 1,
    progress: bool = False,
    avro_walker: bool = True,
) -> Iterator[DecodedBatch]:
    """The packets under ``paths`` decoded :data:`BATCH_FILES` files at a time, batch after batch in file order.

    A stream for callers that work on each batch as it comes (``alertlib score`` runs inference on
    one batch while the workers decode the next ones); :func:`decode_packets` gathers them. The
    arguments are :func:`decode_packets`'s. With ``workers`` > 1 the first batch is decoded here,
    which loads the compiled kernels; the workers are then forked from this process and start with
    them, in milliseconds, where a spawned worker imports alertlib and loads each kernel again (about
    2 s, longer than decoding thousands of alerts). Forking is safe here only while this process runs
    no other Python thread (a Jupyter kernel may): then the workers are spawned instead. The workers
    stay at most :data:`BATCHES_AHEAD` batches per worker ahead of the caller, so that a slow
    consumer holds a bounded number of decoded batches in memory, not the whole night.
    """
    if decoder not in STAMP_DECODERS:
        raise ValueError(f"decoder must be one of {sorted(STAMP_DECODERS)}, not {decoder!r}")
    files = expand_paths(paths)
    batches = [files[start : start + BATCH_FILES] for start in range(0, len(files), BATCH_FILES)]
    decode = functools.partial(_decode_batch, decoder=decoder, avro_walker=avro_walker)
    if workers > 1 and len(batches) > 1:
        results = _decode_in_workers(decode, batches, workers)
    else:
        results = map(decode, batches)
    return _progress(results, len(files), progress)


# Decoded batches a worker may hold ready beyond the one the caller is using: enough to keep every
# worker busy while the caller works, few enough that memory stays bounded.
BATCHES_AHEAD = 4


def _decode_in_workers(decode, batches: list[list[Path]], workers: int) -> Iterator[DecodedBatch]:
    """``decode`` of every batch of files over ``workers`` processes, in order (see :func:`decoded_batches`)."""
    import collections
    import multiprocessing
    import threading

    first = decode(batches[0])
    forkable = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    context = multiprocessing.get_context("fork" if forkable else "spawn")
    with context.Pool(workers) as pool:
        queued = iter(batches[1:])
        pending = collections.deque(
            pool.apply_async(decode, (batch,)) for batch in itertools.islice(queued, BATCHES_AHEAD * workers)
        )
        yield first
        while pending:
            result = pending.popleft().get()
            for batch in itertools.islice(queued, 1):
                pending.append(pool.apply_async(decode, (batch,)))
            yield result


def _progress(batches: Iterable[DecodedBatch], total: int, enabled: bool) -> Iterator[DecodedBatch]:
    """The batches, with a tqdm bar over their files when ``enabled``.

    The bar starts with the first batch: tqdm's monitor thread would make the workers, forked when
    the first batch is ready, be spawned instead.
    """
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    if not enabled:
        yield first
        yield from batches
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="packets", unit="file") as bar:
        for batch in itertools.chain([first], batches):
            yield batch
            bar.update(batch.files)


def load_triplets(
    paths: Iterable[str | Path] | str | Path, dataset: str = "ztf", decoder: str = "fast", workers: int = 1
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Packet files to the normalised triplets of one dataset.

    Parameters
    ----------
    paths:
        Packet files and folders.
    dataset:
        ``"ztf"`` (default), ``"atlas"`` or a Rubin size such as ``"rubin/30x30"``.

    Returns
    -------
    (triplets, candidates, skipped)
        Triplets (N, 63, 63, 3) float32 (native size for Rubin), channels (science, reference,
        difference), each cutout L2-normalised; the candidate table (every scalar candidate field);
        and every skipped alert (``file``, ``alert``, ``reason``, ``detail``). Alerts of other datasets
        are neither returned nor listed as skipped.
    """
    decoded = decode_packets(paths, decoder=decoder, workers=workers)
    if dataset in decoded.datasets:
        found = decoded.datasets[dataset]
        return found.triplets, found.candidates, decoded.skipped
    shape = (0, STAMP_SIZE, STAMP_SIZE, 3)
    return np.zeros(shape, dtype=np.float32), pd.DataFrame(), decoded.skipped
