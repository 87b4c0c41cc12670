"""Save and load training checkpoints as one pickle-free ``.npz`` file.

A checkpoint holds the network's parameters, the optimiser's ``state_dict()``,
the step count and a JSON-serialisable ``meta`` dict (network sizes, activation, dtype,
optimiser name ...).

File layout (format version 2), one array per ``.npz`` member:

==========================  =====================================================
``format_version``          0-d int64, ``FORMAT_VERSION``
``step``                    0-d int64
``param/<name>``            each parameter, its own shape and dtype
``optim/<name>``            each entry of the optimiser state dict
``meta_json``               1-d uint8: UTF-8 JSON of ``meta``
==========================  =====================================================

Every member is a plain numeric array, so the file loads with
``np.load(path, allow_pickle=False)``: opening an untrusted checkpoint can never
run code.  Writes are atomic: a crash mid-save leaves the previous file intact.

This module is the file format. To save and restore a whole network (batch
normalisation's running statistics and the dropout generator state included) with its
optimiser and History, use :func:`chainrule.training_state.save_training` and
:func:`chainrule.training_state.load_training`, which write and read these files: they
build networks, and the networks import this module, so they sit in a module of their own.

Version 1 also held ``rng_json``, a random generator's state that nothing read back
(training draws its batches from the seed and the epoch number); version 1 files still
load, and that member is skipped: its header is checked as every member's is, its data
is never inflated.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from chainrule.errors import ArgumentError, CheckpointError, DTypeError
from chainrule.fileio import atomic_write

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "check_params_match",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT_VERSION = 2
"""Version of the file layout written by ``save_checkpoint``; bumped on any change."""

_PARAM = "param/"
_OPTIM = "optim/"
_FIXED = ("format_version", "step", "meta_json")
_RETIRED_IN_VERSION_2 = "rng_json"

# The first bytes of a zip (an .npz is one): its first member's header, or an empty archive.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_WHAT_A_CHECKPOINT_IS = (
    "a checkpoint is the .npz file (a zip archive of NumPy arrays) that "
    "'chainrule train --save' or save_checkpoint writes"
)

# dtype kinds that are plain numbers: bool, signed, unsigned, float, complex.
_NUMERIC_KINDS = "biufc"


@dataclass(frozen=True)
class Checkpoint:
    """The contents of a checkpoint file.

    Attributes:
        params: parameter name -> array, with the shape and dtype it was saved with.
        optimizer_state: the optimiser's ``state_dict()`` (``{}`` if none was saved),
            ready for ``Optimizer.load_state_dict``.
        step: the training step count saved with it.
        meta: the JSON ``meta`` dict (``{}`` if none was saved).
        path: the file it was read from.
    """

    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    step: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# --------------------------------------------------------------------------- JSON helpers


def _meta_default(obj: Any) -> Any:
    """JSON encoder hook for meta: NumPy scalars and arrays become Python numbers/lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _json_array(text: str) -> np.ndarray:
    """UTF-8 bytes of ``text`` as a 1-d uint8 array (loads without pickle)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


# --------------------------------------------------------------------------- saving


def save_checkpoint(
    path: str | os.PathLike[str],
    params: Mapping[str, np.ndarray],
    *,
    optimizer_state: Mapping[str, np.ndarray] | None = None,
    step: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint to ``path`` atomically; return the path.

    The file is first written to a temporary file in the same folder, flushed and
    fsynced, then moved over ``path`` with ``os.replace`` (atomic on POSIX and
    Windows), and the folder is fsynced where the OS allows.  If anything fails,
    the temporary file is removed and an existing ``path`` is left untouched.
    ``path`` is used exactly as given (no ``.npz`` is appended).

    Args:
        path: destination file; its folder must exist.
        params: name -> numeric array (any shape; dtype kept).
        optimizer_state: an optimiser's ``state_dict()``; numeric arrays.
        step: training step count, an int >= 0.
        meta: JSON-serialisable dict (NumPy scalars/arrays are converted to
            Python numbers/lists); e.g. network sizes, activation, dtype,
            optimiser name and hyperparameters.

    Raises:
        TypeError: a value is not a numeric array, ``meta`` is not a
            JSON-serialisable dict, or a name is not a str.
        ArgumentError (a ValueError): ``step`` is negative, or a name is empty.
        OSError: the file could not be written (the old file is kept).
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "step": _step_member(step),
    }
    arrays.update(_numeric_members(_PARAM, params, "params"))
    if optimizer_state is not None:
        arrays.update(_numeric_members(_OPTIM, optimizer_state, "optimizer_state"))
    arrays["meta_json"] = _meta_member(meta)
    with atomic_write(path) as handle:  # temp file beside path, fsync, rename over it
        np.savez(handle, **arrays)
    return path


def _step_member(step: Any) -> np.ndarray:
    """``step`` as a 0-d int64 array, refused unless it is an int >= 0."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an int, got {type(step).__name__}")
    if step < 0:
        raise ArgumentError(f"step must be >= 0, got {step}")
    return np.array(int(step), dtype=np.int64)


