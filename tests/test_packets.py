"""Alert packets to triplets: real packets of every kind, hand-made good and bad packets, fast FITS."""

from __future__ import annotations

import gzip
import io
import warnings
import zlib

import fastavro
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertlib.io import fitsfast
from alertlib.io.packets import (
    CUTOUT_FIELDS,
    PacketError,
    decode_file,
    decode_packets,
    decode_stamp_fast,
    iter_avro_records,
    load_triplets,
    read_avro_container,
)

# ---------------------------------------------------------------------------------------------
# Hand-made packets (no real data needed)
# ---------------------------------------------------------------------------------------------

CUTOUT_SCHEMA = {
    "type": "record",
    "name": "cutout",
    "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
}
ZTF_LIKE_SCHEMA = {
    "type": "record",
    "name": "alert",
    "namespace": "ztf",
    "fields": [
        {"name": "schemavsn", "type": "string"},
        {"name": "publisher", "type": "string"},
        {"name": "objectId", "type": "string"},
        {"name": "candid", "type": "long"},
        {
            "name": "candidate",
            "type": {
                "type": "record",
                "name": "candidate",
                "fields": [
                    {"name": "candid", "type": "long"},
                    {"name": "jd", "type": "double"},
                    {"name": "magpsf", "type": "float"},
                    {"name": "isdiffpos", "type": "string"},
                ],
            },
        },
        {"name": "cutoutScience", "type": ["null", CUTOUT_SCHEMA], "default": None},
        {"name": "cutoutTemplate", "type": ["null", "cutout"], "default": None},
        {"name": "cutoutDifference", "type": ["null", "cutout"], "default": None},
    ],
}


def fits_stamp(image: np.ndarray, gzipped: bool = True) -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(image.astype(">f4")).writeto(buffer)
    data = buffer.getvalue()
    return gzip.compress(data) if gzipped else data


def ztf_like_record(index: int, shape=(63, 63), zero_science=False, template=True, seed=0) -> dict:
    rng = np.random.default_rng([seed, index])
    images = [rng.normal(size=shape).astype(np.float32) for _ in range(3)]
    images[0][0, 0] = np.nan  # NaN pixels occur in real stamps
    if zero_science:
        images[0][:] = 0.0
    cutouts = {
        name: {"fileName": f"{name}.fits.gz", "stampData": fits_stamp(image)}
        for name, image in zip(CUTOUT_FIELDS.values(), images, strict=True)
    }
    if not template:
        cutouts["cutoutTemplate"] = None
    return {
        "schemavsn": "3.3",
        "publisher": "ZTF (test)",
        "objectId": f"ZTF99test{index:03d}",
        "candid": 1000 + index,
        "candidate": {"candid": 1000 + index, "jd": 2460000.5 + index, "magpsf": 18.0, "isdiffpos": "t"},
        **cutouts,
    }


