"""Fuzzing: random bytes and mutated valid files at the IDX parser and checkpoint loader.

The only exceptions that may escape are chainrule's own (ChainruleError); a crash with
anything else (IndexError, struct.error, zipfile.BadZipFile, MemoryError ...) fails.
What does load must be exactly what the file holds: an IDX file is parsed again here, by
the format, and compared; a checkpoint must give back what was saved.
"""

import gzip
import io
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.checkpoint import load_checkpoint, save_checkpoint
from chainrule.cli import main
from chainrule.data.idx import read_idx, write_idx
from chainrule.errors import ChainruleError, CheckpointError

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
    """What ``reader`` returns, or None if it raised a ChainruleError naming the file."""
    try:
        return reader(path)
    except ChainruleError as error:
        assert str(path.name) in str(error)  # the message names the file
        return None


# IDX type code -> dtype on disk, from the format's description.
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data):
    """The array that IDX bytes describe, or None if they are not a complete IDX file.

    Gzip is recognised by its magic bytes (as read_idx documents), and a raw IDX file
    cannot start with them: its first two bytes are zeros.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):  # BadGzipFile is an OSError
            return None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES or data[3] == 0:
        return None
    ndim = data[3]
    payload_start = 4 + 4 * ndim
    if len(data) < payload_start:
        return None
    shape = struct.unpack(f">{ndim}I", data[4:payload_start])
    dtype = np.dtype(IDX_TYPES[data[2]])
    if len(data) - payload_start != math.prod(shape) * dtype.itemsize:
        return None  # truncated, or trailing bytes
    return np.frombuffer(data[payload_start:], dtype=dtype).reshape(shape)


def check_read_idx(path):
    """read_idx gives exactly the array the file describes, and refuses what is no IDX file."""
    expected = parse_idx(path.read_bytes())
    got = read_or_chainrule_error(read_idx, path)
    if expected is None:
        assert got is None, f"read_idx returned {got!r} for a file that is not IDX"
        return
    assert got is not None, "read_idx refused a valid IDX file"
    assert isinstance(got, np.ndarray)
    assert got.dtype == expected.dtype.newbyteorder("=")  # the stored type, native order
    assert got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=got.dtype.kind == "f")


@FUZZ
@given(data=st.binary(max_size=200))
def test_idx_parser_on_random_bytes(tmp_path, data):
    path = tmp_path / "random.idx"
    path.write_bytes(data)
    check_read_idx(path)


@FUZZ
@given(compressed=st.booleans(), data=st.data())
def test_idx_parser_on_mutated_files(tmp_path, compressed, data):
    path = tmp_path / ("mutated.idx.gz" if compressed else "mutated.idx")
    path.write_bytes(mutate(valid_idx_bytes(compressed), data))
    check_read_idx(path)


@FUZZ
@given(
    code=st.sampled_from(sorted(IDX_TYPES)),
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    compressed=st.booleans(),
    data=st.data(),
)
def test_idx_parser_on_random_valid_files(tmp_path, code, shape, compressed, data):
    # Mutations seldom leave a valid file: here every type, with any payload bytes (NaN,
    # inf and subnormal floats among them), must load as exactly those values.
    size = math.prod(shape) * np.dtype(IDX_TYPES[code]).itemsize
    payload = data.draw(st.binary(min_size=size, max_size=size))
    raw = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload
    path = tmp_path / ("valid.idx.gz" if compressed else "valid.idx")
    path.write_bytes(gzip.compress(raw, mtime=0) if compressed else raw)
    assert parse_idx(path.read_bytes()) is not None
    check_read_idx(path)


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


def assert_holds_what_was_saved(checkpoint):
    """The parameters, optimiser state, step and meta that valid_checkpoint_bytes saves,
    written out again here (test_valid_checkpoint_holds_what_was_saved keeps the two equal)."""
    saved_params = {
        "W1": np.random.default_rng(0).random((3, 2)).astype(np.float32),
        "b1": np.zeros(2),
    }
    for loaded, saved in [
        (checkpoint.params, saved_params),
        (checkpoint.optimizer_state, {"t": np.array(3)}),
    ]:
        assert loaded.keys() == saved.keys()
        for name, array in saved.items():
            assert loaded[name].dtype == array.dtype
            assert loaded[name].shape == array.shape
            assert np.array_equal(loaded[name], array)
    assert checkpoint.step == 7
    assert checkpoint.meta == {"a": [1, 2]}


def test_valid_checkpoint_holds_what_was_saved(tmp_path):
    path = tmp_path / "copy.npz"
    path.write_bytes(valid_checkpoint_bytes(tmp_path))
    assert_holds_what_was_saved(load_checkpoint(path))


@FUZZ
@given(data=st.binary(max_size=300))
def test_checkpoint_loader_on_random_bytes(tmp_path, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    # 300 bytes are far too few for the four required members: never a checkpoint.
    assert read_or_chainrule_error(load_checkpoint, path) is None


@FUZZ
@given(data=st.data())
def test_checkpoint_loader_on_mutated_files(tmp_path, data):
    path = tmp_path / "mutated.npz"
    path.write_bytes(mutate(valid_checkpoint_bytes(tmp_path), data))
    checkpoint = read_or_chainrule_error(load_checkpoint, path)
    if checkpoint is not None:  # a change no check can see (a zip timestamp, say) ...
        assert_holds_what_was_saved(checkpoint)  # but never silently corrupted data


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


# --------------------------------------------------------------------------- descriptions

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A real checkpoint of `chainrule train` (batch normalisation: every kind of field)."""
    path = tmp_path_factory.mktemp("trained") / "run.npz"
    args = ["train", "--quiet", "--hidden", "6", "--batchnorm", "--iters", "2"]
    assert main([*args, "--save", str(path)]) == 0
    return load_checkpoint(path)


def mutate_json(value, data):
    """``value`` with one place in it replaced, removed or added to."""
    if isinstance(value, (dict, list)) and value and data.draw(st.booleans()):
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        key = data.draw(st.sampled_from(keys))
        copy = dict(value) if isinstance(value, dict) else list(value)
        action = data.draw(st.sampled_from(["descend", "descend", "delete"]))
        if action == "delete":
            del copy[key]
        else:
            copy[key] = mutate_json(value[key], data)
        return copy
    if isinstance(value, dict) and data.draw(st.booleans()):
        return {**value, data.draw(st.text(max_size=6)): data.draw(JSON_VALUES)}
    return data.draw(JSON_VALUES)


@FUZZ
@given(data=st.data())
def test_every_mutated_description_loads_or_is_one_checkpoint_error(
    trained_checkpoint, tmp_path, capsys, data
):
    from chainrule.cli import build_parser
    from chainrule.cli.resuming import resumed_run
    from chainrule.cli.train_description import load_described
    from chainrule.training_state import restore_network

    saved = trained_checkpoint
    meta = mutate_json(saved.meta, data)
    if not isinstance(meta, dict):  # save_checkpoint takes a dict; the loader refuses others
        meta = {"network": meta}
    path = tmp_path / "mutated.npz"
    save_checkpoint(path, saved.params, optimizer_state=saved.optimizer_state, step=2, meta=meta)
    parser = build_parser()
    for to_resume in (False, True):
        try:
            if to_resume:
                resumed_run(parser.parse_args(["train", "--resume", str(path)]), parser)
            else:
                restore_network(load_described(str(path), to_resume=to_resume), str(path))
        except CheckpointError as error:
            assert str(path) in str(error) and "\n" not in str(error)
    capsys.readouterr()
    status = main(["evaluate", str(path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert (status, err) == (0, []) or (status == 1 and len(err) == 1), err
