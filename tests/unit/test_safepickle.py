"""chainrule.safepickle: the book's weight pickles load; a pickle that names anything else
is refused before it runs, and no pickle, however hostile, gets further than an error."""

from __future__ import annotations

import collections
import os
import pickle
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chainrule.errors import CheckpointError, UnsafePickleError
from chainrule.safepickle import is_pickle, load_arrays, loads_arrays, read_params

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def book_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "W1": rng.standard_normal((30, 1, 5, 5)),
        "b1": np.zeros(30),
        "W2": rng.standard_normal((7, 3)).astype(np.float32),
        "F": np.asfortranarray(rng.standard_normal((3, 4))),
        "big_endian": np.arange(5, dtype=">i4"),
        "half": np.array([0.5, -2.0], np.float16),
        "mask": np.array([True, False]),
        "scalar": np.float64(2.5),
        "empty": np.zeros((0, 3)),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mapping", [dict, collections.OrderedDict])
def test_dicts_of_arrays_load_at_every_protocol(protocol, mapping):
    params = book_params()
    loaded = loads_arrays(pickle.dumps(mapping(params), protocol=protocol))
    assert list(loaded) == list(params) and type(loaded) is dict
    for key, want in params.items():
        got = loaded[key]
        assert isinstance(got, np.ndarray) and got.dtype == np.asarray(want).dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable and got.flags.c_contiguous


