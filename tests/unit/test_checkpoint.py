"""Tests for chainrule.checkpoint: round trips, pickle-freedom, corruption, atomic writes."""

from __future__ import annotations

import io
import math
import os
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    check_params_match,
    load_checkpoint,
    save_checkpoint,
)
from chainrule.errors import ArgumentError, CheckpointError, DTypeError
from chainrule.optim import Adam, Momentum


def make_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "W1": rng.standard_normal((4, 3)).astype(np.float32),
        "b1": rng.standard_normal(3).astype(np.float32),
        "W2": rng.standard_normal((3, 2)),  # float64
        "b2": np.zeros(2),
    }


META = {
    "sizes": [4, 3, 2],
    "activation": "relu",
    "dtype": "float32",
    "optimizer": {"name": "adam", "lr": 0.001, "beta1": 0.9},
    "note": "ünïcødé ✓",
    "nothing": None,
    "flag": True,
}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A complete checkpoint file."""
    path = tmp_path / "ckpt.npz"
    opt = Adam(lr=0.01)
    params = make_params()
    opt.update(params, {k: np.ones_like(v) for k, v in params.items()})
    save_checkpoint(
        path,
        params,
        optimizer_state=opt.state_dict(),
        step=42,
        meta=META,
    )
    return path


def raw_members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def write_raw(path: Path, members: dict[str, np.ndarray]) -> None:
    """An npz with exactly these members (np.savez pickles object arrays)."""
    with open(path, "wb") as f:
        np.savez(f, **members)


# --------------------------------------------------------------------------- round trips


def test_round_trip_everything(tmp_path):
    path = tmp_path / "ckpt.npz"
    params = make_params()
    opt = Adam(lr=0.01)
    opt.update(params, {k: np.full_like(v, 0.5) for k, v in params.items()})
    returned = save_checkpoint(path, params, optimizer_state=opt.state_dict(), step=17, meta=META)

    assert returned == path
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint)
    assert ckpt.path == path
    assert ckpt.params.keys() == params.keys()
    for key, arr in params.items():
        assert ckpt.params[key].dtype == arr.dtype
        assert ckpt.params[key].shape == arr.shape
        assert ckpt.params[key].tobytes() == arr.tobytes()
    state = opt.state_dict()
    assert ckpt.optimizer_state.keys() == state.keys()
    for key, arr in state.items():
        assert ckpt.optimizer_state[key].dtype == arr.dtype
        assert ckpt.optimizer_state[key].tobytes() == arr.tobytes()
    assert ckpt.step == 17 and isinstance(ckpt.step, int)
    assert ckpt.meta == META


def test_defaults_round_trip(tmp_path):
    path = tmp_path / "plain.npz"
    save_checkpoint(path, {"W": np.eye(2)})
    ckpt = load_checkpoint(str(path))  # str paths work too
    assert ckpt.optimizer_state == {}
    assert ckpt.step == 0
    assert ckpt.meta == {}


def test_meta_numpy_scalars_become_python_numbers(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(path, {}, meta={"lr": np.float32(0.5), "n": np.int64(3), "s": np.arange(3)})
    assert load_checkpoint(path).meta == {"lr": 0.5, "n": 3, "s": [0, 1, 2]}


def test_optimizer_resume_through_a_checkpoint_is_bit_identical(tmp_path):
    rng = np.random.default_rng(5)
    grads_seq = [{"W": rng.standard_normal((3, 3)).astype(np.float32)} for _ in range(10)]
    params = {"W": rng.standard_normal((3, 3)).astype(np.float32)}
    opt = Momentum(lr=0.05, momentum=0.7)
    for g in grads_seq[:5]:
        opt.update(params, g)
    path = tmp_path / "resume.npz"
    save_checkpoint(path, params, optimizer_state=opt.state_dict(), step=5)
    for g in grads_seq[5:]:
        opt.update(params, g)

    ckpt = load_checkpoint(path)
    resumed_params = {k: v.copy() for k, v in ckpt.params.items()}
    resumed = Momentum()
    resumed.load_state_dict(ckpt.optimizer_state)
    for g in grads_seq[ckpt.step :]:
        resumed.update(resumed_params, g)
    assert resumed_params["W"].tobytes() == params["W"].tobytes()


# --------------------------------------------------------------------------- the file format


def test_file_is_pickle_free_and_versioned(saved):
    members = raw_members(saved)  # allow_pickle=False: raises if anything were pickled
    assert int(members["format_version"]) == FORMAT_VERSION
    assert int(members["step"]) == 42
    for name, arr in members.items():
        assert arr.dtype.kind in "biufc", name
    assert members["meta_json"].dtype == np.uint8
    assert "rng_json" not in members  # version 1's generator state, which nothing read
    assert {n for n in members if n.startswith("param/")} == {
        "param/W1",
        "param/b1",
        "param/W2",
        "param/b2",
    }
    assert "optim/m/W1" in members and "optim/t" in members


def test_save_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a.npz"
    save_checkpoint(path, {"W": np.ones(3)})
    save_checkpoint(path, {"W": np.zeros(3)})  # overwrite
    assert os.listdir(tmp_path) == ["a.npz"]
    assert np.array_equal(load_checkpoint(path).params["W"], np.zeros(3))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_new_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "p.npz", {"W": np.ones(1)})
    finally:
        os.umask(old)
    assert (tmp_path / "p.npz").stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- refusals on load


def test_object_array_is_refused(saved, tmp_path):
    members = raw_members(saved)
    members["param/W1"] = np.array([1, "evil", None], dtype=object)
    bad = tmp_path / "pickled.npz"
    write_raw(bad, members)
    with pytest.raises(CheckpointError, match=r"pickled\.npz.*'param/W1'.*object array"):
        load_checkpoint(bad)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.npz.*no such file"):
        load_checkpoint(tmp_path / "nope.npz")


def test_directory(tmp_path):
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file(saved, fraction):
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=r"ckpt\.npz"):
        load_checkpoint(saved)


def test_truncated_in_half_names_the_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(saved)
    assert str(saved) in str(info.value)


def test_corrupted_byte_in_array_data(tmp_path):
    path = tmp_path / "flip.npz"
    save_checkpoint(path, {"W": np.zeros(10_000)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside W's 80 kB of zeros: only the CRC can tell
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flip\.npz.*'param/W'.*corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(seed).bytes(2048))
    with pytest.raises(CheckpointError, match=r"noise\.npz"):
        load_checkpoint(path)


def test_npy_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.ones(3))
    with pytest.raises(CheckpointError, match=r"single \.npy array"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("data", "what"), [(b"", "is empty"), (b"hello, world", "is not a zip archive")]
)
def test_bytes_that_are_no_zip_are_refused_before_numpy_sees_them(tmp_path, data, what):
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} {what}, so not a checkpoint: a checkpoint is")
    assert "pickle" not in message


def test_plain_npz_without_version(tmp_path):
    path = tmp_path / "other.npz"
    write_raw(path, {"W": np.ones(3)})
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(path)


def test_version_1_file_loads_and_its_generator_state_is_skipped(saved, tmp_path):
    members = raw_members(saved)
    members["format_version"] = np.array(1)
    members["rng_json"] = np.frombuffer(b'{"bit_generator": "PCG64"}', dtype=np.uint8)
    old = tmp_path / "version1.npz"
    write_raw(old, members)
    ckpt = load_checkpoint(old)
    assert ckpt.step == 42 and ckpt.meta == META
    assert ckpt.params.keys() == make_params().keys()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": np.array(FORMAT_VERSION + 1)}, "newer"),
        ({"format_version": np.array(0)}, "invalid format version"),
        ({"format_version": np.array([1, 2])}, "0-d integer"),
        ({"step": np.array(-3)}, "negative"),
        ({"step": np.array(1.5)}, "'step' must be a 0-d integer"),
        ({"meta_json": np.frombuffer(b"{not json", dtype=np.uint8)}, "'meta_json' is not valid"),
        ({"meta_json": np.frombuffer(b"\xff\xfe", dtype=np.uint8)}, "'meta_json' is not valid"),
        ({"meta_json": np.frombuffer(b"[1, 2]", dtype=np.uint8)}, "JSON object"),
        ({"meta_json": np.array([1.0, 2.0])}, "uint8"),
        ({"rng_json": np.frombuffer(b"null", dtype=np.uint8)}, r"unknown members \['rng_json'\]"),
        ({"surprise": np.ones(2)}, r"unknown members \['surprise'\]"),
        ({"param/": np.ones(2)}, "empty name"),
        ({"param/W1": np.array(["a", "b"])}, "non-numeric"),
    ],
)
def test_bad_members(saved, tmp_path, change, message):
    members = raw_members(saved)
    members.update(change)
    bad = tmp_path / "bad.npz"
    write_raw(bad, members)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(bad)
    assert "bad.npz" in str(info.value)


@pytest.mark.parametrize("member", ["step", "meta_json"])
def test_missing_member(saved, tmp_path, member):
    members = raw_members(saved)
    del members[member]
    bad = tmp_path / "bad.npz"
    write_raw(bad, members)
    with pytest.raises(CheckpointError, match=rf"missing members \['{member}'\]"):
        load_checkpoint(bad)


# --------------------------------------------------------------------------- atomic writes


def _failing_savez(file, *args, **kwargs):
    """Writes half a file, then fails like a full disk."""
    file.write(b"PK\x03\x04 half a zip")
    raise OSError(28, "No space left on device")


def _interrupting_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04")
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("target", "replacement", "error"),
    [
        ("savez", _failing_savez, OSError),
        ("savez", _interrupting_savez, KeyboardInterrupt),
        ("replace", None, OSError),
        ("fsync", None, OSError),
    ],
    ids=["savez-oserror", "savez-interrupt", "replace", "fsync"],
)
def test_failed_write_keeps_the_old_file_and_no_temp(
    saved, monkeypatch, target, replacement, error
):
    import chainrule.checkpoint as ckpt_module

    before = saved.read_bytes()
    if target == "savez":
        monkeypatch.setattr(ckpt_module.np, "savez", replacement)
    else:

        def boom(*args, **kwargs):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(ckpt_module.os, target, boom)
    with pytest.raises(error):
        save_checkpoint(saved, {"W": np.ones(3)}, step=1)
    monkeypatch.undo()

    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]
    assert load_checkpoint(saved).step == 42


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    import chainrule.checkpoint as ckpt_module

    monkeypatch.setattr(ckpt_module.np, "savez", _failing_savez)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path / "new.npz", {"W": np.ones(3)})
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- save validation


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"params": {"W": np.array([1, None], dtype=object)}}, TypeError, r"params\['W'\].*object"),
        ({"params": {"W": np.array(["a"])}}, TypeError, "numeric"),
        ({"params": {"": np.ones(1)}}, ValueError, "non-empty str"),
        ({"params": {1: np.ones(1)}}, ValueError, "non-empty str"),
        ({"optimizer_state": {"v/W": np.array([{}], dtype=object)}}, TypeError, "optimizer_state"),
        ({"step": -1}, ValueError, "step"),
        ({"step": 1.0}, TypeError, "step"),
        ({"step": True}, TypeError, "step"),
        ({"meta": {"f": object()}}, TypeError, "meta is not JSON"),
        ({"meta": {"lr": float("nan")}}, TypeError, "meta is not JSON"),
        ({"meta": [1, 2]}, TypeError, "meta must be a dict"),
    ],
)
def test_save_validation(tmp_path, kwargs, error, message):
    args = {"params": {"W": np.ones(2)}, **kwargs}
    params = args.pop("params")
    with pytest.raises(error, match=message):
        save_checkpoint(tmp_path / "x.npz", params, **args)
    assert os.listdir(tmp_path) == []  # refused before anything was written


# --------------------------------------------------------------------------- check_params_match


def test_check_params_match_passes_on_match():
    params = make_params()
    assert check_params_match(params, {k: v.copy() for k, v in params.items()}, "x.npz") is None


def test_check_params_match_lists_every_mismatch():
    expected = {
        "W1": np.zeros((2, 3)),
        "b1": np.zeros(3),
        "W2": np.zeros((3, 1)),
        "W9": np.zeros((1, 1), dtype=np.float32),
    }
    loaded = {
        "W1": np.zeros((3, 2)),  # shape
        "b1": np.zeros(3, dtype=np.float32),  # dtype
        "W3": np.zeros((3, 1)),  # extra
        "W9": np.zeros((2,), dtype=np.float64),  # shape and dtype
        # W2 missing
    }
    with pytest.raises(CheckpointError) as info:
        check_params_match(expected, loaded, Path("run/ckpt.npz"))
    msg = str(info.value)
    assert "run/ckpt.npz" in msg.replace(os.sep, "/")
    assert "6 problems" in msg
    assert "missing key 'W2'" in msg
    assert "extra key 'W3'" in msg
    assert "'W1': shape differs: network (2, 3), checkpoint (3, 2)" in msg
    assert "'b1': dtype differs: network float64, checkpoint float32" in msg
    assert "'W9': shape differs: network (1, 1), checkpoint (2,)" in msg
    assert "'W9': dtype differs: network float32, checkpoint float64" in msg


def test_check_params_match_against_loaded_checkpoint(saved):
    ckpt = load_checkpoint(saved)
    check_params_match(make_params(), ckpt.params, saved)
    wrong = make_params()
    wrong["W1"] = wrong["W1"].astype(np.float64)
    with pytest.raises(CheckpointError, match=r"ckpt\.npz.*1 problem\)"):
        check_params_match(wrong, ckpt.params, saved)


# --------------------------------------------------------------------------- hostile files


def npy_bytes(shape, dtype, data: bytes | None = None) -> bytes:
    """An .npy file's bytes: the header for ``shape``/``dtype``, then ``data`` (zeros)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    size = math.prod(shape) * np.dtype(dtype).itemsize
    return header.getvalue() + (bytes(size) if data is None else data)


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(name, data)


