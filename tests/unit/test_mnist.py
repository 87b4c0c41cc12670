"""load_mnist: the embedded 5k set, IDX folders the tests write, lookup, download, errors.

The real Fashion-MNIST is checked where Debian's ``dataset-fashion-mnist`` is installed;
the real MNIST where ``CHAINRULE_TEST_MNIST_DIR`` names a folder holding its four files.
Every other test uses files it makes, and points the cache at a temporary folder.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import gzip
import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from ci_tools import needs_tool

import chainrule.data.mnist as mnist_module
from chainrule.data import DATASETS, cache_dir, dataset_info, load_mnist, write_idx
from chainrule.errors import DataError

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache, so none reads or fills the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CHAINRULE_DATA", str(cache))
    return cache


# --- the embedded mnist-5k ------------------------------------------------------------


@pytest.fixture(scope="module")
def raw5k() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return load_mnist(normalize=False, flatten=True, one_hot_label=False)


def test_embedded_shapes_and_dtypes(raw5k) -> None:
    (x, t), (xt, tt) = raw5k
    assert x.shape == (4000, 784) and x.dtype == np.uint8
    assert xt.shape == (1000, 784) and xt.dtype == np.uint8
    assert t.shape == (4000,) and tt.shape == (1000,)
    assert t.dtype == np.int64 and tt.dtype == np.int64


def test_embedded_is_the_default_and_normalized(raw5k) -> None:
    (x, t), (xt, tt) = load_mnist()
    (xu, tu), (xtu, ttu) = raw5k
    np.testing.assert_allclose(xt * 255.0, xtu, atol=1e-4)
    assert x.dtype == np.float32 and xt.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert xt.min() == 0.0 and xt.max() == 1.0
    np.testing.assert_allclose(x * 255.0, xu, atol=1e-4)
    np.testing.assert_array_equal(t, tu)
    np.testing.assert_array_equal(tt, ttu)


def test_embedded_pixels_look_like_mnist(raw5k) -> None:
    (x, _), _ = raw5k
    # MNIST digits are centred in a 20x20 box inside the 28x28 frame: the outer two
    # pixels hold almost no ink, the centre a lot. A transposed or shifted reading
    # (or labels taken for pixels) breaks this.
    images = x.reshape(-1, 28, 28).astype(np.float64)
    frame = np.ones((28, 28), dtype=bool)
    frame[2:26, 2:26] = False
    assert images[:, frame].mean() < 1.0
    assert images[:, 8:20, 8:20].mean() > 50.0
    assert x.max() == 255


def test_book_positional_arguments(raw5k) -> None:
    (x, t), _ = load_mnist(True, False, True)
    (xu, tu), _ = raw5k
    assert x.shape == (4000, 1, 28, 28)
    assert t.shape == (4000, 10)
    np.testing.assert_array_equal(t.argmax(axis=1), tu)
    np.testing.assert_array_equal(x.reshape(4000, 784) * np.float32(255), xu.astype(np.float32))


def test_flatten_false(raw5k) -> None:
    (x, _), (xt, _) = load_mnist(normalize=False, flatten=False)
    (xu, _), _ = raw5k
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    # Row-major: pixel (r, c) of the image is element 28*r + c of the flat vector.
    np.testing.assert_array_equal(x[:, 0, 3, 17], xu[:, 28 * 3 + 17])


def test_one_hot(raw5k) -> None:
    (_, t), (_, tt) = load_mnist(one_hot_label=True)
    (_, tu), (_, ttu) = raw5k
    for hot, labels in ((t, tu), (tt, ttu)):
        assert hot.shape == (len(labels), 10) and hot.dtype == np.float32
        np.testing.assert_array_equal(hot.sum(axis=1), 1.0)
        assert set(np.unique(hot)) == {0.0, 1.0}
        np.testing.assert_array_equal(hot.argmax(axis=1), labels)


def test_embedded_stratified_split(raw5k) -> None:
    (_, t), (_, tt) = raw5k
    np.testing.assert_array_equal(np.bincount(t, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(tt, minlength=10), [100] * 10)
    # Shuffled, not sorted by label: sequential mini-batches must mix digits.
    assert len(np.unique(t[:100])) == 10


def test_embedded_train_and_test_disjoint(raw5k) -> None:
    (x, _), (xt, _) = raw5k
    train_rows = {row.tobytes() for row in x}
    test_rows = {row.tobytes() for row in xt}
    assert len(train_rows) == 4000 and len(test_rows) == 1000  # no duplicates either
    assert train_rows.isdisjoint(test_rows)


def test_returns_fresh_arrays() -> None:
    (x, t), _ = load_mnist(normalize=False)
    x[:] = 7
    t[:] = 3
    (x2, t2), _ = load_mnist(normalize=False)
    assert x2.max() == 255 and len(np.unique(t2)) == 10


def test_embedded_file_loads_without_pickle() -> None:
    path = Path(mnist_module.__file__).with_name("mnist_5k.npz")
    assert 200_000 < path.stat().st_size < 3_000_000
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["t_test", "t_train", "x_test", "x_train"]
        assert all(npz[k].dtype == np.uint8 for k in npz.files)


# --- IDX folders made by the tests ------------------------------------------------------


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def write_fake(folder: Path, *, n_train: int = 20, n_test: int = 8, gz: bool = False) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(FILES, (*make_split(n_train, 1), *make_split(n_test, 2)), strict=True))
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return arrays


def test_fake_mnist_from_data_dir(tmp_path: Path) -> None:
    arrays = write_fake(tmp_path / "d")
    (x, t), (xt, tt) = load_mnist(normalize=False, dataset="mnist", data_dir=tmp_path / "d")
    np.testing.assert_array_equal(x, arrays[FILES[0]].reshape(20, 784))
    np.testing.assert_array_equal(t, arrays[FILES[1]])
    np.testing.assert_array_equal(xt, arrays[FILES[2]].reshape(8, 784))
    np.testing.assert_array_equal(tt, arrays[FILES[3]])
    assert t.dtype == np.int64


def test_fake_gz_files_and_all_options(tmp_path: Path) -> None:
    arrays = write_fake(tmp_path, gz=True)
    (x, t), (xt, tt) = load_mnist(True, False, True, dataset="fashion-mnist", data_dir=tmp_path)
    assert x.shape == (20, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255.0, arrays[FILES[0]], atol=1e-4)
    assert t.shape == (20, 10)
    np.testing.assert_array_equal(t.argmax(axis=1), arrays[FILES[1]])
    assert xt.shape == (8, 1, 28, 28) and tt.shape == (8, 10)


def test_mixed_raw_gz_and_dotted_names(tmp_path: Path) -> None:
    arrays = write_fake(tmp_path)
    (tmp_path / FILES[0]).rename(tmp_path / "train-images.idx3-ubyte")
    write_idx(tmp_path / (FILES[3] + ".gz"), arrays[FILES[3]])
    (tmp_path / FILES[3]).unlink()
    (x, _), (_, tt) = load_mnist(normalize=False, dataset="mnist", data_dir=str(tmp_path))
    np.testing.assert_array_equal(x, arrays[FILES[0]].reshape(20, 784))
    np.testing.assert_array_equal(tt, arrays[FILES[3]])


def test_found_in_cache_folder(private_cache: Path) -> None:
    arrays = write_fake(private_cache / "mnist")
    assert cache_dir() == private_cache
    (_, t), _ = load_mnist(dataset="mnist", download=False)
    np.testing.assert_array_equal(t, arrays[FILES[1]])


def test_found_in_system_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share"
    arrays = write_fake(system, gz=True)
    info = dataclasses.replace(dataset_info("fashion-mnist"), system_dirs=(str(system),))
    monkeypatch.setitem(mnist_module._INFO, "fashion-mnist", info)
    (_, t), _ = load_mnist(dataset="fashion-mnist", download=False)
    np.testing.assert_array_equal(t, arrays[FILES[1]])


def full_text(error: BaseException) -> str:
    """An error's message and the notes under it (the detail of a missing dataset)."""
    return "\n".join([str(error), *getattr(error, "__notes__", [])])