def python2_pickle() -> bytes:
    """{'W1': float64 [1.5, -2.25]} as Python 2 and NumPy 1 wrote it: protocol 2, module
    numpy.core.multiarray, the raw bytes as a Python 2 str (SHORT_BINSTRING)."""
    raw = struct.pack("<2d", 1.5, -2.25)

    def short(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text

    dtype_state = b"(K\x03" + short(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + short(b"b")
        + b"\x87R(K\x01K\x02\x85cnumpy\ndtype\n" + short(b"f8") + b"K\x00K\x01\x87R"
        + dtype_state + b"\x89" + short(raw) + b"tb"
    )  # fmt: skip
    return b"\x80\x02}" + short(b"W1") + array + b"s."


def test_a_python_2_pickle_of_old_numpy_loads():
    assert loads_arrays(python2_pickle())["W1"].tolist() == [1.5, -2.25]


def test_read_params_takes_the_books_pickle_or_a_checkpoint(tmp_path):
    from chainrule.checkpoint import save_checkpoint

    params = {"W1": np.ones((2, 2)), "b1": np.zeros(2)}
    (tmp_path / "params.pkl").write_bytes(pickle.dumps(params))
    save_checkpoint(tmp_path / "params.npz", params)
    assert is_pickle(tmp_path / "params.pkl") and not is_pickle(tmp_path / "params.npz")
    for name in ("params.pkl", "params.npz"):
        loaded = read_params(tmp_path / name)
        assert sorted(loaded) == ["W1", "b1"] and loaded["W1"].sum() == 4


class Payload:
    """A pickle of this object calls ``func(*args)`` when loaded by ``pickle.load``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def shell_touch(path: Path) -> Payload:
    return Payload(os.system, f"touch {path}")


HOSTILE = {
    "os.system at the top": lambda p: shell_touch(p),
    "nested in the dict": lambda p: {"W1": np.zeros(2), "b1": [1, {"x": shell_touch(p)}]},
    "builtins.exec": lambda p: {"W1": Payload(exec, f"open({str(p)!r}, 'w')")},
    "builtins.open": lambda p: {"W1": Payload(open, str(p), "w")},
    "subprocess": lambda p: {"W1": Payload(subprocess.call, ["touch", str(p)])},
    "eval of a global of numpy": lambda p: {"W1": Payload(np.save, str(p), np.zeros(1))},
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", HOSTILE)
def test_a_payload_is_refused_and_nothing_runs(tmp_path, protocol, name):
    target = tmp_path / "written"
    data = pickle.dumps(HOSTILE[name](target), protocol=protocol)
    pickled = tmp_path / "weights.pkl"
    pickled.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=r"weights.pkl: refused to load: .*global"):
        load_arrays(pickled)
    assert not target.exists()
    assert not Path(str(target) + ".npy").exists()


def hand_made(tmp: Path) -> dict[str, bytes]:
    """Payloads through the opcodes pickle.dumps never writes for them."""
    touch = f"touch {tmp / 'written'}".encode()
    return {
        # INST: module and name inline, arguments after a MARK
        "INST": b"(S'" + touch + b"'\nios\nsystem\n.",
        # OBJ: the class from GLOBAL, then called with the arguments
        "OBJ": b"\x80\x02(cos\nsystem\nX" + struct.pack("<I", len(touch)) + touch + b"o.",
        # STACK_GLOBAL with a dotted name, reaching a method of an allowed class
        "STACK_GLOBAL": b"\x80\x04\x8c\x05numpy\x8c\x0cndarray.dump\x93.",
        # NEWOBJ with a class that is not allowed
        "NEWOBJ": b"\x80\x02csubprocess\nPopen\n)\x81.",
        # BUILD with __setstate__ of a class not allowed
        "BUILD": b"\x80\x02ccollections\nUserDict\n)\x81}b.",
        # REDUCE through copyreg, the usual way to old-style instances
        "copyreg": b"\x80\x02ccopyreg\n_reconstructor\ncos\nsystem\n\x85R.",
    }


@pytest.mark.parametrize("opcode", ["INST", "OBJ", "STACK_GLOBAL", "NEWOBJ", "BUILD", "copyreg"])
def test_every_opcode_that_names_a_global_is_refused(tmp_path, opcode):
    with pytest.raises(UnsafePickleError, match="refused to load"):
        loads_arrays(hand_made(tmp_path)[opcode], "x.pkl")
    assert not (tmp_path / "written").exists()


MALFORMED = {
    "not a dict": pickle.dumps([np.zeros(2)]),
    "a key that is no name": pickle.dumps({1: np.zeros(2)}),
    "a list as a value": pickle.dumps({"W1": [1.0, 2.0]}),
    "objects in an array": pickle.dumps({"W1": np.array([None, 1], dtype=object)}),
    "NaN": pickle.dumps({"W1": np.array([1.0, np.nan])}),
    "a string array": pickle.dumps({"W1": np.array(["a"])}),
    "truncated": pickle.dumps({"W1": np.zeros(50)})[:-20],
    "empty file": b"",
    "a persistent id": b"\x80\x02P1\n.",
    "an extension code": b"\x80\x02\x82\x01.",
    "BUILD on an allowed global": b"\x80\x02cnumpy\ndtype\n}b.",
    "ndarray called": b"\x80\x02cnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85R.",
    "too few bytes for the shape": (
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}\x8c\x01a\x8c\x13numpy._core.numeric"
        b"\x8c\x0b_frombuffer\x93(C\x08\x00\x00\x00\x00\x00\x00\xf0?\x8c\x05numpy\x8c\x05dtype"
        b"\x93\x8c\x02f8\x89\x88\x87R(K\x03\x8c\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00"
        b"tbK\x05\x85\x8c\x01Ct\x94Rs."
    ),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_what_is_not_a_dict_of_numbers_is_a_checkpoint_error(name):
    with pytest.raises(CheckpointError, match=r"^w.pkl: "):
        loads_arrays(MALFORMED[name], "w.pkl")


# --------------------------------------------------------------------------- fuzzing

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SENTINEL_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"chainrule-safepickle-{os.getpid()}"
SENTINEL = SENTINEL_DIR / "written"
TOUCH = f"touch {SENTINEL}"

GLOBALS = [
    # what arrays need (each of them a checked stand-in)
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("builtins", "bytes"),
    ("collections", "OrderedDict"),
    # what a payload names
    ("os", "system"), ("posix", "system"), ("builtins", "exec"), ("builtins", "eval"),
    ("builtins", "open"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("subprocess", "Popen"), ("numpy", "load"), ("numpy", "ndarray.tofile"),
    ("numpy", "save"), ("copyreg", "_reconstructor"), ("pathlib", "Path.touch"),
    ("numpy._core.multiarray", "_reconstruct.__globals__"),
]  # fmt: skip


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _global(module: str, name: str) -> list[bytes]:
    classic = f"c{module}\n{name}\n".encode()
    stacked = b"\x8c" + bytes([len(module)]) + module.encode()
    stacked += b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"
    inst = b"(" + _text(TOUCH) + f"i{module}\n{name}\n".encode()
    return [classic, stacked, inst]


FRAGMENTS = [
    *(form for module, name in GLOBALS for form in _global(module, name)),
    _text(TOUCH), _text("latin1"), _text("f8"), _text("O"), _text("<"), _text("C"),
    b"N", b"K\x03", b"K\x00", b"J\xff\xff\xff\xff", b"\x88", b"\x89", b"F1.5\n", b"I7\n",
    b"C\x08" + struct.pack("<d", 1.5), b"\x96" + struct.pack("<Q", 8) + b"\x00" * 8,
    b"(", b")", b"}", b"]", b"\x85", b"\x86", b"\x87", b"t", b"l", b"d",
    b"R", b"b", b"o", b"\x81", b"\x92", b"s", b"u", b"a", b"e",
    b"\x94", b"q\x00", b"h\x00", b"2", b"0", b"1", b"P1\n", b"\x82\x01", b"\x97",
    # a whole array, and a dict holding one
    pickle.dumps(np.arange(3.0), protocol=2)[2:-1],
    pickle.dumps({"W1": np.ones(2)}, protocol=2)[2:-1],
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _sentinel_dir():
    SENTINEL_DIR.mkdir(exist_ok=True)
    yield
    SENTINEL.unlink(missing_ok=True)
    SENTINEL_DIR.rmdir()


def _check(data: bytes) -> None:
    try:
        loaded = loads_arrays(data, "fuzz.pkl")
    except (UnsafePickleError, CheckpointError) as error:
        assert str(error).startswith("fuzz.pkl: ")
    else:
        assert type(loaded) is dict
        assert all(type(k) is str and type(v) is np.ndarray for k, v in loaded.items())
        assert all(v.dtype.kind in "biuf" for v in loaded.values())
    assert not SENTINEL.exists(), "a pickle ran code"


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    st.sampled_from([b"\x80\x02", b"\x80\x04", b"\x80\x05", b""]),
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=25),
)
def test_hostile_pickles_give_plain_data_or_an_error(protocol, fragments):
    _check(protocol + b"".join(fragments) + b".")


@FUZZ
@given(
    st.sampled_from([2, 3, 4, 5]),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=3)), max_size=6),
    st.lists(st.sampled_from(FRAGMENTS), max_size=3),
)
def test_damaged_weight_files_give_plain_data_or_an_error(protocol, edits, spliced):
    data = bytearray(pickle.dumps(book_params(), protocol=protocol))
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    middle = len(data) // 2
    _check(bytes(data[:middle]) + b"".join(spliced) + bytes(data[middle:]))


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_give_plain_data_or_an_error(data):
    _check(data)


def test_the_fuzzed_payloads_would_run_under_pickle():
    # The fragments are real payloads: pickle.loads runs the one the fuzzers refuse.
    pickle.loads(b"\x80\x02" + _global("os", "system")[0] + _text(TOUCH) + b"\x85R.")
    assert SENTINEL.exists()
    SENTINEL.unlink()
