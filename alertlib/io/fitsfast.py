"""A small, fast FITS image reader for alert cutouts: header cards parsed by hand, pixels as numpy.

Alert stamps are tiny (63x63 or 30x30 pixels) and come by the million; building an astropy HDUList
per stamp costs more than everything else in decoding an alert. This module reads the few header
keywords an image needs (``BITPIX``, ``NAXIS``, ``NAXISn``, ``BSCALE``, ``BZERO``, ``BLANK``,
``PCOUNT``, ``GCOUNT``) and views the data unit as a big-endian numpy array, applying the scaling the
way astropy does, so that the arrays are identical to ``astropy.io.fits`` (checked in the tests on
every real packet). Only image HDUs are supported (alert cutouts are images); a table HDU raises.
"""

from __future__ import annotations

import math

import numpy as np

from alertlib.core.jit import kernel

BLOCK = 2880
CARD = 80
_BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_NEEDED = frozenset({b"SIMPLE", b"XTENSION", b"BITPIX", b"NAXIS", b"BSCALE", b"BZERO", b"BLANK", b"PCOUNT", b"GCOUNT"})
_NEEDED8 = frozenset(keyword.ljust(8) for keyword in _NEEDED)  # as they stand in a card's first 8 bytes
_END = b"END".ljust(8)


class FitsError(ValueError):
    """The bytes are not a FITS image this reader understands (truncated, corrupt, not an image)."""


def _value(card: bytes):
    """The value of a fixed-format header card: int, float, bool or string."""
    text = card[10:].strip()
    if text.startswith(b"'"):
        return text[1:].split(b"'", 1)[0].decode("ascii", "replace").rstrip()
    text = text.split(b"/", 1)[0].strip()
    if text in (b"T", b"F"):
        return text == b"T"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text.replace(b"D", b"E"))
        except ValueError as error:
            raise FitsError(f"cannot parse header card {card!r}") from error


_LAYOUT_CACHE_SIZE = 4096