def _meta_member(meta: Mapping[str, Any] | None) -> np.ndarray:
    """``meta`` as UTF-8 JSON in a uint8 array; TypeError for what JSON cannot hold."""
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        # allow_nan=False: NaN/Infinity are not JSON and other readers would choke.
        meta_text = json.dumps(dict(meta), default=_meta_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta is not JSON-serialisable: {exc}") from exc
    return _json_array(meta_text)


def _plain_numeric(dtype: np.dtype) -> bool:
    """Numbers that np.save stores without pickle: no object, string or structured dtype."""
    return dtype.kind in _NUMERIC_KINDS and dtype.fields is None


def _numeric_members(prefix: str, arrays: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
    """``{prefix + name: array}``, refusing anything that would need pickle to store."""
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"{what} keys must be non-empty str, got {name!r}")
        arr = np.asarray(value)
        if not _plain_numeric(arr.dtype):
            raise DTypeError(
                f"{what}[{name!r}] has dtype {arr.dtype}; a checkpoint stores plain "
                "numeric arrays only (no object, string or structured arrays)"
            )
        out[prefix + name] = arr
    return out


# --------------------------------------------------------------------------- loading

#: The largest description (``meta_json``) read: far above a long run's history of
#: losses, far below what would strain memory when parsed.
MAX_META_BYTES = 64 * 2**20
# Bytes read to parse a member's .npy header before its data: numpy refuses a header
# longer than 10,000 bytes, and np.savez writes about 128.
_NPY_PREFIX_BYTES = 16 * 1024
_MAX_SCALAR_BYTES = 1024  # format_version and step are 0-d integers
_QUOTE_CHARS = 200  # an error quotes at most this much of what it found


def physical_memory() -> int:
    """The machine's physical memory in bytes; where the OS does not say, a terabyte."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2**40


#: ``expected_params(meta)``: the parameters (name -> (shape, dtype)) that a description
#: implies, checked against the members' headers before any array is inflated.
ExpectedParams = Callable[[dict[str, Any]], Mapping[str, tuple[tuple[int, ...], np.dtype]]]


@dataclass(frozen=True)
class _Member:
    """A member's zip entry and what its .npy header declares, read before its data."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def load_checkpoint(
    path: str | os.PathLike[str], *, expected_params: ExpectedParams | None = None
) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (never unpickles anything).

    Nothing is inflated before it is checked: every member's ``.npy`` header (shape and
    dtype) is read first and must agree with the size the zip declares, and together the
    arrays must fit in half the machine's memory; the description
    (``meta_json``) is read only up to ``MAX_META_BYTES``; and with ``expected_params``,
    the parameters the description implies must match the stored headers before any
    parameter is read. So a small file cannot make the loader allocate much more than
    what it declares and what the description allows.

    Args:
        path: the ``.npz`` file.
        expected_params: optional; called with the description (a dict) once it is
            read, it returns each parameter's ``(shape, dtype)`` as the description
            implies them, or raises CheckpointError (a description it refuses).

    Returns:
        A ``Checkpoint`` with every array loaded into memory.

    Raises:
        CheckpointError: the file is missing or unreadable, not a zip/npz, truncated
            or corrupt, holds an object (pickle) array, a member twice, lacks a required
            member, has an unknown member, a newer format version, bad JSON, or
            parameters other than the description implies.  The message is one line
            that names the file and what is wrong.
    """
    path = Path(path)
    where = f"checkpoint {str(path)!r}"

    def fail(msg: str) -> CheckpointError:
        return CheckpointError(f"{where}: {msg}")

    with _open_checkpoint(path) as handle:
        _refuse_unless_zip(handle, path)
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as exc:  # BadZipFile, a cut central directory, an OSError ...
            raise fail(f"not a readable .npz file ({_describe(exc)})") from exc
        with archive:
            return _read_checkpoint(archive, path, expected_params, fail)


def _read_checkpoint(
    archive: zipfile.ZipFile,
    path: Path,
    expected_params: ExpectedParams | None,
    fail: Callable[[str], CheckpointError],
) -> Checkpoint:
    """The checkpoint in an opened archive: headers, sizes and names checked first, then
    the step and description, then (checked against ``expected_params``) the arrays."""
    members = _member_headers(archive, fail)
    declared = sum(member.nbytes for member in members.values())
    if declared > physical_memory() // 2:  # whoever asks what it holds
        raise fail(
            f"its arrays declare {declared:,} bytes, more than half of this "
            "machine's memory; refused before reading them"
        )
    version = _int_scalar(archive, members, "format_version", fail)
    if version == 1:  # its rng_json is skipped unread (see the module's docstring)
        members.pop(_RETIRED_IN_VERSION_2, None)
    _check_member_names(members, fail)
    step = _int_scalar(archive, members, "step", fail)
    if step < 0:
        raise fail(f"step is negative ({step})")
    meta = _json_member(archive, members["meta_json"], "meta_json", fail)
    if not isinstance(meta, dict):
        raise fail(f"meta_json must hold a JSON object, got {type(meta).__name__}")
    if expected_params is not None:
        _check_declared_params(expected_params(meta), members, fail)
    params, optim = {}, {}
    for name, member in members.items():
        target = params if name.startswith(_PARAM) else optim
        if name.startswith((_PARAM, _OPTIM)):
            target[name.split("/", 1)[1]] = _read_array(archive, member, name, fail)
    return Checkpoint(params=params, optimizer_state=optim, step=step, meta=meta, path=path)


def _open_checkpoint(path: Path) -> BinaryIO:
    """The file opened for reading, or CheckpointError saying why it cannot be."""
    where = f"checkpoint {str(path)!r}"
    try:
        return open(path, "rb")  # the caller's with block closes it
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot be read ({exc})") from exc


def _member_headers(
    archive: zipfile.ZipFile, fail: Callable[[str], CheckpointError]
) -> dict[str, _Member]:
    """Each member by name (``.npy`` dropped), from its .npy header alone."""
    members: dict[str, _Member] = {}
    for info in archive.infolist():
        name = info.filename.removesuffix(".npy")
        if name in members or name == info.filename:
            what = "twice" if name in members else "without the .npy of an array"
            raise fail(f"member {_quote(info.filename)} is stored {what}; refused")
        members[name] = _npy_header(archive, info, name, fail)
    return members


def _npy_header(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    name: str,
    fail: Callable[[str], CheckpointError],
) -> _Member:
    """What a member's .npy header declares, from its first bytes, checked against the
    size the zip declares for it, so that nothing larger is ever inflated."""
    try:
        with archive.open(info) as stream:
            prefix = io.BytesIO(stream.read(_NPY_PREFIX_BYTES))
        version = np.lib.format.read_magic(prefix)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(prefix)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(prefix)
        else:
            raise ValueError(f".npy format version {version}, not 1.0 or 2.0")
    except Exception as exc:  # a bad CRC, a cut member, a mangled .npy header
        raise fail(f"member {_quote(name)} is corrupt or truncated ({_describe(exc)})") from exc
    if dtype.hasobject:
        raise fail(
            f"member {_quote(name)} is an object array, which would need pickle to load; "
            "refused (checkpoints hold numeric arrays only)"
        )
    member = _Member(info, shape, dtype, fortran_order, prefix.tell())
    if member.data_offset + member.nbytes != info.file_size:
        raise fail(
            f"member {_quote(name)} declares shape {_quote(shape)} {dtype} "
            f"({member.nbytes} bytes of data) but the zip says it holds {info.file_size} bytes"
        )
    return member


def _check_member_names(members: Mapping[str, _Member], fail: Callable[[str], CheckpointError]):
    missing = [k for k in _FIXED if k not in members]
    if missing:
        raise fail(f"missing members {missing}")
    unknown = sorted(k for k in members if k not in _FIXED and not k.startswith((_PARAM, _OPTIM)))
    if unknown:
        raise fail(f"unknown members {_quote(unknown)}")
    for name, member in members.items():
        if name.startswith((_PARAM, _OPTIM)) and not name.split("/", 1)[1]:
            raise fail(f"member {name!r} has an empty name")
        if name.startswith((_PARAM, _OPTIM)) and not _plain_numeric(member.dtype):
            raise fail(f"member {_quote(name)} has non-numeric dtype {member.dtype}")


def _check_declared_params(
    expected: Mapping[str, tuple[tuple[int, ...], np.dtype]],
    members: Mapping[str, _Member],
    fail: Callable[[str], CheckpointError],
) -> None:
    """CheckpointError unless the stored parameters are the ones the description implies."""
    stored = {
        name[len(_PARAM) :]: (m.shape, m.dtype)
        for name, m in members.items()
        if name.startswith(_PARAM)
    }
    problems = []
    for key in sorted(set(expected) - set(stored)):
        problems.append(f"missing {key!r}")
    for key in sorted(set(stored) - set(expected)):
        problems.append(f"extra {_quote(key)}")
    for key in sorted(set(expected) & set(stored)):
        (want_shape, want_dtype), (shape, dtype) = expected[key], stored[key]
        if tuple(want_shape) != shape or np.dtype(want_dtype) != dtype:
            problems.append(
                f"{key!r} is {_quote(shape)} {dtype}, the description implies "
                f"{tuple(want_shape)} {np.dtype(want_dtype)}"
            )
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise fail(f"the weights do not match the network its description gives: {shown}")


def _read_array(
    archive: zipfile.ZipFile, member: _Member, name: str, fail: Callable[[str], CheckpointError]
) -> np.ndarray:
    """The member's data, of the size its header declared (checked already)."""
    try:
        with archive.open(member.info) as stream:
            stream.read(member.data_offset)
            data = stream.read(member.nbytes + 1)  # one more: a CRC error shows at the end
            if stream.read(1):
                raise ValueError("more data than its header declares")
    except Exception as exc:  # a bad CRC, a cut member
        raise fail(f"member {_quote(name)} is corrupt or truncated ({_describe(exc)})") from exc
    if len(data) != member.nbytes:
        raise fail(f"member {_quote(name)} is truncated: {len(data)} of {member.nbytes} bytes")
    array = np.frombuffer(data, dtype=member.dtype)
    order = "F" if member.fortran_order else "C"
    return array.reshape(member.shape, order=order).copy()