def test_missing_files_message(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(DataError) as info:
        load_mnist(dataset="mnist", data_dir=folder, download=False)
    message = str(info.value)
    assert message == (
        f"the mnist data set is missing: its four IDX files ({FILES[0]} ...) are not in "
        f"{folder}; pass the folder that holds them as data_dir= (--data-dir on the command "
        "line), or download=True to fetch them; 'chainrule fetch mnist DIR' downloads them "
        "into DIR"
    )
    for name in FILES:
        assert name in full_text(info.value)


def test_missing_everywhere_lists_every_folder(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "nowhere"
    info = dataclasses.replace(dataset_info("fashion-mnist"), system_dirs=(str(system),))
    monkeypatch.setitem(mnist_module._INFO, "fashion-mnist", info)
    write_fake(private_cache / "fashion-mnist")
    (private_cache / "fashion-mnist" / FILES[2]).unlink()
    with pytest.raises(DataError) as err:
        load_mnist(dataset="fashion-mnist", download=False)
    message = str(err.value)
    assert f"{FILES[2]} is not in {private_cache / 'fashion-mnist'} or " in message
    assert f"{system} (no such folder)" in message
    assert "apt-get install dataset-fashion-mnist" in message
    detail = full_text(err.value)
    assert f"{private_cache / 'fashion-mnist'}: missing {FILES[2]}" in detail
    assert f"{system}: no such folder" in detail


# --- download into the cache, from a local server --------------------------------------


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
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


def serve_fake_mnist(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    arrays = write_fake(root, gz=True)
    specs = tuple(
        dataclasses.replace(
            spec, gz_md5=hashlib.md5((root / (spec.name + ".gz")).read_bytes()).hexdigest()
        )
        for spec in dataset_info("mnist").files
    )
    info = dataclasses.replace(dataset_info("mnist"), mirrors=(url,), files=specs)
    monkeypatch.setitem(mnist_module._INFO, "mnist", info)
    return arrays


def test_download_into_cache(
    file_server: tuple[str, Path], private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = file_server
    arrays = serve_fake_mnist(root, url, monkeypatch)
    seen: list[tuple[int, int | None]] = []
    (x, _), (_, tt) = load_mnist(
        normalize=False, dataset="mnist", progress=lambda d, t: seen.append((d, t))
    )
    np.testing.assert_array_equal(x, arrays[FILES[0]].reshape(20, 784))
    np.testing.assert_array_equal(tt, arrays[FILES[3]])
    assert sorted(p.name for p in (private_cache / "mnist").iterdir()) == sorted(
        name + ".gz" for name in FILES
    )
    sizes = {(root / (name + ".gz")).stat().st_size for name in FILES}
    assert {t for _, t in seen} == sizes
    # A second call finds the files in the cache; the server is no longer needed.
    for name in FILES:
        (root / (name + ".gz")).unlink()
    (_, t2), _ = load_mnist(dataset="mnist", download=False)
    np.testing.assert_array_equal(t2, arrays[FILES[1]])


def test_download_only_what_is_missing(
    file_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = file_server
    arrays = serve_fake_mnist(root, url, monkeypatch)
    target = tmp_path / "mine"
    target.mkdir()
    write_idx(target / FILES[1], arrays[FILES[1]])  # already here, raw
    load_mnist(dataset="mnist", data_dir=target)
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [FILES[1]] + [n + ".gz" for n in FILES if n != FILES[1]]
    )


def test_download_failure_is_a_data_error(
    file_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = file_server
    serve_fake_mnist(root, url, monkeypatch)
    (root / (FILES[2] + ".gz")).write_bytes(b"tampered")
    target = tmp_path / "target"
    with pytest.raises(DataError) as err:
        load_mnist(dataset="mnist", data_dir=target)
    assert "the download failed" in str(err.value) and str(target) in str(err.value)
    detail = full_text(err.value)
    assert "checksum mismatch" in detail
    assert url + FILES[2] + ".gz" in detail
    assert all(name in detail for name in FILES)
    # The files before the bad one were verified and kept; nothing partial is left.
    assert sorted(p.name for p in target.iterdir()) == sorted(n + ".gz" for n in FILES[:2])


# --- files with the wrong content ---------------------------------------------------------


def test_label_out_of_range(tmp_path: Path) -> None:
    arrays = write_fake(tmp_path)
    labels = arrays[FILES[3]].copy()
    labels[5] = 10
    write_idx(tmp_path / FILES[3], labels)
    with pytest.raises(DataError, match=r"labels 0-9, found 10 at index 5") as err:
        load_mnist(dataset="mnist", data_dir=tmp_path)
    assert str(tmp_path / FILES[3]) in str(err.value)


def test_count_mismatch(tmp_path: Path) -> None:
    arrays = write_fake(tmp_path)
    write_idx(tmp_path / FILES[1], arrays[FILES[1]][:19])
    with pytest.raises(DataError, match="20 images") as err:
        load_mnist(dataset="mnist", data_dir=tmp_path)
    assert str(tmp_path / FILES[1]) in str(err.value) and "found 19" in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 28, 27), dtype=np.uint8),
        np.zeros((8, 784), dtype=np.uint8),
        np.zeros((8, 28, 28), dtype=np.float32),
    ],
    ids=["28x27", "flat", "float32"],
)
def test_wrong_image_shape_or_dtype(tmp_path: Path, bad: np.ndarray) -> None:
    write_fake(tmp_path)
    write_idx(tmp_path / FILES[2], bad)
    with pytest.raises(DataError, match=r"\(N, 28, 28\)") as err:
        load_mnist(dataset="mnist", data_dir=tmp_path)
    assert str(tmp_path / FILES[2]) in str(err.value)


def test_an_idx_bomb_is_refused_by_its_headers_before_it_is_inflated(tmp_path: Path) -> None:
    import tracemalloc

    write_fake(tmp_path)
    n = 70_000  # more images than MNIST's 60,000: 55 MB of zeros, 54 kB compressed
    header = bytes([0, 0, 0x08, 3]) + np.array([n, 28, 28], dtype=">u4").tobytes()
    (tmp_path / FILES[0]).unlink()
    (tmp_path / (FILES[0] + ".gz")).write_bytes(gzip.compress(header + bytes(n * 784)))
    write_idx(tmp_path / FILES[1], np.zeros(n, np.uint8))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"expected 1 to 60000 images .* declares 70000"):
            load_mnist(dataset="mnist", data_dir=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_an_empty_split_names_its_file(tmp_path: Path) -> None:
    write_fake(tmp_path)
    write_idx(tmp_path / FILES[2], np.zeros((0, 28, 28), np.uint8))
    write_idx(tmp_path / FILES[3], np.zeros(0, np.uint8))
    with pytest.raises(DataError) as info:
        load_mnist(dataset="mnist", data_dir=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / FILES[2]}: expected 1 to 10000 images")


def test_a_file_as_data_dir_says_so(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: a file, not the folder of mnist's IDX"):
        load_mnist(dataset="mnist", data_dir=notes)


def test_corrupt_file_named(tmp_path: Path) -> None:
    write_fake(tmp_path, gz=True)
    path = tmp_path / (FILES[0] + ".gz")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError) as err:
        load_mnist(dataset="mnist", data_dir=tmp_path)
    assert str(path) in str(err.value)


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="mnist-5k, mnist, fashion-mnist"):
        load_mnist(dataset="cifar10")


