#!/usr/bin/env bash
# CTest's rehearsal of the GPU check (no GPU needed): carries this build's
# binaries, with the header-only dependencies and a facades slice, into a
# copy of the tree elsewhere and runs `tools/gpu_check.sh --rehearse` there
# with the build folder and ../shared out of reach (tools/rehearse_gpu_check.sh).
# Usage: gpu_check_rehearsal.sh BUILD_DIR      (from the repository root)
set -euo pipefail
build="$(cd "$1" && pwd)"
source "$(dirname "$0")/facades.sh"
if [ "$("$build/tests/pixgrad_cuda_tests" --list-test-names-only 2>/dev/null | grep -c .)" -eq 0 ]; then
  echo "SKIPPED: this build has no CUDA, so there is no GPU check to rehearse"
  exit 77
fi
work=$(mktemp -d /tmp/pixgrad-carry.XXXXXX)
trap 'rm -rf "$work"' EXIT
bash tools/prepare_gpu_check.sh --from-build "$build" --output "$work/carry" "$facades"
bash tools/rehearse_gpu_check.sh --carry "$work/carry" --hide "$build" --log "$build/gpu_check_rehearsal.log"
