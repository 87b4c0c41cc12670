"""Fuzzing: random bytes and mutated valid files at the IDX parser and checkpoint loader.

The only exceptions that may escape are chainrule's own (ChainruleError); a crash with
anything else (IndexError, struct.error, zipfile.BadZipFile, MemoryError ...) fails.
"""

import gzip
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.checkpoint import load_checkpoint, save_checkpoint
from chainrule.data.idx import read_idx, write_idx
from chainrule.errors import ChainruleError

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def valid_idx_bytes(compressed):
    buffer = io.BytesIO()
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + np.array(array.shape, dtype=">u4").tobytes()
    raw = header + array.tobytes()
    if compressed:
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(raw)
        return buffer.getvalue()
    return raw


def mutate(data, data_strategy):
    """Flip, cut, or extend a valid file at random places."""
    data = bytearray(data)
    for _ in range(data_strategy.draw(st.integers(1, 4))):
        kind = data_strategy.draw(st.sampled_from(["flip", "cut", "append", "insert"]))
        position = data_strategy.draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= data_strategy.draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "append":
            data += data_strategy.draw(st.binary(min_size=1, max_size=16))
        else:
            data[position:position] = data_strategy.draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def read_or_chainrule_error(reader, path):
    try:
        reader(path)
    except ChainruleError as error:
        assert str(path.name) in str(error)  # the message names the file
        return False
    return True


@FUZZ
@given(data=st.binary(max_size=200))
def test_idx_parser_on_random_bytes(tmp_path, data):
    path = tmp_path / "random.idx"
    path.write_bytes(data)
    read_or_chainrule_error(read_idx, path)


@FUZZ
@given(compressed=st.booleans(), data=st.data())
def test_idx_parser_on_mutated_files(tmp_path, compressed, data):
    path = tmp_path / ("mutated.idx.gz" if compressed else "mutated.idx")
    path.write_bytes(mutate(valid_idx_bytes(compressed), data))
    if read_or_chainrule_error(read_idx, path):
        assert isinstance(read_idx(path), np.ndarray)


def valid_checkpoint_bytes(tmp_path):
    path = tmp_path / "valid.npz"
    rng = np.random.default_rng(0)
    save_checkpoint(
        path,
        {"W1": rng.random((3, 2)).astype(np.float32), "b1": np.zeros(2)},
        optimizer_state={"t": np.array(3)},
        step=7,
        meta={"a": [1, 2]},
    )
    return path.read_bytes()


@FUZZ
@given(data=st.binary(max_size=300))
def test_checkpoint_loader_on_random_bytes(tmp_path, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    read_or_chainrule_error(load_checkpoint, path)


@FUZZ
@given(data=st.data())
def test_checkpoint_loader_on_mutated_files(tmp_path, data):
    path = tmp_path / "mutated.npz"
    path.write_bytes(mutate(valid_checkpoint_bytes(tmp_path), data))
    read_or_chainrule_error(load_checkpoint, path)


@FUZZ
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    dtype=st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"]),
)
def test_idx_round_trip_and_no_temp_files(tmp_path, shape, dtype):
    array = (np.arange(np.prod(shape)) % 100).astype(dtype).reshape(shape)
    path = tmp_path / "a.idx.gz"
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
