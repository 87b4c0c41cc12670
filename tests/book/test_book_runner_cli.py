"""``chainrule run`` runs a script as ``python SCRIPT`` would, and leaves the checkout alone.

What Python gives a script (``sys.argv``, ``sys.path[0]``, ``__name__``, the working
directory, the exit status, a traceback), what the runner says on stderr, where MNIST
comes from, and that pickles carrying code are refused with nothing run.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import write_idx

BOOK_HEADER = "import sys, os\nsys.path.append(os.pardir)\nimport numpy as np\n"


def checkout(root: Path) -> Path:
    """A bare checkout: empty common/ and dataset/ packages, a ch05 and a ch07 folder."""
    for folder in ("common", "dataset", "ch05", "ch07"):
        (root / folder).mkdir(parents=True)
    (root / "common" / "__init__.py").write_text("")
    (root / "dataset" / "__init__.py").write_text("")
    return root


def write(path: Path, source: str) -> Path:
    path.write_text(BOOK_HEADER + textwrap.dedent(source))
    return path


def chainrule_run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", "run", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


def test_the_script_gets_what_python_gives_it(tmp_path):
    root = checkout(tmp_path / "book")
    write(root / "ch05" / "where.py", """
        print("argv", sys.argv)
        print("path0", sys.path[0])
        print("name", __name__)
        print("cwd", os.getcwd())
        print("file", __file__)
        sys.exit(int(sys.argv[1]))
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "ch05/where.py", "3", "--lr", "x", cwd=root)
    assert done.returncode == 3  # sys.exit's status is the run's
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["argv"] == "['ch05/where.py', '3', '--lr', 'x']"  # the flags are the script's
    assert lines["path0"] == str((root / "ch05").resolve())
    assert lines["name"] == "__main__"
    assert lines["cwd"] == str(root)  # the user's folder, not the script's
    assert lines["file"] == "ch05/where.py"


def test_one_line_on_stderr_says_what_stands_in(tmp_path):
    root = checkout(tmp_path / "book")
    write(root / "ch07" / "imports.py", """
        from common.layers import *
        from common.trainer import Trainer
        from simple_convnet import SimpleConvNet
        import chainrule.book.layers, chainrule.book.simple_convnet
        assert Affine.__module__ == "chainrule.layers" and Relu is chainrule.book.layers.Relu
        assert SimpleConvNet is chainrule.book.simple_convnet.SimpleConvNet
        assert Trainer.__module__ == "chainrule.book.trainer"
        print(sorted(n for n in dir() if not n.startswith("_"))[:3])
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "imports.py", cwd=root / "ch07")
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("chainrule run: chainrule stands in for common.{functions,gradient,")
    assert "simple_convnet" in line and "two_layer_net" not in line  # ch05's, not ch07's
    assert "mnist-5k" in line and "offline" in line


def test_layers_exports_the_books_names(tmp_path):
    # the book's common/layers.py exports its layers, its functions, np, im2col, col2im
    root = checkout(tmp_path / "book")
    write(root / "ch05" / "names.py", """
        from common.layers import *
        from common.functions import *
        from common.gradient import numerical_gradient
        from common.util import smooth_curve, shuffle_dataset, conv_output_size, im2col, col2im
        from common.optimizer import SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam
        for name in ["Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout",
                     "BatchNormalization", "Convolution", "Pooling", "np", "im2col", "col2im",
                     "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu",
                     "relu_grad", "softmax", "sum_squared_error", "cross_entropy_error",
                     "softmax_loss"]:
            assert name in dir(), name
        print(conv_output_size(28, 5), step_function(np.array([-1.0, 2.0])))
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "names.py", cwd=root / "ch05")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "24.0 [0 1]\n"  # the book's float, the book's integers


def test_a_module_chainrule_does_not_replace_loads_from_the_checkout(tmp_path):
    root = checkout(tmp_path / "book")
    (root / "common" / "np.py").write_text("import numpy as np\nWHERE = 'the checkout'\n")
    (root / "ch05" / "helper.py").write_text("HELP = 'chapter helper'\n")
    write(root / "ch05" / "mixed.py", """
        from common.np import WHERE
        from helper import HELP
        from common.functions import softmax
        print(WHERE, "/", HELP, "/", softmax.__module__)
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "mixed.py", cwd=root / "ch05")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the checkout / chapter helper / chainrule.losses\n"


def test_a_failing_script_shows_pythons_traceback(tmp_path):
    root = checkout(tmp_path / "book")
    write(root / "ch05" / "broken.py", """
        def step():
            raise ValueError("the learner's own bug")
        step()
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "broken.py", cwd=root / "ch05")
    assert done.returncode == 1
    lines = done.stderr.splitlines()[1:]
    assert lines[0] == "Traceback (most recent call last):"
    assert 'broken.py", line 7, in <module>' in lines[1]  # the script's frame first
    assert lines[-1] == "ValueError: the learner's own bug"
    assert "runpy" not in done.stderr and "chainrule/cli" not in done.stderr