def read_header(data: bytes | memoryview, offset: int = 0) -> tuple[dict[str, object], int]:
    """Parse the header that starts at ``offset``.

    A compiled loop (:func:`_scan_cards`) finds the END card and the few cards an image needs, so a
    long header (ATLAS stamps carry 14 blocks of instrument cards) costs microseconds; only those
    cards are parsed in Python.

    Returns
    -------
    (dict, int)
        The keywords an image needs (upper case, ``NAXISn`` included) and the offset of the data unit.
    """
    size = len(data)
    blocks = (size - offset) // BLOCK
    if blocks <= 0:
        raise FitsError(f"header truncated at byte {size} (no END card within the file)")
    found = np.empty(_MAX_NEEDED_CARDS, dtype=np.int64)
    end, count = _scan_cards(np.frombuffer(data, dtype=np.uint8), offset, blocks, _NEEDED_KEYS, found)
    if count > _MAX_NEEDED_CARDS:
        raise FitsError(f"more than {_MAX_NEEDED_CARDS} structural cards (NAXISn, BITPIX, ...) in one header")
    header: dict[str, object] = {}
    first_block: set[str] = set()
    for index in found[:count].tolist():
        start = offset + index * CARD
        card = bytes(data[start : start + CARD])
        if card[8:10] == b"= ":
            keyword = card[:8].rstrip().decode("ascii")
            header[keyword] = _value(card)
            if index < BLOCK // CARD:
                first_block.add(keyword)
    if (end < 0 or end >= BLOCK // CARD) and not first_block & {"SIMPLE", "XTENSION"}:
        raise FitsError("not a FITS file: the first card is neither SIMPLE nor XTENSION")
    if end < 0:
        raise FitsError(f"header truncated at byte {size} (no END card within the file)")
    if not header:
        raise FitsError("empty FITS header")
    return header, offset + (end // (BLOCK // CARD) + 1) * BLOCK


_MAX_NEEDED_CARDS = 1024
_END_KEY = int.from_bytes(_END, "little")
_NAXIS_KEY = int.from_bytes(b"NAXIS", "little")
_NEEDED_KEYS = np.array([int.from_bytes(k, "little") for k in sorted(_NEEDED8)], dtype=np.uint64)


@kernel
def _scan_cards(buf, offset, blocks, keys, found):  # pragma: no cover - compiled by numba
    """(index of the END card or -1, number of needed cards) in ``blocks`` blocks from ``offset``;
    ``found`` receives the indices of cards whose keyword is in ``keys`` (8 bytes, little-endian
    uint64) or starts with NAXIS, in order, before END."""
    end_key = np.uint64(_END_KEY)
    naxis = np.uint64(_NAXIS_KEY)
    mask5 = np.uint64(0xFFFFFFFFFF)
    count = 0
    for card in range(blocks * 36):
        start = offset + card * 80
        key = np.uint64(0)
        for i in range(8):
            key |= np.uint64(buf[start + i]) << np.uint64(8 * i)
        if key == end_key:
            return card, count
        wanted = (key & mask5) == naxis
        for k in keys:
            if key == k:
                wanted = True
        if wanted:
            if count < found.shape[0]:
                found[count] = card
            count += 1
    return -1, count


def _data_shape(header: dict) -> tuple[int, ...]:
    naxis = int(header.get("NAXIS", 0))
    # FITS lists the fastest axis first; numpy wants it last.
    return tuple(int(header[f"NAXIS{axis}"]) for axis in range(naxis, 0, -1))


def _data_bytes(header: dict, shape: tuple[int, ...]) -> int:
    bitpix = int(header["BITPIX"])
    if not shape:
        return 0
    count = math.prod(shape) + int(header.get("PCOUNT", 0))
    return abs(bitpix) // 8 * int(header.get("GCOUNT", 1)) * count


def _scaled(raw: np.ndarray, header: dict) -> np.ndarray:
    """Apply BSCALE/BZERO/BLANK as astropy does (and with its output dtypes)."""
    bitpix = int(header["BITPIX"])
    bscale = header.get("BSCALE", 1)
    bzero = header.get("BZERO", 0)
    if bscale == 1 and bzero == 0:
        return raw.astype(raw.dtype.newbyteorder("="))
    if bitpix > 0 and bscale == 1 and bitpix > 8 and bzero == 2 ** (bitpix - 1):
        # The FITS convention for unsigned integers: astropy returns uint16/32/64.
        unsigned = np.dtype(f"u{bitpix // 8}")
        return (raw.astype(raw.dtype.newbyteorder("=")).view(unsigned) ^ unsigned.type(2 ** (bitpix - 1))).astype(
            unsigned
        )
    if bitpix == 8 and bscale == 1 and bzero == -128:
        return (raw.view(np.uint8) ^ np.uint8(128)).view(np.int8).copy()
    out_dtype = np.float64 if bitpix in (32, 64, -64) else np.float32
    scaled = raw.astype(out_dtype)
    if bscale != 1:
        scaled *= out_dtype(bscale)
    if bzero != 0:
        scaled += out_dtype(bzero)
    if bitpix > 0 and "BLANK" in header:
        scaled[raw == header["BLANK"]] = np.nan
    return scaled


def read_hdus(data: bytes | memoryview) -> list[tuple[dict, np.ndarray | None]]:
    """Every HDU of a FITS file as ``(header keywords, image array or None)``."""
    hdus = []
    offset = 0
    size = len(data)
    while offset < size:
        header, data_offset = read_header(data, offset)
        if "XTENSION" in header and header["XTENSION"] != "IMAGE":
            raise FitsError(f"HDU {len(hdus)} is a {header['XTENSION']} extension; only images are supported")
        if "BITPIX" not in header or int(header["BITPIX"]) not in _BITPIX_DTYPES:
            raise FitsError(f"HDU {len(hdus)} has an invalid BITPIX {header.get('BITPIX')!r}")
        shape = _data_shape(header)
        nbytes = _data_bytes(header, shape)
        if data_offset + nbytes > size:
            raise FitsError(f"data unit of HDU {len(hdus)} truncated: needs {nbytes} bytes, {size - data_offset} left")
        array = None
        if shape:
            raw = np.frombuffer(
                data, dtype=_BITPIX_DTYPES[int(header["BITPIX"])], count=math.prod(shape), offset=data_offset
            )
            array = _scaled(raw.reshape(shape), header)
        hdus.append((header, array))
        offset = data_offset + -(-nbytes // BLOCK) * BLOCK
        # Trailing padding shorter than a block, or zeros, is not another HDU.
        if size - offset < BLOCK or not bytes(data[offset : offset + 8]).strip(b"\0 "):
            break
    return hdus


def read_image(data: bytes | memoryview, native: bool = True) -> np.ndarray:
    """The primary image of a FITS file as a numpy array with astropy's dtype and values.

    ``native=False`` returns the data unit itself, a read-only big-endian view, whenever no
    BSCALE/BZERO/BLANK scaling applies (values identical; the copy to native byte order is left to
    whoever copies the pixels next). The layout of a one-block primary header (dtype, shape, data
    offset) is looked up by the header's bytes once it has been seen.
    """
    layout = _LAYOUT_CACHE.get(bytes(data[:BLOCK]))
    if layout is None:
        layout = _image_layout(data)
    dtype, shape, count, data_offset, nbytes, header = layout
    if data_offset + nbytes > len(data):
        raise FitsError(f"image data truncated: needs {nbytes} bytes, {len(data) - data_offset} left")
    raw = np.frombuffer(data, dtype=dtype, count=count, offset=data_offset).reshape(shape)
    if header is None:  # no scaling
        return raw if not native else raw.astype(raw.dtype.newbyteorder("="))
    return _scaled(raw, header)


_LAYOUT_CACHE: dict[bytes, tuple] = {}


def _image_layout(data: bytes | memoryview) -> tuple:
    """(dtype, shape, pixel count, data offset, data bytes, header or None when unscaled) of the
    primary image, validated; cached by header bytes when the header is one block."""
    header, data_offset = read_header(data, 0)
    if "SIMPLE" not in header:
        raise FitsError("not a FITS file: no SIMPLE card in the primary header")
    bitpix = int(header.get("BITPIX", 0))
    if bitpix not in _BITPIX_DTYPES:
        raise FitsError(f"invalid BITPIX {bitpix!r}")
    shape = _data_shape(header)
    if not shape:
        raise FitsError("the primary HDU holds no image (NAXIS = 0)")
    unscaled = header.get("BSCALE", 1) == 1 and header.get("BZERO", 0) == 0
    layout = (
        np.dtype(_BITPIX_DTYPES[bitpix]),
        shape,
        math.prod(shape),
        data_offset,
        _data_bytes(header, shape),
        None if unscaled else header,
    )
    if data_offset == BLOCK:
        if len(_LAYOUT_CACHE) >= _LAYOUT_CACHE_SIZE:
            _LAYOUT_CACHE.clear()
        _LAYOUT_CACHE[bytes(data[:BLOCK])] = layout
    return layout
