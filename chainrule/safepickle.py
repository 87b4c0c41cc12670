"""Read the book's pickled weights (``pickle.dump`` of a dict of NumPy arrays) without
running anything the file names.

``pickle.load`` calls whatever global a file names: a "weight file" can as well run
``os.system``. The book ships its trained weights this way (``ch03/sample_weight.pkl``,
``ch07/params.pkl``, ``ch08/deep_convnet_params.pkl``) and its ``save_params`` writes
them so. :func:`load_arrays` reads such a file with an unpickler that knows only the
globals a pickled array needs: NumPy's ``_reconstruct``, ``_frombuffer`` (protocol 5),
``scalar``, ``ndarray`` and ``dtype``; ``_codecs.encode`` and an empty ``bytes()`` (how
protocols 0-2 write bytes); ``collections.OrderedDict``; under the module names NumPy 1
and 2 write. Any other global is refused, naming it, before anything runs.

Even those few are not NumPy's own functions: each is a stand-in here that checks its
arguments and builds the array from the raw bytes with ``np.frombuffer``, so no NumPy
unpickling code ever sees the file's data. The result must be a dict of names to
finite numeric arrays.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from chainrule.checkpoint import load_checkpoint
from chainrule.errors import CheckpointError, UnsafePickleError

__all__ = ["is_pickle", "load_arrays", "loads_arrays", "read_params"]

# The dtype codes NumPy writes for plain numbers (bool, signed, unsigned, float).
_NUMBER_CODES = frozenset(
    ["b1", "?", "f2", "f4", "f8"] + [f"{kind}{size}" for kind in "iu" for size in (1, 2, 4, 8)]
)
_BYTE_ORDERS = ("<", ">", "|", "=")
_ZIP_MAGIC = b"PK"  # an .npz checkpoint is a zip archive


class _Malformed(Exception):
    """The pickle builds something other than plain arrays (reported as CheckpointError)."""


def _fail(why: str) -> _Malformed:
    return _Malformed(why)


class _DType:
    """A dtype as the pickle describes it: a code (``"f8"``), then its byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(code, str) or code not in _NUMBER_CODES:
            raise _fail(f"dtype {code!r} is not a plain number type")
        object.__setattr__(self, "dtype", np.dtype(code))

    def __setstate__(self, state: Any) -> None:
        # (version, byte order, subarray, names, fields, itemsize, alignment, flags[, meta])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise _fail(f"unexpected dtype state {state!r:.80}")
        order = state[1]
        if order not in _BYTE_ORDERS or any(s is not None for s in state[2:5]):
            raise _fail(f"dtype state {state!r:.80} is not a plain number type's")
        if order in "<>":
            object.__setattr__(self, "dtype", self.dtype.newbyteorder(order))

    def __setattr__(self, name: str, value: Any) -> None:
        raise _fail("the pickle sets an attribute of a dtype")


def _as_dtype(value: Any) -> np.dtype:
    if not isinstance(value, _DType):
        raise _fail(f"expected a dtype, got {type(value).__name__}")
    return value.dtype


