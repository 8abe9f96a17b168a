"""Alert packets to triplets: readers for ZTF, ATLAS and Rubin packets (Avro and Parquet).

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

Preprocessing (BTSbot, :mod:`alertlib.preprocess`)
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

Two decoders give identical triplets: ``"fast"`` (this module's Avro container reader with cached
schemas, ISA-L gunzip, :mod:`alertlib.fitsfast`) and ``"astropy"``, the conventional reference for
tests and the benchmark (``fastavro.reader``, ``gzip``, ``astropy.io.fits``).
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import fitsfast
from .preprocess import STAMP_SIZE, EmptyCutout, normalise_cutout

try:  # ISA-L inflates 2-3x faster than zlib; zlib gives the same bytes when isal is absent.
    from isal import isal_zlib as _inflate_module
except ImportError:  # pragma: no cover - isal is a declared dependency
    _inflate_module = zlib

CHANNELS = ("science", "reference", "difference")
# Packet field of each channel, per survey.
CUTOUT_FIELDS = {"science": "cutoutScience", "reference": "cutoutTemplate", "difference": "cutoutDifference"}
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
    """Parse an Avro object container file: (header metadata, [(record count, decompressed block)])."""
    if not data.startswith(_AVRO_MAGIC):
        raise PacketError("wrong format", "not an Avro object container file")
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
    sync = data[position : position + 16]
    position += 16
    if len(sync) < 16:
        raise PacketError("truncated avro", "the file ends inside its header")
    blocks = []
    while position < len(data):
        count, position = _read_long(data, position)
        block, position = _read_bytes(data, position)
        if data[position : position + 16] != sync:
            reason = "truncated avro" if position + 16 > len(data) else "corrupt avro"
            raise PacketError(reason, f"block {len(blocks)} is not followed by the sync marker")
        position += 16
        blocks.append((count, _decompress_block(block, codec, len(blocks))))
    return metadata, blocks


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
    if zlib.crc32(raw) != int.from_bytes(block[-4:], "big"):
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


def iter_avro_records(data: bytes) -> Iterator[dict]:
    """The records of an Avro container file, in order.

    ZTF histories are skipped by a projected reader schema (:func:`_projected_reader_schema`): each
    record has the same keys as a full decode, and the same values except inside the histories.
    """
    from fastavro import schemaless_reader

    metadata, blocks = read_avro_container(data)
    writer, reader = _parsed_schema(metadata["avro.schema"])
    for block_index, (count, block) in enumerate(blocks):
        stream = io.BytesIO(block)
        for _ in range(count):
            try:
                yield schemaless_reader(stream, writer, reader)
            except Exception as error:  # fastavro raises EOFError, ValueError, UnicodeDecodeError, ...
                raise PacketError(
                    "corrupt avro", f"record in block {block_index} does not decode: {type(error).__name__}"
                ) from error


# ---------------------------------------------------------------------------------------------
# Records to alerts, per survey
# ---------------------------------------------------------------------------------------------


def _scalars(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is None or isinstance(v, (str, int, float, bool, np.generic))}


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
    top = {k: v for k, v in _scalars(record).items() if k not in CUTOUT_FIELDS.values()}
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


def _parquet_rows(data: bytes) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as error:
        raise PacketError("corrupt parquet", str(error)[:200]) from error
    # Histories (lists) are not needed for triplets; leaving them out makes the read far faster.
    keep = [f.name for f in table.schema if not pa.types.is_list(f.type) and not pa.types.is_large_list(f.type)]
    return table.select(keep).to_pylist()


def _fastavro_records(data: bytes) -> Iterator[dict]:
    """The conventional reader (``fastavro.reader``), used by the reference decoder."""
    import fastavro

    try:
        yield from fastavro.reader(io.BytesIO(data))
    except ValueError as error:
        reason = "unknown codec" if "codec" in str(error).lower() else "corrupt avro"
        raise PacketError(reason, str(error)[:200]) from error
    except EOFError as error:
        raise PacketError("truncated avro", str(error)[:200] or "unexpected end of file") from error
    except Exception as error:  # fastavro raises many types on bad bytes
        raise PacketError("corrupt avro", f"{type(error).__name__}: {str(error)[:200]}") from error


def read_packet_file(path: str | Path, reference: bool = False) -> tuple[list[RawAlert], list[dict]]:
    """Read one packet file: its alerts, and skip rows for what could not be read.

    A file that fails part-way keeps the alerts read before the failure; the failure is one skip row.
    ``reference=True`` reads Avro with ``fastavro.reader`` instead of this module's container reader
    (an independent path for the reference decoder and the tests).
    """
    path = Path(path)
    name = str(path)
    alerts: list[RawAlert] = []
    skipped: list[dict] = []
    index = 0
    try:
        data = path.read_bytes()
        if not data:
            raise PacketError("empty file", "0 bytes")
        if data.startswith(_AVRO_MAGIC):
            records: Iterable[dict] = _fastavro_records(data) if reference else iter_avro_records(data)
        elif data.startswith(_PARQUET_MAGIC):
            records = _parquet_rows(data)
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


def decode_stamp_fast(stamp: bytes) -> np.ndarray:
    """Gunzip when gzipped (ISA-L or zlib), then :func:`alertlib.fitsfast.read_image`."""
    if stamp[:2] == _GZIP_MAGIC:
        try:
            stamp = _inflate_module.decompress(stamp, 47)
        except (zlib.error, Exception) as error:  # isal raises its own error class
            raise PacketError("corrupt gzip", str(error)) from error
    try:
        return fitsfast.read_image(stamp)
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


STAMP_DECODERS = {"fast": decode_stamp_fast, "astropy": decode_stamp_astropy}


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
    triplet = np.zeros((*out_shape, 3), dtype=np.float32)
    if decoder == "fast":
        _normalise_channels(triplet, images)
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
    """:func:`alertlib.preprocess.normalise_cutout` of every channel at once, into ``triplet``.

    Bit-identical to it (the tests compare with the reference decoder on every real packet): the
    same float64 padded cutouts, NaN -> 0, norm as ``sqrt(x.dot(x))`` of each raveled padded cutout
    (what ``np.linalg.norm`` computes) and float64 division rounded to float32; but one buffer and
    one ``nan_to_num`` for the three channels instead of several temporary arrays per channel.
    """
    height, width = triplet.shape[:2]
    buffer = np.zeros((3, height, width), dtype=np.float64)
    for channel_index, channel in enumerate(CHANNELS):
        if channel in images:
            image = images[channel]
            buffer[channel_index, : image.shape[0], : image.shape[1]] = image
    np.nan_to_num(buffer, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    for channel_index, channel in enumerate(CHANNELS):
        if channel not in images:
            continue  # the documented missing reference: an all-zero channel, has_reference False
        flat = buffer[channel_index].ravel()
        norm = np.sqrt(flat.dot(flat))
        if norm == 0.0:
            detail = "cutout is all zeros (or NaN) after NaN -> 0"
            raise PacketError("all-zero cutout", f"{CUTOUT_FIELDS[channel]}: {detail}")
        triplet[:, :, channel_index] = buffer[channel_index] / norm


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
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
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


def decode_file(path: str | Path, decoder: str = "fast") -> tuple[list[tuple[str, np.ndarray, dict]], list[dict], int]:
    """One file to ``([(dataset name, triplet, candidate row)], skip rows, alerts read)``."""
    alerts, skipped = read_packet_file(path, reference=decoder == "astropy")
    decoded = []
    for alert in alerts:
        try:
            triplet, row = alert_to_triplet(alert, decoder)
        except PacketError as error:
            skipped.append(_skip_row(alert.file, alert.index, error))
            continue
        decoded.append((dataset_name(alert.survey, triplet.shape), triplet, row))
    return decoded, skipped, len(decoded) + len(skipped)


def _decode_file_star(arguments):
    return decode_file(*arguments)


def decode_packets(
    paths: Iterable[str | Path] | str | Path, decoder: str = "fast", workers: int = 1, progress: bool = False
) -> DecodedPackets:
    """Decode every packet under ``paths`` into datasets (by survey and cutout size).

    Parameters
    ----------
    paths:
        Files and folders (folders are searched recursively; every file in them is tried).
    decoder:
        ``"fast"`` or ``"astropy"`` (the reference); both give identical triplets.
    workers:
        Processes for decoding; 1 decodes in this process. Results keep the file order either way.
    progress:
        Show a tqdm progress bar over files.
    """
    if decoder not in STAMP_DECODERS:
        raise ValueError(f"decoder must be one of {sorted(STAMP_DECODERS)}, not {decoder!r}")
    files = expand_paths(paths)
    jobs = [(f, decoder) for f in files]
    if workers > 1 and len(files) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = list(_progress(pool.imap(_decode_file_star, jobs, chunksize=16), len(jobs), progress))
    else:
        results = [decode_file(*job) for job in _progress(jobs, len(jobs), progress)]
    grouped: dict[str, tuple[list, list]] = {}
    skipped_rows: list[dict] = []
    read = 0
    for decoded, skipped, count in results:
        read += count
        skipped_rows.extend(skipped)
        for name, triplet, row in decoded:
            grouped.setdefault(name, ([], []))
            grouped[name][0].append(triplet)
            grouped[name][1].append(row)
    datasets = {
        name: PacketDataset(name, np.stack(triplets), pd.DataFrame(rows))
        for name, (triplets, rows) in sorted(grouped.items())
    }
    skipped = pd.DataFrame(skipped_rows, columns=list(SKIPPED_COLUMNS))
    return DecodedPackets(datasets=datasets, skipped=skipped, read=read, files=len(files))


def _progress(iterable, total: int, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc="packets", unit="file")


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
