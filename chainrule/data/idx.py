"""Read and write IDX files, the format MNIST and Fashion-MNIST are distributed in.

An IDX file is a 4-byte magic number, one 4-byte size per dimension, then the data:

* magic: two zero bytes, a data type code, the number of dimensions;
* type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64;
* every number, sizes and data alike, is big-endian; the data is in C (row-major) order.

Files are often gzip-compressed (``train-images-idx3-ubyte.gz``). :func:`read_idx`
recognises gzip by its magic bytes, not by the file name, so a ``.gz`` file that a
browser already unpacked, or a compressed file saved without ``.gz``, still loads.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from chainrule.errors import ArgumentError, DataError, DTypeError
from chainrule.fileio import atomic_write

__all__ = ["IDX_DTYPES", "read_idx", "read_idx_header", "write_idx"]

#: IDX type code -> NumPy dtype of the data on disk (big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _describe_codes() -> str:
    return ", ".join(f"0x{code:02X} ({dtype.name})" for code, dtype in IDX_DTYPES.items())


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes; fewer only at end of stream (GzipFile may return short reads)."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part = stream.read(min(remaining, _CHUNK))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _count_rest(stream: BinaryIO) -> int:
    """Count (without keeping) the bytes left in the stream."""
    total = 0
    while part := stream.read(_CHUNK):
        total += len(part)
    return total


def _parse_header(stream: BinaryIO, name: str, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and on-disk dtype an IDX stream's header declares (the stream is left at
    the data); ``what`` says whether sizes are of the file or of its gzip content."""
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise DataError(
            f"{name}: expected an IDX file starting with a 4-byte magic number, "
            f"found only {len(magic)} byte(s) {what}"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{name}: expected an IDX magic number starting with two zero bytes (00 00), "
            f"found {magic[:2].hex(' ')}; this is not an IDX file"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{name}: expected an IDX data type code among {_describe_codes()}, found 0x{code:02X}"
        )
    if ndim == 0:
        raise DataError(f"{name}: expected at least 1 dimension in the IDX header, found 0")
    header = _read_exactly(stream, 4 * ndim)
    if len(header) < 4 * ndim:
        raise DataError(
            f"{name}: expected {4 * ndim} bytes of dimension sizes for {ndim} dimensions, "
            f"found {len(header)} byte(s) {what}"
        )
    shape = tuple(int(size) for size in np.frombuffer(header, dtype=">u4"))
    return shape, IDX_DTYPES[code]


def _parse(stream: BinaryIO, name: str, what: str) -> np.ndarray:
    """Parse an IDX stream; ``what`` says whether sizes are of the file or of its gzip content."""
    shape, disk_dtype = _parse_header(stream, name, what)
    ndim = len(shape)
    header_bytes = 4 + 4 * ndim
    data_bytes = math.prod(shape) * disk_dtype.itemsize
    expected_total = header_bytes + data_bytes
    # Read at most what the header promises, so a corrupt header claiming terabytes
    # fails on the length check below instead of on a huge allocation.
    data = _read_exactly(stream, data_bytes)
    if len(data) < data_bytes:
        raise DataError(
            f"{name}: truncated: the header (shape {shape}, {disk_dtype.name}) implies "
            f"{expected_total} bytes {what}, found {header_bytes + len(data)}"
        )
    extra = _count_rest(stream)
    if extra:
        raise DataError(
            f"{name}: trailing data: the header (shape {shape}, {disk_dtype.name}) implies "
            f"{expected_total} bytes {what}, found {expected_total + extra}"
        )
    # astype both converts to native byte order and copies out of the read-only bytes,
    # so callers get an ordinary writable array.
    array = np.frombuffer(data, dtype=disk_dtype).reshape(shape)
    return array.astype(disk_dtype.newbyteorder("="))


def _read_gzip_or_raw(path: str | os.PathLike[str], parse):
    """``parse(stream, name, what)`` on the file, decompressed when it is gzip."""
    path = Path(path)
    name = str(path)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not is_gzip:
            return parse(raw, name, "in the file")
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return parse(stream, name, "after decompression")
        except EOFError as err:
            raise DataError(
                f"{name}: the gzip stream ends early (expected a complete gzip file, "
                f"found a truncated one): {err}"
            ) from err
        except (gzip.BadGzipFile, zlib.error) as err:
            raise DataError(
                f"{name}: corrupt gzip data (expected a valid gzip stream, "
                f"the decompressor reported: {err})"
            ) from err


def read_idx_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype (native byte order) that an IDX file's header declares, read
    without its data: a gzip file is inflated only as far as its header.

    Raises:
        DataError: the header is not IDX or is cut short (the message names the file).
        FileNotFoundError: the file does not exist.
    """
    shape, disk_dtype = _read_gzip_or_raw(path, _parse_header)
    return shape, disk_dtype.newbyteorder("=")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Args:
        path: the file. Gzip compression is recognised by the content's magic bytes.

    Returns:
        An array with the shape stored in the header, e.g. (N, 28, 28) for an image
        file or (N,) for a label file, of the stored dtype (uint8, int8, int16, int32,
        float32 or float64) in native byte order. The array is writable.

    Raises:
        DataError: the file is not IDX (bad magic or type code), its header is cut
            short, its data is shorter or longer than the header implies, or its gzip
            stream is corrupt. The message names the file and says what was expected.
        FileNotFoundError: the file does not exist.
    """
    return _read_gzip_or_raw(path, _parse)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed if the name ends with ``.gz``.

    The data is written big-endian in C order. The write is atomic: the bytes go to a
    temporary file in the same folder, which is flushed, fsynced and then renamed over
    ``path``; a failure leaves no partial file behind.

    Args:
        path: destination file.
        array: 1 to 255 dimensions, each smaller than 2**32, of dtype uint8, int8,
            int16, int32, float32 or float64.

    Raises:
        DTypeError (a TypeError): the dtype has no IDX type code (e.g. int64, bool, uint16).
        ArgumentError (a ValueError): the array has 0 or more than 255 dimensions, or a
            dimension of 2**32 or more.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    code = next((c for c, dt in IDX_DTYPES.items() if dt.newbyteorder("=") == native), None)
    if code is None:
        raise DTypeError(
            f"cannot write {path}: expected an array of dtype uint8, int8, int16, int32, "
            f"float32 or float64, found {array.dtype}"
        )
    if not 1 <= array.ndim <= 255:
        raise ArgumentError(
            f"cannot write {path}: expected 1 to 255 dimensions, found {array.ndim}"
        )
    if any(size >= 2**32 for size in array.shape):
        raise ArgumentError(f"cannot write {path}: a dimension of {array.shape} is 2**32 or more")

    path = Path(path)
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()

    with atomic_write(path) as handle:
        if path.name.endswith(".gz"):
            # mtime=0 and the final name keep the output reproducible and free of the
            # temporary file's name.
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=handle, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            handle.write(header)
            handle.write(payload)
