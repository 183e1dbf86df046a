#!/usr/bin/env bash
# Builds pixgrad and runs its test suite, installing what is missing first.
# Usage: bash tools/run_tests.sh            (from the repository root)
# The CUDA suite runs when a GPU is usable and is reported as skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
cmake -S . -B build -G Ninja
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
