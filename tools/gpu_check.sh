#!/usr/bin/env bash
# The one script to run on a lent GPU (see docs/gpu-notes.md). Prepare with
# tools/prepare_gpu_check.sh here, then call the device tool with
#   command: bash tools/gpu_check.sh     carry: [".gpu_carry"]     timeout_s: 540
# It (1) records the machine, (2) uses the carried build if its binaries run
# there, else builds there, (3) runs the `cuda` tests, (4) runs the kernel
# benchmark's quick mode and the end-to-end step benchmark, (5) times the
# same step in PyTorch (eager, CUDA graphs) and prints pixgrad's speed-up,
# (6) trains the paper preset for 200 iterations on facades and prints
# iterations/s, (7) if time is left, batch-16 convolutions against cuDNN and
# the step with cuDNN convolutions. The whole log goes to $OUT/gpu_check.log,
# the JSON results beside it (8 files in all, the device tool's limit).
# Budget: every step has a timeout, cut further so that the script ends
# within 470 s (under 8 minutes); a step with no time left is skipped.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
started=$(date +%s)
budget=470
section() { echo; echo "=== $* (t+$(( $(date +%s) - started ))s)"; }
status=0

# step SECONDS COMMAND...: runs COMMAND for at most SECONDS, and never past the budget.
step() {
  local limit=$1 left rc
  shift
  left=$(( budget - ($(date +%s) - started) ))
  if [ "$left" -lt 15 ]; then
    echo "skipped: the ${budget}s budget is spent"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout "$limit" "$@"
  rc=$?
  [ "$rc" -eq 124 ] && echo "timed out after ${limit}s"
  return "$rc"
}

section "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader || status=1
nvcc --version | tail -n 1
g++ --version | head -n 1
cmake --version | head -n 1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tail -n 1
echo "commit: $(cat .gpu_carry/commit 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"

section "libraries"
# cuDNN and cuBLAS may live in the CUDA toolkit or in pip's nvidia-* wheels.
python_lib() {
  python3 -c "import importlib, os; m = importlib.import_module('$1'); print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null
}
for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib "$(python_lib nvidia.cudnn)" "$(python_lib nvidia.cublas)" \
           "$(python_lib nvidia.cu13)"; do
  [ -n "$dir" ] && [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir:${LD_LIBRARY_PATH:-}"
done
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

section "build"
bin=""
if [ -x .gpu_carry/bin/pixgrad_cuda_tests ] && .gpu_carry/bin/pixgrad_cuda_tests --list-test-names-only > /dev/null 2>&1; then
  bin=.gpu_carry/bin
  echo "using the carried build (.gpu_carry/bin)"
else
  echo "the carried build does not run here:"
  ldd .gpu_carry/bin/pixgrad_cuda_tests 2>&1 | grep -i "not found" || true
  echo "building here"
  cudnn_include="$(python_lib nvidia.cudnn)/../include"
  cudnn_library=""
  for library in "$(python_lib nvidia.cudnn)"/libcudnn.so*; do
    [ -e "$library" ] && cudnn_library=$library && break
  done
  extra=()
  [ -f "$cudnn_include/cudnn.h" ] && extra+=("-DCUDNN_INCLUDE_DIR=$cudnn_include")
  [ -n "$cudnn_library" ] && extra+=("-DCUDNN_LIBRARY=$cudnn_library")
  if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DPIXGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
       "${extra[@]}" && step 240 cmake --build build-gpu -j"$(nproc)"; then
    mkdir -p build-gpu/bin && cp build-gpu/tests/pixgrad_*tests build-gpu/apps/* build-gpu/bin/ 2>/dev/null
    bin=build-gpu/bin
  else
    echo "gpu_check: no runnable build (carried one failed, building here failed)"
    exit 1
  fi
fi

section "cuda tests"
step 90 "$bin/pixgrad_cuda_tests" --durations yes || status=1

section "kernel benchmark (quick: batch 1, every implementation)"
step 75 "$bin/bench_kernels" --quick --json "$OUT/bench_kernels.json" || status=1

section "training-step benchmark (batch 1, 4, 16)"
step 75 "$bin/bench_pix2pix" --device cuda --iterations 20 --warmup 5 --batch-sizes 1,4,16 \
  --json "$OUT/bench_pix2pix.json" || status=1

section "PyTorch: the same step (eager, CUDA graphs)"
step 90 env PYTHONUNBUFFERED=1 python3 tools/bench_torch_pix2pix.py --device cuda --batch-sizes 1,4 \
  --modes eager,cuda_graph --iterations 20 --warmup 5 --json "$OUT/bench_torch.json" || status=1
if [ -f "$OUT/bench_pix2pix.json" ] && [ -f "$OUT/bench_torch.json" ]; then
  python3 - "$OUT/bench_pix2pix.json" "$OUT/bench_torch.json" <<'PY' || status=1
import json, sys
ours = {r["batch"]: r for r in json.load(open(sys.argv[1])) if r["preset"] == "paper"}
theirs = [r for r in json.load(open(sys.argv[2])) if r.get("status") == "ok"]
for batch in (1, 4):
    if batch not in ours:
        continue
    mine = ours[batch]["seconds_per_iteration"]
    for r in (r for r in theirs if r["batch"] == batch):
        speedup = r["seconds_per_iteration"] / mine
        line = (f"paper batch {batch}: pixgrad {mine * 1e3:.2f} ms/iter, PyTorch {r['mode']} "
                f"{r['seconds_per_iteration'] * 1e3:.2f} ms/iter: pixgrad is {speedup:.2f}x as fast")
        if batch == 1 and r["mode"] == "eager":
            line += f"  (goal >= 4x: {'met' if speedup >= 4 else 'not met'})"
        print(line)
PY
fi

section "training: paper preset, 200 iterations on facades"
rm -rf /tmp/gpu_check_run
step 75 "$bin/train_pix2pix" --dataset .gpu_carry/data/facades --direction BtoA --device cuda \
  --output /tmp/gpu_check_run --max-iterations 200 --log-interval 50 --snapshot-interval 200 --preview-count 3 \
  || status=1
if [ -f /tmp/gpu_check_run/log.jsonl ]; then
  cp /tmp/gpu_check_run/log.jsonl /tmp/gpu_check_run/preview.png "$OUT/" 2>/dev/null
  python3 - /tmp/gpu_check_run/log.jsonl <<'PY' || true
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if '"loss_G"' in line]
last = records[-1]
print(f"iterations/s (last {50} iterations): {1 / last['seconds_per_iteration']:.1f}  "
      f"(G {last['loss_G']:.3f}, L1 {last['loss_L1']:.4f}, D {last['loss_D']:.4f})")
PY
fi

section "batch-16 convolutions: handwritten against cuDNN (if time is left)"
step 60 "$bin/bench_kernels" --device cuda --impls cudnn,handwritten --ops conv --batch-sizes 16 --gpu-reps 15 \
  --skip-gemm --json "$OUT/bench_kernels_b16.json" || status=1

section "training step with cuDNN convolutions (if time is left)"
step 40 "$bin/bench_pix2pix" --device cuda --conv-impl cudnn --presets paper --iterations 20 --warmup 5 \
  --batch-sizes 1,16 --json "$OUT/bench_pix2pix_cudnn.json" || status=1

section "done: status $status"
exit $status
