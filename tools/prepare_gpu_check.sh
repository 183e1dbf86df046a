#!/usr/bin/env bash
# Prepares what tools/gpu_check.sh needs on a lent GPU machine, which starts
# bare and cannot reach the network or ../shared:
#   .gpu_carry/bin   Release binaries built here for sm_90 (the carried build)
#   .gpu_carry/data  a slice of the facades set (100 train, 10 test pairs)
# Then call the device tool with
#   command: bash tools/gpu_check.sh     carry: [".gpu_carry"]     timeout_s: 540
# (.gpu_carry is git-ignored; it travels only because the call names it.)
set -euo pipefail
cd "$(dirname "$0")/.."

facades="${1:-../shared/data/facades}"
[ -d "$facades/train" ] || { echo "prepare_gpu_check: no facades at '$facades'" >&2; exit 1; }

cmake -S . -B build-gpu-carry -G Ninja -DCMAKE_BUILD_TYPE=Release -DPIXGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
cmake --build build-gpu-carry -j"$(nproc)"

rm -rf .gpu_carry
mkdir -p .gpu_carry/bin .gpu_carry/data/facades/train .gpu_carry/data/facades/test
cp build-gpu-carry/tests/pixgrad_cuda_tests build-gpu-carry/tests/pixgrad_tests .gpu_carry/bin/
cp build-gpu-carry/apps/train_pix2pix build-gpu-carry/apps/pix2pix_translate build-gpu-carry/apps/bench_pix2pix \
   build-gpu-carry/apps/bench_kernels .gpu_carry/bin/
ls "$facades/train" | sort | head -n 100 | while read -r f; do cp "$facades/train/$f" .gpu_carry/data/facades/train/; done
ls "$facades/test" | sort | head -n 10 | while read -r f; do cp "$facades/test/$f" .gpu_carry/data/facades/test/; done
git rev-parse HEAD > .gpu_carry/commit
du -sh .gpu_carry
echo "prepare_gpu_check: ready; run tools/gpu_check.sh through the device tool with carry [\".gpu_carry\"]"
