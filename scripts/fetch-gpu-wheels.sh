#!/usr/bin/env bash
# Fetch, where there is a network (or a package index), the wheels scripts/gpu-proof.sh brings to a
# GPU machine that has none:
#   - Keras 3.15.1 (the version the CPU results use) and the two small packages it needs that
#     such a machine may lack (namex, optree), for Keras on JAX and on PyTorch; its other needs
#     (absl-py, h5py, ml-dtypes, numpy, packaging, rich) come with JAX's and PyTorch's images;
#   - pytest-benchmark 5.3.1 or newer (and py-cpuinfo): 5.2.3 and 5.3.0 fail every benchmark under
#     pytest 9.2; offline_site.py puts a carried wheel ahead of an older installed version.
# TensorFlow is too big to bring.
#
#   scripts/fetch-gpu-wheels.sh [DIR] [PYTHON_VERSION]     (default: .gpu-wheels 3.12)
#
# Wheels only, for Linux x86-64 and the GPU machine's Python; about 10 MB. DIR is git-ignored:
# carry it to the GPU machine with the checkout.
set -euo pipefail
dir="${1:-.gpu-wheels}"
python_version="${2:-3.12}"
mkdir -p "$dir"
python3 -m pip download --quiet --dest "$dir" --no-deps --only-binary=:all: \
  --python-version "$python_version" --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  'keras==3.15.1' 'namex==0.1.0' 'optree==0.20.0' 'pytest-benchmark==5.3.1' 'py-cpuinfo==9.0.0'
du -sh "$dir"
ls "$dir"