def test_a_missing_script_is_a_usage_error(tmp_path):
    done = chainrule_run("no_such_script.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "no_such_script.py" in done.stderr and "Traceback" not in done.stderr


def test_nothing_is_written_into_the_checkout(tmp_path):
    root = checkout(tmp_path / "book")
    (root / "ch05" / "two_layer_net.py").write_text("raise SystemExit('not imported')\n")
    (root / "common" / "local_helper.py").write_text("VALUE = 1\n")
    write(root / "ch05" / "train.py", """
        from dataset.mnist import load_mnist
        from two_layer_net import TwoLayerNet
        from common.local_helper import VALUE
        (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
        network = TwoLayerNet(input_size=784, hidden_size=10, output_size=10)
        grads = network.gradient(x_train[:10], t_train[:10])
        print(round(float(network.accuracy(x_test, t_test)), 1) >= 0)
    """)  # fmt: skip
    before = snapshot(root)
    # Python as a learner runs it, writing bytecode files unless told not to
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = chainrule_run("--dataset", "mnist-5k", "train.py", cwd=root / "ch05", env=env)
    assert done.returncode == 0, done.stderr
    assert snapshot(root) == before  # no __pycache__, no mnist.pkl, nothing changed
    assert not list(tmp_path.rglob("mnist.pkl"))


def fake_mnist(folder: Path, train: int = 30, test: int = 20) -> None:
    """The four IDX files with few images (for the loader's shapes and dtypes)."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
        )
        write_idx(
            folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count, dtype=np.uint8)
        )


LOAD_MNIST = """
    from dataset.mnist import load_mnist
    for normalize, flatten, one_hot in [(1, 1, 0), (0, 1, 0), (1, 0, 1)]:
        (x, t), (xt, tt) = load_mnist(normalize=normalize, flatten=flatten, one_hot_label=one_hot)
        print(x.dtype, x.shape, t.dtype, t.shape, xt.shape, float(x.max()))
"""


def test_load_mnist_gives_the_books_shapes_and_dtypes_from_data_dir(tmp_path):
    root = checkout(tmp_path / "book")
    fake_mnist(tmp_path / "idx")
    write(root / "ch05" / "load.py", LOAD_MNIST)
    done = chainrule_run("--data-dir", str(tmp_path / "idx"), "load.py", cwd=root / "ch05")
    assert done.returncode == 0, done.stderr
    assert "full MNIST" in done.stderr
    assert done.stdout.splitlines() == [
        "float32 (30, 784) uint8 (30,) (20, 784) 1.0",
        "uint8 (30, 784) uint8 (30,) (20, 784) 255.0",
        "float32 (30, 1, 28, 28) float64 (30, 10) (20, 1, 28, 28) 1.0",
    ]


def test_without_mnist_one_line_says_how_to_get_it(tmp_path, monkeypatch):
    from chainrule.book import mnist
    from chainrule.data import mnist as data
    from chainrule.errors import DataError, DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("no network")

    monkeypatch.setattr(data, "_download", offline)
    mnist.use("mnist", tmp_path)
    try:
        with pytest.raises(DataError) as error:
            mnist.load_mnist()
    finally:
        mnist.use()
    (line,) = str(error.value).splitlines()
    assert "chainrule fetch mnist DIR" in line and "--dataset mnist-5k" in line
    assert str(tmp_path) in line  # where it looked


class _WritesAFile:
    """Unpickled by pickle.load, this would create the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_carrying_code_is_refused_and_nothing_runs(tmp_path):
    root = checkout(tmp_path / "book")
    (root / "ch03").mkdir()
    target = tmp_path / "written_by_the_pickle"
    weights = {"W1": np.zeros((2, 2)), "b1": _WritesAFile(target)}
    (root / "ch03" / "sample_weight.pkl").write_bytes(pickle.dumps(weights, protocol=4))
    write(root / "ch03" / "neuralnet_mnist.py", """
        import pickle
        with open("sample_weight.pkl", "rb") as f:
            network = pickle.load(f)
        print("loaded", sorted(network))
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "neuralnet_mnist.py", cwd=root / "ch03")
    assert done.returncode == 1
    assert not target.exists()
    error = done.stderr.splitlines()[-1]
    assert error.startswith("chainrule run: error: sample_weight.pkl: refused to load")
    assert "io.open" in error and "nothing in it was run" in error
    assert done.stdout == ""


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_the_books_pickles_load_through_pickle_load(tmp_path, protocol):
    root = checkout(tmp_path / "book")
    weights = {"W1": np.arange(6.0).reshape(2, 3), "b1": np.zeros(3, np.float32)}
    (root / "ch05" / "w.pkl").write_bytes(pickle.dumps(weights, protocol=protocol))
    write(root / "ch05" / "load.py", """
        import pickle
        with open("w.pkl", "rb") as f:
            w = pickle.load(f)
        print(w["W1"].tolist(), w["b1"].dtype)
    """)  # fmt: skip
    done = chainrule_run("--dataset", "mnist-5k", "load.py", cwd=root / "ch05")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] float32\n"
