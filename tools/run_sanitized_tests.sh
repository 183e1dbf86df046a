#!/usr/bin/env bash
# The CPU test suite built with AddressSanitizer and UndefinedBehaviorSanitizer
# (build-asan/, no CUDA): any out-of-bounds access, use after free, leak or
# undefined behaviour stops the test that caused it, and fails this script.
# Usage: bash tools/run_sanitized_tests.sh      (from the repository root; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install_deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPIXGRAD_CUDA=OFF -DPIXGRAD_SANITIZE=ON
cmake --build build-asan -j"$(nproc)"
# The GPU-check rehearsal needs a CUDA build; everything else runs.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan -L cpu -E gpu_check_rehearsal --output-on-failure -j"$(nproc)"