def write_avro(path, records, codec="null", schema=None):
    with open(path, "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema or ZTF_LIKE_SCHEMA), records, codec=codec)
    return path


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_hand_made_ztf_packets_each_codec(tmp_path, codec):
    path = write_avro(
        tmp_path / f"{codec}.avro",
        [ztf_like_record(i, shape=(63, 50) if i == 1 else (63, 63)) for i in range(3)],
        codec,
    )
    triplets, candidates, skipped = load_triplets(path)
    assert triplets.shape == (3, 63, 63, 3) and triplets.dtype == np.float32
    assert skipped.empty
    assert candidates["candid"].tolist() == [1000, 1001, 1002]
    assert candidates["objectId"].iloc[2] == "ZTF99test002"
    assert candidates["stamp_width"].tolist() == [63, 50, 63]
    norms = np.sqrt((triplets.astype(np.float64) ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert not triplets[1, :, 50:].any()  # padded at the right
    assert triplets[0, 0, 0, 0] == 0.0  # NaN -> 0
    assert np.isnan(candidates["label"]).all()


def test_bad_alerts_inside_a_good_file_are_skipped_with_reasons(tmp_path):
    records = [ztf_like_record(0), ztf_like_record(1, zero_science=True), ztf_like_record(2, template=False)]
    corrupt = ztf_like_record(3)
    stamp = bytearray(corrupt["cutoutDifference"]["stampData"])
    stamp[30:60] = b"\0" * 30
    corrupt["cutoutDifference"]["stampData"] = bytes(stamp)
    records.append(corrupt)
    bad_fits = ztf_like_record(4)
    bad_fits["cutoutScience"]["stampData"] = gzip.compress(b"SIMPLE  =                    T" + b" " * 100)
    records.append(bad_fits)
    decoded, skipped, read = decode_file(write_avro(tmp_path / "mixed.avro", records))
    assert read == 5 and len(decoded) == 1
    assert [(row["alert"], row["reason"]) for row in skipped] == [
        (1, "all-zero cutout"),
        (2, "missing cutout"),
        (3, "corrupt gzip"),
        (4, "bad FITS"),
    ]
    assert "cutoutScience" in skipped[0]["detail"] and "cutoutTemplate" in skipped[1]["detail"]


def test_bad_files_give_clear_reasons(tmp_path):
    good = write_avro(tmp_path / "good.avro", [ztf_like_record(0)]).read_bytes()
    cases = {
        "empty.avro": (b"", "empty file"),
        "notes.txt": (b"these are not packets\n", "wrong format"),
        "packet.avro.gz": (gzip.compress(good), "wrong format"),
        "truncated.avro": (good[: len(good) // 2], "truncated avro"),
        "header-only.avro": (good[:40], "truncated avro"),
    }
    for name, (content, _) in cases.items():
        (tmp_path / name).write_bytes(content)
    write_avro(tmp_path / "bzip2.avro", [ztf_like_record(0)], codec="bzip2")
    cases["bzip2.avro"] = (None, "unknown codec")
    other = {"type": "record", "name": "weather", "fields": [{"name": "temperature", "type": "double"}]}
    write_avro(tmp_path / "weather.avro", [{"temperature": 3.0}], schema=other)
    cases["weather.avro"] = (None, "unsupported schema")
    snappy = bytearray(write_avro(tmp_path / "s.avro", [ztf_like_record(0)], codec="snappy").read_bytes())
    snappy[-40] ^= 0xFF  # inside the compressed block: the CRC or the decompression catches it
    (tmp_path / "s.avro").write_bytes(bytes(snappy))
    cases["s.avro"] = (None, "corrupt avro")
    decoded = decode_packets(tmp_path)
    reasons = dict(zip(decoded.skipped["file"].map(lambda f: f.split("/")[-1]), decoded.skipped["reason"], strict=True))
    for name, (_, reason) in cases.items():
        assert reasons[name] == reason, (name, reasons.get(name))
    assert decoded.summary()["written"] == {"ztf": 1}
    assert decoded.read == 1 + len(cases)
    with pytest.raises(PacketError, match="not an Avro"):
        read_avro_container(b"PAR1....")


def test_a_header_seen_before_reads_as_a_parsed_one(tmp_path, monkeypatch):
    from alertlib.io import packets

    monkeypatch.setattr(packets, "_HEADERS", [])
    first = write_avro(tmp_path / "a.avro", [ztf_like_record(0)]).read_bytes()
    second = write_avro(tmp_path / "b.avro", [ztf_like_record(1), ztf_like_record(2)]).read_bytes()
    parsed, blocks = read_avro_container(first)
    assert len(packets._HEADERS) == 1
    header = packets._HEADERS[0][0]
    assert second.startswith(header) and second[len(header) : len(header) + 16] != first[len(header) : len(header) + 16]
    known, known_blocks = read_avro_container(second)  # the same header, another sync marker
    assert len(packets._HEADERS) == 1 and known == parsed
    assert sum(count for count, _ in known_blocks) == 2
    assert [r["candid"] for r in iter_avro_records(second)] == [1001, 1002]
    for cut in (len(header), len(header) + 10, len(header) + 20):
        with pytest.raises(PacketError, match="truncated avro"):
            read_avro_container(second[:cut])
    known["avro.codec"] = b"bzip2"  # a caller's changes do not reach the next file
    assert read_avro_container(first)[0] == parsed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=0, max_value=10_000))
def test_damaged_packets_never_crash(tmp_path, cut, flip):
    """Any truncation or flipped byte gives triplets or documented skip rows, never an exception."""
    good = bytearray(
        write_avro(tmp_path / "good.avro", [ztf_like_record(0), ztf_like_record(1)], "deflate").read_bytes()
    )
    damaged = bytearray(good[: cut % (len(good) + 1)])
    if damaged:
        damaged[flip % len(damaged)] ^= 0x5A
    path = tmp_path / "damaged.avro"
    path.write_bytes(bytes(damaged))
    decoded, skipped, read = decode_file(path)
    assert read == len(decoded) + len(skipped)
    assert len(decoded) + len(skipped) >= 1
    for row in skipped:
        assert row["reason"] and row["file"] == str(path)


# ---------------------------------------------------------------------------------------------
# Fast FITS against astropy
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    bitpix=st.sampled_from([8, 16, 32, 64, -32, -64]),
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    scaling=st.sampled_from([None, (1.0, 0.0), (2.5, -3.0), "unsigned"]),
    seed=st.integers(0, 2**16),
)
def test_fitsfast_equals_astropy(bitpix, shape, scaling, seed):
    rng = np.random.default_rng(seed)
    dtype = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32, -64: np.float64}[bitpix]
    if bitpix > 0:
        raw = rng.integers(np.iinfo(dtype).min // 2, np.iinfo(dtype).max // 2, size=shape, dtype=dtype)
    else:
        raw = rng.normal(size=shape).astype(dtype)
        raw.flat[0] = np.nan
    hdu = fits.PrimaryHDU(raw)
    if scaling == "unsigned" and bitpix in (16, 32, 64):
        hdu.header["BZERO"] = 2 ** (bitpix - 1)
    elif isinstance(scaling, tuple):
        hdu.header["BSCALE"], hdu.header["BZERO"] = scaling
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    data = buffer.getvalue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fits.open(io.BytesIO(data))[0].data
    mine = fitsfast.read_image(data)
    assert mine.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(mine, expected)


def test_fitsfast_errors():
    data = fits_stamp(np.ones((5, 5)), gzipped=False)
    with pytest.raises(fitsfast.FitsError, match="truncated"):
        fitsfast.read_image(data[: 2880 + 50])  # the data unit needs 100 bytes
    with pytest.raises(fitsfast.FitsError, match="END"):
        fitsfast.read_image(data[:2000])
    with pytest.raises(fitsfast.FitsError, match="not a FITS"):
        fitsfast.read_image(b"X" * 2880)
    with pytest.raises(PacketError, match="corrupt gzip"):
        decode_stamp_fast(b"\x1f\x8b" + b"\x00" * 50)


# ---------------------------------------------------------------------------------------------
# Real packets
# ---------------------------------------------------------------------------------------------


def _real_stamps(root):
    import pyarrow.parquet as pq

    stamps = []
    for path in sorted(root.rglob("*.avro")):
        try:
            records = list(fastavro.reader(path.open("rb")))
        except (ValueError, IndexError, EOFError):
            continue  # the truncated and corrupt containers kept on purpose (test_ingest lists them)
        for record in records:
            stamps += [record.get(name) for name in CUTOUT_FIELDS.values() if isinstance(record, dict)]
    for path in sorted(root.rglob("*.parquet")):
        names = set(pq.read_schema(path).names)
        columns = [name for name in CUTOUT_FIELDS.values() if name in names]
        for row in pq.read_table(path, columns=columns).to_pylist():
            stamps += [row[name] for name in columns]
    stamps = [s["stampData"] if isinstance(s, dict) else s for s in stamps if s is not None]
    return [zlib.decompress(s, 47) if s[:2] == b"\x1f\x8b" else s for s in stamps]


@pytest.mark.realdata
def test_fitsfast_equals_astropy_on_every_real_stamp(shared_data):
    stamps = _real_stamps(shared_data / "alert-packets")
    assert len(stamps) > 1000
    hdus_checked = 0
    for stamp in stamps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = [hdu.data for hdu in fits.open(io.BytesIO(stamp))]
        mine = fitsfast.read_hdus(stamp)
        assert len(mine) == len(expected)
        for (_, array), reference in zip(mine, expected, strict=True):
            assert array.dtype == reference.dtype.newbyteorder("=")
            np.testing.assert_array_equal(array, reference)
            hdus_checked += 1
    assert hdus_checked > len(stamps)  # Rubin stamps have UNCERT and PSFIMAGE HDUs too


@pytest.fixture(scope="module")
def real_decoded():
    from alertlib.core.paths import real_data_path

    root = real_data_path("ztf_packets")
    if root is None:
        pytest.skip("real alert packets not found under the shared data")
    folder = root.parent
    return folder, decode_packets(folder, "fast"), decode_packets(folder, "astropy")


@pytest.mark.realdata
def test_every_real_packet_becomes_a_triplet_or_a_reason(real_decoded):
    folder, fast, _ = real_decoded
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    used = set().union(*(set(d.candidates["file"]) for d in fast.datasets.values()))
    listed = set(fast.skipped["file"])
    assert set(files) == used | listed
    written = fast.summary()["written"]
    assert fast.read == sum(written.values()) + len(fast.skipped)
    assert written["ztf"] >= 1230  # 12 + 98 + 51 + 67 + 57 stream packets, the exposure, the broker sets
    assert written["atlas"] >= 12
    assert sum(v for k, v in written.items() if k.startswith("rubin/")) >= 25 + 50 + 144
    # Skipped: the simulated LSST packets (null cutouts) and the broker sets' real-world faults, each
    # with its reason; nothing else.
    lsst = fast.skipped["file"].str.contains("/lsst/")
    assert set(fast.skipped.loc[lsst, "reason"]) == {"no cutouts"}
    faults = fast.skipped[~lsst]
    assert faults["file"].str.contains("/ztf-brokers/").all()
    assert set(faults["reason"]) <= {"truncated avro", "corrupt avro", "wrong format", "unsupported schema"}
    ztf = fast.datasets["ztf"]
    assert ztf.triplets.shape == (written["ztf"], 63, 63, 3)
    assert ztf.candidates["candid"].notna().all() and ztf.candidates["magpsf"].notna().all()
    small = (ztf.candidates["stamp_height"] < 63) | (ztf.candidates["stamp_width"] < 63)
    stream = ztf.candidates["file"].str.contains("/ztf/|/ztf-spark-snappy/|/fink-ztf-parquet/", regex=True)
    assert (small & stream).sum() == 9  # chip-edge stamps (8 Spark-rewritten, 1 Fink), padded at the bottom/right
    norms = np.sqrt((ztf.triplets.astype(np.float64) ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


@pytest.mark.realdata
def test_fast_decoder_equals_astropy_reference_on_real_packets(real_decoded):
    _, fast, reference = real_decoded
    # The same alerts written, and the same (file, alert) skipped; the reasons given for a damaged
    # container may be worded differently by the two readers ("truncated" is only known to ours).
    for key in ("files", "read", "written"):
        assert fast.summary()[key] == reference.summary()[key]
    skipped = [
        frame[["file", "alert"]].astype(str).sort_values(["file", "alert"]).to_numpy().tolist()
        for frame in (fast.skipped, reference.skipped)
    ]
    assert skipped[0] == skipped[1]
    for name, dataset in fast.datasets.items():
        np.testing.assert_array_equal(dataset.triplets, reference.datasets[name].triplets)
        # The whole candidate table: same columns, order, dtypes and values (the fast path skips the
        # histories and unused records without decoding them, and must lose nothing else).
        pd.testing.assert_frame_equal(dataset.candidates, reference.datasets[name].candidates)


@pytest.mark.realdata
def test_atlas_missing_reference_and_rubin_native_size(real_decoded):
    _, fast, _ = real_decoded
    atlas = fast.datasets["atlas"]
    assert not atlas.candidates["has_reference"].any()
    assert not atlas.triplets[..., 1].any()  # the documented all-zero reference channel
    assert (np.abs(atlas.triplets[..., [0, 2]]).sum(axis=(1, 2)) > 0).all()
    assert set(atlas.candidates["stamp_height"]) == {61}
    rubin = fast.datasets["rubin/30x30"]
    assert rubin.triplets.shape[1:] == (30, 30, 3)
    assert rubin.candidates["has_reference"].all()
    assert rubin.candidates["objectId"].str.len().gt(0).all() and rubin.candidates["candid"].notna().all()
    spark = fast.datasets["ztf"].candidates
    spark = spark[spark["file"].str.contains("ztf-spark-snappy")]
    assert len(spark) == 98 and spark["candid"].notna().all()  # from candidate.candid


def test_expand_paths_through_a_parent_folder_and_hidden_files(tmp_path, monkeypatch):
    from alertlib.io.packets import expand_paths

    folder = tmp_path / "packets"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ("a.avro", "sub/b.avro", ".c.avro", ".hidden/d.avro"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    # A relative path through ".." (as in ../shared/data/...) is not a hidden folder.
    found = expand_paths(["../packets"])
    assert [p.name for p in found] == ["a.avro", "b.avro"]


@pytest.mark.realdata
def test_workers_give_what_one_process_gives(real_decoded):
    folder, fast, _ = real_decoded
    with_workers = decode_packets(folder, "fast", workers=2)
    assert with_workers.summary() == fast.summary()
    pd.testing.assert_frame_equal(with_workers.skipped, fast.skipped)
    for name, dataset in fast.datasets.items():
        assert with_workers.datasets[name].triplets.tobytes() == dataset.triplets.tobytes()
        pd.testing.assert_frame_equal(with_workers.datasets[name].candidates, dataset.candidates)


def test_triplets_gathered_in_blocks_keep_their_order():
    from alertlib.io.packets import _TripletStack

    batches = [np.full((count, 2, 2, 3), start, dtype=np.float32) for start, count in ((1, 3), (2, 1), (3, 4))]
    expected = np.concatenate(batches)
    for capacity in (1, 2, 8, 100):  # blocks filled exactly, split across blocks, one block part-filled
        stack = _TripletStack((2, 2, 3), capacity)
        for batch in batches:
            stack.extend(batch)
        np.testing.assert_array_equal(stack.stacked(), expected)
    exact = _TripletStack((2, 2, 3), 8)
    exact.extend(expected)
    assert exact.stacked() is exact.blocks[0]  # a block filled exactly is the result itself, not copied