def _raw_bytes(data: Any) -> bytes:
    # A pickle from Python 2 holds the bytes as a str, read back as latin-1.
    if isinstance(data, str):
        return data.encode("latin-1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise _fail(f"array data must be bytes, got {type(data).__name__}")


def _array_from(data: Any, dtype: np.dtype, shape: Any, order: str = "C") -> np.ndarray:
    """The array of ``shape`` whose values are the bytes ``data``, as a new native array."""
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise _fail(f"array shape {shape!r:.80} is not a tuple of sizes")
    raw = _raw_bytes(data)
    if len(raw) != dtype.itemsize * int(np.prod(shape, dtype=object)):
        raise _fail(f"{len(raw)} bytes of data do not fill an array {shape} of {dtype}")
    flat = np.frombuffer(raw, dtype=dtype)
    return flat.reshape(shape, order=order).astype(dtype.newbyteorder("="), order="C")


class _Array:
    """An array as ``_reconstruct`` starts it; the pickle's BUILD gives its contents."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        object.__setattr__(self, "array", None)

    def __setstate__(self, state: Any) -> None:
        # (version, shape, dtype, is_fortran, raw data); NumPy before 1.0 left out version
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if self.array is not None or not (isinstance(state, tuple) and len(state) == 4):
            raise _fail(f"unexpected array state {state!r:.80}")
        shape, dtype, fortran, data = state
        if type(fortran) not in (bool, int):
            raise _fail(f"unexpected array order {fortran!r:.40}")
        array = _array_from(data, _as_dtype(dtype), shape, "F" if fortran else "C")
        object.__setattr__(self, "array", array)

    def __setattr__(self, name: str, value: Any) -> None:
        raise _fail("the pickle sets an attribute of an array")


class _Global:
    """What the unpickler hands out for an allowed global: a named callable that cannot
    be changed (no ``__dict__``, no attributes), so BUILD cannot alter it."""

    __slots__ = ("call", "name")

    def __init__(self, name: str, call: Callable[..., Any] | None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "call", call)

    def __call__(self, *args: Any) -> Any:
        if self.call is None:
            raise _fail(f"the pickle calls {self.name}, which builds nothing plain")
        return self.call(*args)

    def __setattr__(self, name: str, value: Any) -> None:
        raise _fail(f"the pickle sets an attribute of {self.name}")


_NDARRAY = _Global("numpy.ndarray", None)  # only ever _reconstruct's first argument


def _reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> _Array:
    if subtype is not _NDARRAY:
        raise _fail("_reconstruct builds only numpy.ndarray")
    return _Array()


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if order not in ("C", "F"):
        raise _fail(f"unexpected array order {order!r:.40}")
    return _array_from(data, _as_dtype(dtype), shape, order)


def _scalar(dtype: Any, data: Any) -> np.ndarray:
    return _array_from(data, _as_dtype(dtype), ())


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _fail("_codecs.encode is allowed only for bytes written as latin-1 text")
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    if args:  # protocols 0-2 write empty bytes as bytes(), the rest through _codecs
        raise _fail("bytes() is allowed only empty")
    return b""


def _ordered_dict(*items: Any) -> dict[Any, Any]:
    if items:  # OrderedDict's pickle is OrderedDict() and then SETITEMS
        raise _fail("OrderedDict is built empty by its pickle")
    return {}


def _allowed() -> dict[tuple[str, str], _Global]:
    table: dict[tuple[str, str], _Global] = {("numpy", "ndarray"): _NDARRAY}
    for core in ("numpy.core", "numpy._core"):  # NumPy 1 and NumPy 2
        table[(f"{core}.multiarray", "_reconstruct")] = _Global("_reconstruct", _reconstruct)
        table[(f"{core}.multiarray", "scalar")] = _Global("scalar", _scalar)
        table[(f"{core}.numeric", "_frombuffer")] = _Global("_frombuffer", _frombuffer)
    table[("numpy", "dtype")] = _Global("numpy.dtype", _DType)
    table[("_codecs", "encode")] = _Global("_codecs.encode", _latin1)
    for builtins in ("builtins", "__builtin__"):  # Python 3 and 2
        table[(builtins, "bytes")] = _Global("bytes", _empty_bytes)
    table[("collections", "OrderedDict")] = _Global("OrderedDict", _ordered_dict)
    return table


_ALLOWED = _allowed()


class _ArraysUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, name: str) -> None:
        # latin-1: a Python 2 pickle's byte strings (NumPy's raw data) come back intact
        super().__init__(file, encoding="latin1")
        self.file_name = name

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"{self.file_name}: refused to load: the pickle names the global "
                f"{module}.{name}, which a file of weights never needs (it only holds "
                "NumPy arrays); nothing in it was run"
            )
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise _fail("the pickle refers to a persistent object")


def _plain(key: Any, value: Any, name: str) -> np.ndarray:
    if not isinstance(key, str):
        raise CheckpointError(f"{name}: a key is {type(key).__name__} {key!r:.40}, not a name")
    if isinstance(value, _Array):
        value = value.array
    if not isinstance(value, np.ndarray):
        raise CheckpointError(
            f"{name}: {key!r} holds {type(value).__name__}, not a NumPy array of numbers"
        )
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise CheckpointError(f"{name}: {key!r} holds NaN or infinity")
    return value


def loads_arrays(data: bytes, name: str = "<pickle>") -> dict[str, np.ndarray]:
    """The dict of arrays pickled in ``data``; ``name`` is how errors name the source.

    Raises:
        UnsafePickleError: the pickle names a global other than the few arrays need.
        CheckpointError: it is no readable pickle, or not a dict of names to finite
            numeric arrays.
    """
    try:
        loaded = _ArraysUnpickler(io.BytesIO(data), name).load()
    except UnsafePickleError:
        raise
    except _Malformed as err:
        raise CheckpointError(f"{name}: not a pickle of NumPy arrays: {err}") from None
    except Exception as err:  # a malformed stream fails in many ways, all of them here
        reason = str(err) or type(err).__name__
        raise CheckpointError(f"{name}: not a readable pickle of arrays: {reason:.200}") from None
    if not isinstance(loaded, dict):
        raise CheckpointError(
            f"{name}: holds {type(loaded).__name__}, not a dict of parameter arrays"
        )
    return {key: _plain(key, value, name) for key, value in loaded.items()}


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The dict of arrays pickled in the file ``path`` (see :func:`loads_arrays`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read it: {err.strerror or err}") from None
    return loads_arrays(data, str(path))


def is_pickle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a pickle rather than a chainrule ``.npz`` checkpoint."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError:
        return False
    return bool(head) and not head.startswith(_ZIP_MAGIC)


def read_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The parameters in ``path``: a chainrule checkpoint, or the book's pickle of a
    dict of arrays (as its ``save_params`` writes), read by :func:`load_arrays`."""
    if is_pickle(path):
        return load_arrays(path)
    return load_checkpoint(path).params