def _refuse_unless_zip(handle: BinaryIO, path: Path) -> None:
    """CheckpointError unless ``handle`` starts as a zip does, saying what the file is not.

    np.load takes any bytes that are neither a zip nor an .npy for a pickle and answers
    with advice about ``allow_pickle=``: misleading for a text file or a picture.
    """
    head = handle.read(len(_NPY_MAGIC))
    handle.seek(0)
    if head.startswith(_ZIP_MAGIC):
        return
    if not head:
        what = "is empty"
    elif head.startswith(_NPY_MAGIC):
        what = "is a single .npy array"
    else:
        what = "is not a zip archive"
    raise CheckpointError(f"{str(path)!r} {what}, so not a checkpoint: {_WHAT_A_CHECKPOINT_IS}")


def _quote(value: Any) -> str:
    """``repr(value)``, cut to ``_QUOTE_CHARS`` characters: an error line stays a line."""
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"


def _describe(exc: BaseException) -> str:
    """``ExcType: message`` for error messages, cut to a line's length."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"


def _int_scalar(
    archive: zipfile.ZipFile,
    members: Mapping[str, _Member],
    name: str,
    fail: Callable[[str], CheckpointError],
) -> int:
    """A 0-d integer member as an int."""
    if name not in members:
        if name == "format_version":
            raise fail("no 'format_version' member; not a chainrule checkpoint")
        raise fail(f"missing members [{name!r}]")
    member = members[name]
    if member.shape != () or member.dtype.kind not in "iu" or member.nbytes > _MAX_SCALAR_BYTES:
        raise fail(
            f"{name!r} must be a 0-d integer, got shape {_quote(member.shape)} dtype {member.dtype}"
        )
    value = int(_read_array(archive, member, name, fail))
    if name == "format_version" and value > FORMAT_VERSION:
        raise fail(
            f"format version {value} is newer than this chainrule reads "
            f"({FORMAT_VERSION}); upgrade chainrule"
        )
    if name == "format_version" and value < 1:
        raise fail(f"invalid format version {value}")
    return value


def _json_member(
    archive: zipfile.ZipFile, member: _Member, name: str, fail: Callable[[str], CheckpointError]
) -> Any:
    """Decode a uint8 JSON member of at most MAX_META_BYTES."""
    if len(member.shape) != 1 or member.dtype != np.uint8:
        raise fail(
            f"{name!r} must be 1-d uint8 JSON text, got shape {_quote(member.shape)} "
            f"dtype {member.dtype}"
        )
    if member.nbytes > MAX_META_BYTES:
        raise fail(f"{name!r} holds {member.nbytes} bytes, more than the {MAX_META_BYTES} allowed")
    text = _read_array(archive, member, name, fail).tobytes()
    try:
        return json.loads(text.decode("utf-8"))
    except RecursionError:  # the C parser recurses once per level of nesting
        raise fail(f"{name!r} is nested too deeply to be a description") from None
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise fail(f"{name!r} is not valid JSON ({_describe(exc)})") from exc


# --------------------------------------------------------------------------- helpers


def check_params_match(
    expected: Mapping[str, np.ndarray],
    loaded: Mapping[str, np.ndarray],
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Check that ``loaded`` has exactly the keys, shapes and dtypes of ``expected``.

    Args:
        expected: the network's parameters (name -> array).
        loaded: the checkpoint's parameters (``Checkpoint.params``).
        path: the checkpoint file, named in the error message.

    Raises:
        CheckpointError: listing every mismatch, one per line: keys missing
            from the checkpoint, extra keys in it, and for shared keys a shape
            difference (both shapes) and/or a dtype difference (both dtypes).
    """
    problems = []
    for key in sorted(set(expected) - set(loaded)):
        problems.append(f"missing key {key!r} (network has shape {np.shape(expected[key])})")
    for key in sorted(set(loaded) - set(expected)):
        problems.append(f"extra key {key!r} (shape {np.shape(loaded[key])}) not in the network")
    for key in sorted(set(expected) & set(loaded)):
        want, got = np.asarray(expected[key]), np.asarray(loaded[key])
        if want.shape != got.shape:
            problems.append(f"{key!r}: shape differs: network {want.shape}, checkpoint {got.shape}")
        if want.dtype != got.dtype:
            problems.append(f"{key!r}: dtype differs: network {want.dtype}, checkpoint {got.dtype}")
    if problems:
        where = f"checkpoint {str(path)!r}" if path is not None else "checkpoint"
        raise CheckpointError(
            f"{where} does not match the network ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems)
        )
