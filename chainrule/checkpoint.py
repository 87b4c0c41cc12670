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

Version 1 also held ``rng_json``, a random generator's state that nothing read back
(training draws its batches from the seed and the epoch number); version 1 files still
load, and that member is skipped unread.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from chainrule.errors import CheckpointError
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
        ValueError: ``step`` is negative, or a name is empty.
        OSError: the file could not be written (the old file is kept).
    """
    path = Path(path)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an int, got {type(step).__name__}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")

    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "step": np.array(int(step), dtype=np.int64),
    }
    arrays.update(_numeric_members(_PARAM, params, "params"))
    if optimizer_state is not None:
        arrays.update(_numeric_members(_OPTIM, optimizer_state, "optimizer_state"))

    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        # allow_nan=False: NaN/Infinity are not JSON and other readers would choke.
        meta_text = json.dumps(dict(meta), default=_meta_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta is not JSON-serialisable: {exc}") from exc
    arrays["meta_json"] = _json_array(meta_text)

    with atomic_write(path) as handle:  # temp file beside path, fsync, rename over it
        np.savez(handle, **arrays)
    return path


def _plain_numeric(dtype: np.dtype) -> bool:
    """Numbers that np.save stores without pickle: no object, string or structured dtype."""
    return dtype.kind in _NUMERIC_KINDS and dtype.fields is None


def _numeric_members(prefix: str, arrays: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
    """``{prefix + name: array}``, refusing anything that would need pickle to store."""
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what} keys must be non-empty str, got {name!r}")
        arr = np.asarray(value)
        if not _plain_numeric(arr.dtype):
            raise TypeError(
                f"{what}[{name!r}] has dtype {arr.dtype}; a checkpoint stores plain "
                "numeric arrays only (no object, string or structured arrays)"
            )
        out[prefix + name] = arr
    return out


# --------------------------------------------------------------------------- loading


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (never unpickles anything).

    Args:
        path: the ``.npz`` file.

    Returns:
        A ``Checkpoint`` with every array loaded into memory.

    Raises:
        CheckpointError: the file is missing or unreadable, not a zip/npz, truncated
            or corrupt, holds an object (pickle) array, lacks a required member,
            has an unknown member, a newer format version, or bad JSON.  The
            message names the file and what is wrong.
    """
    path = Path(path)
    members = _read_members(path)

    def fail(msg: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {str(path)!r}: {msg}")

    if "format_version" not in members:
        raise fail("no 'format_version' member; not a chainrule checkpoint")
    version = _int_scalar(members["format_version"], "format_version", fail)
    if version > FORMAT_VERSION:
        raise fail(
            f"format version {version} is newer than this chainrule reads "
            f"({FORMAT_VERSION}); upgrade chainrule"
        )
    if version < 1:
        raise fail(f"invalid format version {version}")
    if version == 1:  # its rng_json is skipped unread (see the module's docstring)
        members.pop(_RETIRED_IN_VERSION_2, None)
    missing = [k for k in _FIXED if k not in members]
    if missing:
        raise fail(f"missing members {missing}")
    unknown = sorted(k for k in members if k not in _FIXED and not k.startswith((_PARAM, _OPTIM)))
    if unknown:
        raise fail(f"unknown members {unknown}")

    step = _int_scalar(members["step"], "step", fail)
    if step < 0:
        raise fail(f"step is negative ({step})")

    meta = _json_member(members["meta_json"], "meta_json", fail)
    if not isinstance(meta, dict):
        raise fail(f"meta_json must hold a JSON object, got {type(meta).__name__}")

    params, optim = {}, {}
    for name, arr in members.items():
        if name.startswith(_PARAM):
            target, key = params, name[len(_PARAM) :]
        elif name.startswith(_OPTIM):
            target, key = optim, name[len(_OPTIM) :]
        else:
            continue
        if not key:
            raise fail(f"member {name!r} has an empty name")
        if not _plain_numeric(arr.dtype):
            raise fail(f"member {name!r} has non-numeric dtype {arr.dtype}")
        target[key] = arr
    return Checkpoint(
        params=params,
        optimizer_state=optim,
        step=step,
        meta=meta,
        path=path,
    )


def _read_members(path: Path) -> dict[str, np.ndarray]:
    """Every member of the npz at ``path``, loaded eagerly, or CheckpointError."""
    where = f"checkpoint {str(path)!r}"
    try:
        # Opened here, not by np.load: np.load leaks its file handle when the zip
        # directory is unreadable (a truncated file); a ``with`` here always closes it.
        f = open(path, "rb")  # noqa: SIM115 - closed by the with block below
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot be read ({exc})") from exc
    with f:
        _refuse_unless_zip(f, path)
        try:
            npz = np.load(f, allow_pickle=False)
        except Exception as exc:
            # zipfile.BadZipFile for a cut zip, ValueError, EOFError ...: whatever the
            # parser trips on, the bytes are not a whole checkpoint.
            raise CheckpointError(f"{where}: not a readable .npz file ({_describe(exc)})") from exc
        members = {}
        with npz:
            for name in npz.files:
                try:
                    members[name] = npz[name]
                except ValueError as exc:
                    if "allow_pickle" in str(exc):
                        raise CheckpointError(
                            f"{where}: member {name!r} is an object array, which would need "
                            "pickle to load; refused (checkpoints hold numeric arrays only)"
                        ) from exc
                    raise CheckpointError(
                        f"{where}: member {name!r} is corrupt ({_describe(exc)})"
                    ) from exc
                except Exception as exc:
                    # A bad CRC, a cut member, a mangled .npy header.
                    raise CheckpointError(
                        f"{where}: member {name!r} is corrupt or truncated ({_describe(exc)})"
                    ) from exc
    return members


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


def _describe(exc: BaseException) -> str:
    """``ExcType: message`` for error messages."""
    return f"{type(exc).__name__}: {exc}"


def _int_scalar(arr: np.ndarray, name: str, fail: Callable[[str], CheckpointError]) -> int:
    """A 0-d integer member as an int."""
    if arr.shape != () or arr.dtype.kind not in "iu":
        raise fail(f"{name!r} must be a 0-d integer, got shape {arr.shape} dtype {arr.dtype}")
    return int(arr)


def _json_member(arr: np.ndarray, name: str, fail: Callable[[str], CheckpointError]) -> Any:
    """Decode a uint8 JSON member."""
    if arr.ndim != 1 or arr.dtype != np.uint8:
        raise fail(f"{name!r} must be 1-d uint8 JSON text, got shape {arr.shape} dtype {arr.dtype}")
    try:
        return json.loads(arr.tobytes().decode("utf-8"))
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
