"""IDX reader and writer: round trips, the byte layout, and every kind of broken file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chainrule.data.idx import read_idx, write_idx
from chainrule.errors import DataError

# dtype -> (IDX code, struct format of one big-endian item), written out from the
# format's description rather than taken from the module under test.
SPEC = {
    np.uint8: (0x08, ">B"),
    np.int8: (0x09, ">b"),
    np.int16: (0x0B, ">h"),
    np.int32: (0x0C, ">i"),
    np.float32: (0x0D, ">f"),
    np.float64: (0x0E, ">d"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Build an IDX file by hand with struct, independently of write_idx."""
    code, fmt = SPEC[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    body = b"".join(struct.pack(fmt, v) for v in array.ravel().tolist())
    return header + body


def sample(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        # Include both extremes so a sign or byte-order slip shows.
        values = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        values.flat[0] = info.min
        values.flat[-1] = info.max
        return values
    values = rng.standard_normal(shape).astype(dtype) * dtype(1e3)
    values.flat[0] = -0.0
    return values


DTYPES = list(SPEC)
SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path: Path, dtype: type, shape: tuple[int, ...], suffix: str) -> None:
    array = sample(dtype, shape)
    path = tmp_path / f"data-idx{len(shape)}{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    # Bit patterns too: -0.0 == 0.0 would hide a sign error.
    assert back.tobytes() == array.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_written_bytes_match_the_format(tmp_path: Path, dtype: type) -> None:
    array = sample(dtype, (2, 3, 4))
    write_idx(tmp_path / "raw", array)
    write_idx(tmp_path / "packed.gz", array)
    expected = idx_bytes(array)
    assert (tmp_path / "raw").read_bytes() == expected
    assert gzip.decompress((tmp_path / "packed.gz").read_bytes()) == expected


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_reads_hand_made_files(tmp_path: Path, dtype: type) -> None:
    array = sample(dtype, (3, 2))
    (tmp_path / "hand").write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "hand"), array)


def test_mnist_like_header(tmp_path: Path) -> None:
    # The header of MNIST's t10k-labels file: 0x00000801, then 10000.
    labels = np.arange(10000, dtype=np.uint8) % 10
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes.fromhex("00000801") + (10000).to_bytes(4, "big") + labels.tobytes())
    back = read_idx(path)
    assert back.shape == (10000,)
    np.testing.assert_array_equal(back, labels)


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    array = sample(np.int16, (4, 4))
    compressed = tmp_path / "no-suffix"
    compressed.write_bytes(gzip.compress(idx_bytes(array)))
    raw_named_gz = tmp_path / "already-unpacked.gz"
    raw_named_gz.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(compressed), array)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)


def test_empty_dimension(tmp_path: Path) -> None:
    array = np.zeros((0, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "empty", array)
    assert read_idx(tmp_path / "empty").shape == (0, 28, 28)


@settings(max_examples=40, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.dtype(d) for d in DTYPES]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, array, compress) -> None:
    path = tmp_path_factory.mktemp("prop") / ("a.gz" if compress else "a")
    write_idx(path, array)
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype == array.dtype
    assert back.tobytes() == np.ascontiguousarray(array).tobytes()


def test_write_accepts_big_endian_and_non_contiguous_input(tmp_path: Path) -> None:
    array = np.arange(24, dtype=">i4").reshape(4, 6)[:, ::2]
    write_idx(tmp_path / "x", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), array)


# --- broken files: each one a DataError naming the file -------------------------------


def good() -> bytes:
    return idx_bytes(np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4))


def expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x01\x00" + good()[2:])
    expect_error(path, "two zero bytes", "01 00")


def test_not_idx_at_all(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<html>404 not found</html>")
    expect_error(path, "3c 68")  # '<h' in hex


def test_bad_dtype_code(tmp_path: Path) -> None:
    data = bytearray(good())
    data[2] = 0x0A
    path = tmp_path / "bad-code"
    path.write_bytes(bytes(data))
    expect_error(path, "0x0A", "0x08")


def test_too_short_for_magic(tmp_path: Path) -> None:
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00")
    expect_error(path, "2 byte")


def test_header_cut_in_the_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "cut-header"
    path.write_bytes(good()[:9])  # 3 dimensions need 12 bytes after the magic
    expect_error(path, "12 bytes", "found 5")


def test_truncated_data(tmp_path: Path) -> None:
    data = good()
    path = tmp_path / "truncated"
    path.write_bytes(data[:-3])
    expected_total = 4 + 3 * 4 + 2 * 3 * 4 * 4
    assert len(data) == expected_total
    expect_error(path, "truncated", str(expected_total), str(expected_total - 3))


def test_trailing_bytes(tmp_path: Path) -> None:
    data = good()
    path = tmp_path / "trailing"
    path.write_bytes(data + b"\x00" * 5)
    expect_error(path, "trailing", str(len(data)), str(len(data) + 5))


def test_truncated_and_trailing_inside_gzip(tmp_path: Path) -> None:
    data = good()
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(data[:-1]))
    expect_error(short, str(len(data)), str(len(data) - 1), "after decompression")
    long = tmp_path / "long.gz"
    long.write_bytes(gzip.compress(data + b"xy"))
    expect_error(long, str(len(data)), str(len(data) + 2))


def test_corrupt_gzip(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(np.arange(5000, dtype=np.int32).tobytes()))
    # Flip bits in the middle of the deflate data: either inflate fails or the CRC does.
    for i in range(len(packed) // 2, len(packed) // 2 + 8):
        packed[i] ^= 0xFF
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(packed))
    expect_error(path, "gzip")


def test_corrupt_gzip_with_idx_content(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(good()))
    packed[-8] ^= 0x01  # the CRC32 in the trailer
    path = tmp_path / "bad-crc.gz"
    path.write_bytes(bytes(packed))
    expect_error(path, "gzip")


def test_cut_gzip_stream(tmp_path: Path) -> None:
    packed = gzip.compress(np.arange(5000, dtype=np.int32).tobytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    expect_error(path, "gzip")


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# --- writing ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.bool_, np.complex64])
def test_write_rejects_dtypes_without_an_idx_code(tmp_path: Path, dtype: type) -> None:
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        write_idx(tmp_path / "x", np.zeros(3, dtype=dtype))
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_scalars(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="found 0"):
        write_idx(tmp_path / "x", np.uint8(3))


def test_write_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    write_idx(path, np.zeros(4, dtype=np.uint8))
    write_idx(path, np.arange(7, dtype=np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["labels.gz"]
    np.testing.assert_array_equal(read_idx(path), np.arange(7))


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    array = sample(np.float32, (3, 3))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    # The same name in two folders: the gzip header holds the name, and must hold no time.
    write_idx(tmp_path / "one" / "a.gz", array)
    write_idx(tmp_path / "two" / "a.gz", array)
    a, b = (tmp_path / "one" / "a.gz").read_bytes(), (tmp_path / "two" / "a.gz").read_bytes()
    assert a[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert a == b
    assert gzip.decompress(a) == gzip.decompress(b)


def test_bad_write_arguments_raise_chainrules_own_errors(tmp_path):
    from chainrule.errors import ArgumentError, DTypeError

    with pytest.raises(DTypeError):
        write_idx(tmp_path / "a.idx", np.zeros(3, np.int64))
    with pytest.raises(ArgumentError):
        write_idx(tmp_path / "a.idx", np.zeros(()))
