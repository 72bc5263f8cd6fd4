#!/usr/bin/env bash
# Fetch, where there is a network (or a package index), the wheels scripts/gpu-proof.sh brings to a
# GPU machine that has none: Keras 3 and its small dependencies, for Keras on JAX and on PyTorch
# (the GPU machine already has NumPy, JAX, PyTorch and CuPy; TensorFlow is too big to bring).
#
#   scripts/fetch-gpu-wheels.sh [DIR] [PYTHON_VERSION]     (default: .gpu-wheels 3.12)
#
# Wheels only, for Linux x86-64 and the GPU machine's Python; about 10 MB. DIR is git-ignored:
# carry it to the GPU machine with the checkout (gpu-proof.sh unpacks what is not installed).
set -euo pipefail
dir="${1:-.gpu-wheels}"
python_version="${2:-3.12}"
mkdir -p "$dir"
python3 -m pip download --quiet --dest "$dir" --no-deps --only-binary=:all: \
  --python-version "$python_version" --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  'keras>=3.5' absl-py namex optree h5py rich markdown-it-py mdurl pygments
du -sh "$dir"
ls "$dir"