def small_members(meta: bytes = b"{}") -> list[tuple[str, bytes]]:
    return [
        ("format_version.npy", npy_bytes((), "<i8", np.int64(2).tobytes())),
        ("step.npy", npy_bytes((), "<i8", np.int64(1).tobytes())),
        ("meta_json.npy", npy_bytes((len(meta),), "u1", meta)),
    ]


def peak_bytes(function) -> int:
    """The most memory Python and NumPy held while ``function`` ran (tracemalloc)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_member_is_refused_by_its_header_before_it_is_inflated(tmp_path):
    bomb = tmp_path / "bomb.npz"
    # 256 MiB of zeros, about 250 kB compressed, declared by its header as W1
    write_zip(bomb, [*small_members(), ("param/W1.npy", npy_bytes((8192, 4096), "<f8"))])
    assert bomb.stat().st_size < 2**20

    def load():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(bomb, expected_params=lambda meta: {"W1": ((784, 50), np.float64)})
        message = str(info.value)
        assert "bomb.npz" in message and "'W1' is (8192, 4096) float64" in message
        assert "(784, 50) float64" in message

    assert peak_bytes(load) < 4 * 2**20  # the 256 MiB were never inflated


def test_a_member_larger_than_its_header_says_is_refused(tmp_path):
    liar = tmp_path / "liar.npz"
    write_zip(liar, [*small_members(), ("param/W1.npy", npy_bytes((2, 3), "<f8") + bytes(10**6))])
    with pytest.raises(CheckpointError, match=r"liar\.npz.*'param/W1' declares shape \(2, 3\)"):
        load_checkpoint(liar)


def test_a_member_stored_twice_is_refused(tmp_path):
    twice = tmp_path / "twice.npz"
    w = npy_bytes((2,), "<f8")
    write_zip(twice, [*small_members(), ("param/W1.npy", w), ("param/W1.npy", w)])
    with pytest.raises(CheckpointError, match=r"twice\.npz.*'param/W1\.npy' is stored twice"):
        load_checkpoint(twice)


def test_a_description_larger_than_the_bound_is_refused_unread(tmp_path, monkeypatch):
    import chainrule.checkpoint as checkpoint_module

    spaces = tmp_path / "spaces.npz"
    write_zip(spaces, small_members(b" " * 2**20 + b"{}"))
    assert load_checkpoint(spaces).meta == {}  # within the bound: spaces are JSON
    monkeypatch.setattr(checkpoint_module, "MAX_META_BYTES", 2**16)
    with pytest.raises(CheckpointError, match=r"'meta_json' holds 1048578 bytes, more than"):
        load_checkpoint(spaces)


def test_a_description_nested_200000_deep_is_one_error(tmp_path):
    deep = tmp_path / "deep.npz"
    write_zip(deep, small_members(b"[" * 200_000 + b"]" * 200_000))
    with pytest.raises(CheckpointError, match=r"deep\.npz.*nested too deeply"):
        load_checkpoint(deep)


def test_an_error_about_many_members_stays_one_short_line(tmp_path):
    many = tmp_path / "many.npz"
    junk = [(f"junk{i:06d}-{'x' * 50}.npy", npy_bytes((1,), "u1")) for i in range(3000)]
    write_zip(many, [*small_members(), *junk])
    with pytest.raises(CheckpointError, match="unknown members") as info:
        load_checkpoint(many)
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)

    params = [(f"param/b{i}.npy", npy_bytes((1,), "u1")) for i in range(3000)]
    write_zip(many, [*small_members(), *params])
    expected = {f"W{i}": ((1,), np.float64) for i in range(3000)}
    with pytest.raises(CheckpointError, match="and 5995 more") as info:
        load_checkpoint(many, expected_params=lambda meta: expected)
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"step": -1}, ArgumentError),
        ({"params": {"": np.ones(1)}}, ArgumentError),
        ({"params": {"W": np.array(["a"])}}, DTypeError),
    ],
)
def test_bad_save_arguments_raise_chainrules_own_errors(tmp_path, kwargs, error):
    args = {"params": {"W": np.ones(2)}, **kwargs}
    with pytest.raises(error):
        save_checkpoint(tmp_path / "x.npz", args.pop("params"), **args)


def test_arrays_declaring_more_than_half_the_memory_are_refused_unread(tmp_path, monkeypatch):
    import chainrule.checkpoint as checkpoint_module

    bomb = tmp_path / "bomb.npz"
    write_zip(bomb, [*small_members(), ("param/W1.npy", npy_bytes((1024, 1024), "<f8"))])
    assert load_checkpoint(bomb).params["W1"].shape == (1024, 1024)
    monkeypatch.setattr(checkpoint_module, "physical_memory", lambda: 8 * 2**20)  # 8 MiB
    with pytest.raises(CheckpointError, match=r"declare 8,388,6\d\d bytes, more than half"):
        load_checkpoint(bomb)
