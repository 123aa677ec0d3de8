#!/usr/bin/env bash
# Download into .whl/ the small wheels that an accelerator machine without a package registry
# needs beside its JAX, flax, optax, orbax and PyTorch (benchmarks/device_check.sh installs them
# from there): tqdm (the training loop), gin-config (the entry point), and for whole runs the
# grain loader with array-record, dm-tree and more-itertools, and jaxopt (the law fitter).
# Without dependencies (they are the device's), for CPython 3.10-3.12 on x86-64 Linux.
#   bash benchmarks/fetch_wheels.sh            # then carry .whl/ to the device
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
PURE=(tqdm gin-config jaxopt more-itertools)
BINARY=(grain array-record dm-tree)
mkdir -p .whl
"$PY" -m pip download --quiet --no-deps --only-binary=:all: -d .whl "${PURE[@]}"
for version in 3.10 3.11 3.12; do
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
    --python-version "$version" --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 "${BINARY[@]}" \
    || echo "fetch_wheels: some wheels for Python $version are missing"
done
ls -l .whl
du -sh .whl