# --- dataset_info, cache folder, dependencies ---------------------------------------------


def test_dataset_info() -> None:
    assert DATASETS == ("mnist-5k", "mnist", "fashion-mnist")
    for name in DATASETS:
        info = dataset_info(name)
        assert info.name == name and len(info.classes) == 10
    fashion = dataset_info("fashion-mnist")
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert [f.name for f in dataset_info("mnist").files] == list(FILES)
    for name in ("mnist", "fashion-mnist"):
        info = dataset_info(name)
        assert all(m.startswith("https://") for m in info.mirrors)
        assert all(len(f.gz_md5) == 32 and len(f.raw_md5) == 32 for f in info.files)


def test_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("CHAINRULE_DATA")
    assert cache_dir().name == "chainrule" or cache_dir().parent.name == "chainrule"


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, "/home/u/.cache/chainrule"),
        ("linux", {"XDG_CACHE_HOME": "/xdg"}, "/xdg/chainrule"),
        ("linux", {"XDG_CACHE_HOME": "relative/path"}, "/home/u/.cache/chainrule"),
        ("freebsd14", {}, "/home/u/.cache/chainrule"),
        ("darwin", {"XDG_CACHE_HOME": "/xdg"}, "/home/u/Library/Caches/chainrule"),
        ("win32", {"LOCALAPPDATA": "/appdata"}, "/appdata/chainrule/Cache"),
        ("win32", {}, "/home/u/AppData/Local/chainrule/Cache"),
    ],
)
def test_platform_cache_root(platform: str, environ: dict, expected: str) -> None:
    got = mnist_module._platform_cache_root(platform, environ, Path("/home/u"))
    assert got == Path(expected)


def test_data_package_imports_only_numpy_and_the_standard_library() -> None:
    folder = Path(mnist_module.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"numpy", "chainrule", "__future__"}
    for source in folder.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{source.name} imports {roots}"
            assert "subprocess" not in roots, f"{source.name} imports subprocess"


# --- the real datasets, where present -----------------------------------------------------


def raw_md5(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return hashlib.md5(data).hexdigest()


def test_real_fashion_mnist_from_debian() -> None:
    present = (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file()
    needs_tool("dataset-fashion-mnist", present, "Debian's dataset-fashion-mnist is not installed")
    (x, t), (xt, tt) = load_mnist(
        normalize=False, dataset="fashion-mnist", data_dir=DEBIAN_FASHION, download=False
    )
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert t.min() == 0 and t.max() == 9 and tt.min() == 0 and tt.max() == 9
    np.testing.assert_array_equal(np.bincount(t, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(tt, minlength=10), [1000] * 10)
    # Debian re-compressed the files (other .gz bytes), but the content must be the
    # published one.
    for spec in dataset_info("fashion-mnist").files:
        assert raw_md5(DEBIAN_FASHION / (spec.name + ".gz")) == spec.raw_md5


def test_real_mnist(raw5k) -> None:
    needs_tool(
        "MNIST (CHAINRULE_TEST_MNIST_DIR)",
        os.environ.get("CHAINRULE_TEST_MNIST_DIR"),
        "set CHAINRULE_TEST_MNIST_DIR to a folder with the four MNIST files",
    )
    folder = Path(os.environ["CHAINRULE_TEST_MNIST_DIR"])
    (x, t), (xt, tt) = load_mnist(normalize=False, dataset="mnist", data_dir=folder, download=False)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    for spec in dataset_info("mnist").files:
        dotted = spec.name.replace("-idx", ".idx")  # the spelling of some copies
        names = (spec.name, spec.name + ".gz", dotted, dotted + ".gz")
        path = next(folder / name for name in names if (folder / name).is_file())
        assert raw_md5(path) == spec.raw_md5  # the published checksums
    # Class counts of the MNIST training and test sets, as published.
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(t, minlength=10), train_counts)
    np.testing.assert_array_equal(np.bincount(tt, minlength=10), test_counts)
    # Each embedded image is a real MNIST training image with the same label.
    index = {row.tobytes(): label for row, label in zip(x, t, strict=True)}
    (x5, t5), (xt5, tt5) = raw5k
    for rows, labels in ((x5, t5), (xt5, tt5)):
        assert all(index.get(r.tobytes()) == lab for r, lab in zip(rows, labels, strict=True))


def test_an_unknown_dataset_is_an_argument_error() -> None:
    from chainrule.errors import ArgumentError

    with pytest.raises(ArgumentError, match="unknown dataset 'mnist-6k'"):
        dataset_info("mnist-6k")
