#!/usr/bin/env bash
# The GPU check: everything pixgrad has to prove on a machine with an NVIDIA
# GPU (H100/H200, sm_90), in one run of under 8 minutes.
#
#   here:    bash tools/prepare_gpu_check.sh      (fills .gpu_carry/)
#            bash tools/gpu_check.sh --rehearse   (all of the below that needs no GPU)
#   there:   copy the tree with .gpu_carry/, then from the tree's root
#            bash tools/gpu_check.sh               (log and results in $OUT, default /tmp/gpu_check_out)
#
# Steps, in order of importance (each has a time limit; a step that would
# pass the overall budget is cut short or skipped and says so):
#   1. the machine: GPU, driver, toolkit, compute-sanitizer, PyTorch
#   2. the build: the carried binaries if every one starts here (no missing
#      library, --help exits 0), else a build here from the carried
#      dependencies (.gpu_carry/deps)
#   3. the carried CPU tests: parity with PyTorch, the comparison tolerances,
#      the staged copies (fixtures found from this tree)
#   4. the CUDA suite, on fresh random inputs (Catch's --rng-seed time; the
#      seed is printed so that a failure can be replayed)
#   5. compute-sanitizer memcheck, then racecheck, on the small convolutions,
#      the reductions and the unaligned-array kernels
#   6. bench_kernels --quick (each record names the algorithm and math that ran)
#   7. bench_pix2pix: FP32 at batch 1, 4, 16, and with --tf32 at batch 1
#   8. the same step in PyTorch (TF32 off and on) and the speed-ups at equal precision
#   9. train_pix2pix, 200 iterations on the carried facades
#  10. if time is left: batch-16 convolutions against cuDNN, the step on cuDNN
#
# $OUT receives gpu_check.log and results.tar.gz (every JSON, the training log
# and preview). The exit status is 0 only if every step that ran passed.
# --rehearse runs on a machine without a GPU: it checks that the carried
# binaries start from this tree, that the carried CPU tests pass, that a
# build from the carried dependencies would configure, that every file the
# GPU steps read is here and that the time budget adds up, then says plainly
# that no GPU was used.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

rehearse=0
case "${1:-}" in
  --rehearse) rehearse=1 ;;
  "") ;;
  -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT/results"
exec > >(tee "$OUT/gpu_check.log") 2>&1
readonly carry=.gpu_carry
readonly budget=470  # seconds for everything below; the machine's start and the copies come on top
started=$(date +%s)
status=0
failures=()

elapsed() { echo $(( $(date +%s) - started )); }
section() { echo; echo "=== $* (t+$(elapsed)s)"; }
failed() { status=1; failures+=("$1"); echo "FAILED: $1"; }

# The plan: step name, time limit in seconds, required (1) or only if time is left (0).
plan=(
  "setup 25 1"        # machine, libraries, probe (a build here takes longer and uses later steps' time)
  "cpu_tests 40 1"
  "cuda_tests 120 1"
  "memcheck 45 1"
  "racecheck 35 1"
  "bench_kernels 60 1"
  "bench_step 45 1"
  "torch 60 1"
  "train 35 1"
  "extra_convs 30 0"
  "extra_step 25 0"
)
limit_of() {  # the limit of step $1
  local entry name limit required
  for entry in "${plan[@]}"; do
    read -r name limit required <<< "$entry"
    if [ "$name" = "$1" ]; then
      echo "$limit"
      return
    fi
  done
  echo 30
}

# run_step NAME COMMAND...: runs COMMAND for at most the step's limit, never past the budget.
run_step() {
  local limit left rc
  limit=$(limit_of "$1")
  shift
  left=$(( budget - $(elapsed) ))
  if [ "$left" -lt 10 ]; then
    echo "skipped: the ${budget}s budget is spent"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout --kill-after=5 "$limit" "$@"
  rc=$?
  [ "$rc" -eq 124 ] && echo "timed out after ${limit}s"
  return "$rc"
}

# ---------------------------------------------------------------------------
section "plan and budget"
required=0 optional=0
for entry in "${plan[@]}"; do
  read -r name limit is_required <<< "$entry"
  printf '  %-14s %4ss  %s\n' "$name" "$limit" "$([ "$is_required" = 1 ] && echo required || echo "if time is left")"
  if [ "$is_required" = 1 ]; then required=$(( required + limit )); else optional=$(( optional + limit )); fi
done
echo "  required steps: ${required}s of the ${budget}s budget; optional: ${optional}s more if the required ones end early"
if [ "$required" -gt "$budget" ]; then
  failed "the required steps' limits (${required}s) exceed the budget (${budget}s)"
fi
echo "  give the run a limit of at least $(( budget + 60 ))s (the budget plus a minute for exit and copies)"

section "machine"
gpu=0
if command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
     --format=csv,noheader; then
  gpu=1
else
  echo "no GPU here (nvidia-smi is missing or found no device)"
fi
echo "kernel: $(uname -r), $(nproc) CPUs"
nvcc --version 2>/dev/null | tail -n 1 || echo "nvcc: not found"
g++ --version 2>/dev/null | head -n 1 || echo "g++: not found"
cmake --version 2>/dev/null | head -n 1 || echo "cmake: not found"
sanitizer=""
for candidate in "$(command -v compute-sanitizer 2>/dev/null)" /usr/local/cuda/bin/compute-sanitizer \
                 /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -n "$candidate" ] && [ -x "$candidate" ] && sanitizer=$candidate && break
done
echo "compute-sanitizer: ${sanitizer:-not found}"
have_torch=0
if python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>/dev/null; then
  have_torch=1
else
  echo "PyTorch: not importable"
fi
echo "commit: $(tr '\n' ' ' < "$carry/commit" 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
echo "tree: $PWD"
if [ "$rehearse" = 1 ] && [ "$gpu" = 1 ]; then
  echo "(a GPU is present, but --rehearse runs no GPU step)"
fi

section "libraries"
# cuDNN and cuBLAS may come with the CUDA toolkit or as pip's nvidia-* wheels;
# the carried libgomp is searched last.
python_lib() {
  python3 -c "import importlib, os; m = importlib.import_module('$1'); print(os.path.join(list(m.__path__)[0], 'lib'))" \
    2>/dev/null
}
for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib "$(python_lib nvidia.cudnn)" "$(python_lib nvidia.cublas)" \
           "$(python_lib nvidia.cu13)"; do
  [ -n "$dir" ] && [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
[ -d "$carry/lib" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$PWD/$carry/lib"
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

section "build"
readonly programs=(pixgrad_tests pixgrad_cuda_tests train_pix2pix pix2pix_translate bench_pix2pix bench_kernels)
# probe DIR: every program is there, links, and answers --help with status 0.
probe() {
  local dir=$1 program missing ok=0
  for program in "${programs[@]}"; do
    if [ ! -x "$dir/$program" ]; then
      echo "  $program: missing"; ok=1; continue
    fi
    missing=$(ldd "$dir/$program" 2>&1 | grep "not found")
    if [ -n "$missing" ]; then
      echo "  $program: $(echo "$missing" | tr -s ' \t\n' ' ')"; ok=1; continue
    fi
    if ! "$dir/$program" --help > /dev/null 2>&1; then
      echo "  $program: --help exited with status $?"; ok=1; continue
    fi
    echo "  $program: starts"
  done
  return $ok
}

# The cuDNN that pip installed, for a build here.
cudnn_arguments=()
if [ -n "$(python_lib nvidia.cudnn)" ]; then
  cudnn_root="$(dirname "$(python_lib nvidia.cudnn)")"
  [ -f "$cudnn_root/include/cudnn.h" ] && cudnn_arguments+=("-DCUDNN_INCLUDE_DIR=$cudnn_root/include")
  for library in "$cudnn_root"/lib/libcudnn.so*; do
    [ -e "$library" ] && cudnn_arguments+=("-DCUDNN_LIBRARY=$library") && break
  done
fi
generator=(-G Ninja)
command -v ninja > /dev/null || generator=(-G "Unix Makefiles")
# configure_here DIR [extra cmake arguments]: configures a CUDA build with the carried dependencies.
configure_here() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPIXGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_PREFIX_PATH="$PWD/$carry/deps" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "${cudnn_arguments[@]}" "$@"
}

bin=""
if probe "$carry/bin"; then
  bin=$carry/bin
  echo "using the carried build ($carry/bin)"
elif [ "$rehearse" = 1 ]; then
  failed "the carried binaries do not start from this tree"
else
  echo "the carried build does not start here: building here with the carried dependencies"
  # The build uses the time of the steps after it; they are cut short in turn.
  if configure_here build-gpu && timeout 300 cmake --build build-gpu -j"$(nproc)"; then
    mkdir -p build-gpu/bin
    cp build-gpu/tests/pixgrad_tests build-gpu/tests/pixgrad_cuda_tests build-gpu/apps/train_pix2pix \
       build-gpu/apps/pix2pix_translate build-gpu/apps/bench_pix2pix build-gpu/apps/bench_kernels build-gpu/bin/
    probe build-gpu/bin && bin=build-gpu/bin
  fi
  if [ -z "$bin" ]; then
    failed "no runnable build: the carried one does not start and building here failed"
    echo "gpu_check: stopping; $(elapsed)s"
    exit 1
  fi
fi

if [ "$rehearse" = 1 ]; then
  section "rehearsal: a build from the carried dependencies alone would configure"
  # System prefixes are ignored, as on a machine without these packages.
  rehearsal_build=$(mktemp -d /tmp/pixgrad-fallback-configure.XXXXXX)
  if configure_here "$rehearsal_build" "-DCMAKE_IGNORE_PREFIX_PATH=/usr;/usr/local" > "$rehearsal_build.log" 2>&1; then
    grep -E "^(Catch2|CLI11|nlohmann_json)_DIR|^STB_INCLUDE_DIR" "$rehearsal_build/CMakeCache.txt" | sed 's/^/  /'
    if grep -E "^(Catch2|CLI11|nlohmann_json)_DIR|^STB_INCLUDE_DIR" "$rehearsal_build/CMakeCache.txt" |
         grep -v "$carry/deps" > /dev/null; then
      failed "the fallback configure found a dependency outside $carry/deps"
    else
      echo "  every header-only dependency comes from $carry/deps"
    fi
  else
    tail -n 20 "$rehearsal_build.log"
    failed "a build from the carried dependencies does not configure"
  fi
  rm -rf "$rehearsal_build" "$rehearsal_build.log"
fi

section "carried CPU tests: parity with PyTorch, comparison tolerances, staged copies"
# Run from the tree's root: the tests find tests/fixtures from here.
run_step cpu_tests env OMP_NUM_THREADS="$(nproc)" "$bin/pixgrad_tests" "[parity],[compare],[staging]" || failed "CPU tests"

section "files the GPU steps read"
for needed in "$carry/data/facades/train" "$carry/data/facades/test" tests/fixtures/paper.safetensors \
              tests/fixtures/chainer.safetensors tests/fixtures/ops.safetensors tools/bench_torch_pix2pix.py; do
  if [ -e "$needed" ]; then
    echo "  found $needed"
  else
    failed "missing $needed"
  fi
done
train_images=$(ls "$carry/data/facades/train" 2>/dev/null | wc -l)
test_images=$(ls "$carry/data/facades/test" 2>/dev/null | wc -l)
echo "  facades slice: $train_images train, $test_images test pairs"
[ "$train_images" -ge 10 ] && [ "$test_images" -ge 3 ] || failed "the facades slice is too small"

section "CUDA tests"
cuda_tests_output=$(mktemp)
run_step cuda_tests "$bin/pixgrad_cuda_tests" --rng-seed time --durations yes | tee "$cuda_tests_output"
cuda_status=${PIPESTATUS[0]}
if [ "$rehearse" = 1 ]; then
  # Without a GPU the suite must say so and exit 77 (CTest's "skipped").
  if [ "$cuda_status" -eq 77 ] && grep -q "SKIPPED: CUDA tests need a GPU" "$cuda_tests_output"; then
    echo "the CUDA suite starts and reports that no GPU is usable, as it must here"
  else
    failed "the CUDA suite did not report a missing GPU (status $cuda_status)"
  fi
elif [ "$cuda_status" -ne 0 ]; then
  failed "CUDA tests (status $cuda_status)"
fi
rm -f "$cuda_tests_output"

if [ "$rehearse" = 1 ]; then
  section "rehearsal: the programs the GPU steps run, on the CPU"
  rehearsal_run=$(mktemp -d /tmp/pixgrad-rehearsal-run.XXXXXX)
  run_step bench_step "$bin/bench_pix2pix" --device cpu --presets paper --batch-sizes 1 --iterations 1 --warmup 0 \
    --json "$OUT/results/bench_pix2pix_cpu.json" || failed "bench_pix2pix on the CPU"
  run_step train "$bin/train_pix2pix" --dataset "$carry/data/facades" --direction BtoA --device cpu \
    --output "$rehearsal_run/train" --max-iterations 2 --log-interval 1 --snapshot-interval 2 --preview-count 1 \
    || failed "train_pix2pix on the carried facades"
  [ -f "$rehearsal_run/train/checkpoint.safetensors" ] || failed "train_pix2pix wrote no checkpoint"
  run_step train "$bin/pix2pix_translate" --checkpoint "$rehearsal_run/train/checkpoint.safetensors" \
    --input "$carry/data/facades/test" --output "$rehearsal_run/translated" --device cpu \
    || failed "pix2pix_translate"
  "$bin/bench_kernels" --help > /dev/null || failed "bench_kernels --help"
  [ -n "$sanitizer" ] || echo "note: compute-sanitizer is not here; on the GPU machine its steps are skipped if absent"
  [ "$have_torch" = 1 ] || echo "note: PyTorch is not importable here; on the GPU machine its step is skipped if absent"
  rm -rf "$rehearsal_run"
  section "rehearsal done: $(elapsed)s"
  if [ "$status" -eq 0 ]; then
    echo "REHEARSAL PASSED: the carried build starts from $PWD, its CPU tests pass, every file the GPU steps"
    echo "need is here and the budget adds up. NO GPU WAS USED: no CUDA test ran and no GPU figure was produced."
  else
    echo "REHEARSAL FAILED: ${failures[*]}"
  fi
  exit $status
fi

[ "$gpu" = 1 ] || failed "no GPU: the GPU steps below will fail"

section "compute-sanitizer"
# Small problems only: the sanitizer slows kernels down by one or two orders of magnitude.
sanitized_tests="[small],[reduction],[unaligned]"
if [ -z "$sanitizer" ]; then
  echo "skipped: compute-sanitizer not found"
else
  echo "-- memcheck on $sanitized_tests"
  run_step memcheck "$sanitizer" --tool memcheck --error-exitcode 86 --print-limit 20 \
    "$bin/pixgrad_cuda_tests" "$sanitized_tests" || failed "memcheck"
  echo "-- racecheck on [small],[reduction]"
  run_step racecheck "$sanitizer" --tool racecheck --error-exitcode 86 --print-limit 20 \
    "$bin/pixgrad_cuda_tests" "[small],[reduction]" || failed "racecheck"
fi

section "kernel benchmark (quick: batch 1, every implementation, FP32)"
run_step bench_kernels "$bin/bench_kernels" --quick --json "$OUT/results/bench_kernels.json" || failed "bench_kernels"

section "training-step benchmark: FP32 at batch 1, 4, 16; TF32 allowed at batch 1"
run_step bench_step "$bin/bench_pix2pix" --device cuda --iterations 20 --warmup 5 --batch-sizes 1,4,16 \
  --json "$OUT/results/bench_pix2pix.json" || failed "bench_pix2pix"
run_step bench_step "$bin/bench_pix2pix" --device cuda --tf32 --presets paper --iterations 20 --warmup 5 \
  --batch-sizes 1 --json "$OUT/results/bench_pix2pix_tf32.json" || failed "bench_pix2pix --tf32"

section "PyTorch: the same step, TF32 off (plain FP32) and on (PyTorch's cuDNN default)"
if [ "$have_torch" = 1 ]; then
  run_step torch env PYTHONUNBUFFERED=1 python3 tools/bench_torch_pix2pix.py --device cuda --batch-sizes 1,4 \
    --modes eager,cuda_graph --iterations 20 --warmup 5 --tf32 off --json "$OUT/results/bench_torch.json" \
    || failed "PyTorch step (TF32 off)"
  run_step torch env PYTHONUNBUFFERED=1 python3 tools/bench_torch_pix2pix.py --device cuda --batch-sizes 1 \
    --modes eager --iterations 20 --warmup 5 --tf32 on --json "$OUT/results/bench_torch_tf32.json" \
    || failed "PyTorch step (TF32 on)"
  python3 - "$OUT/results" <<'PY' || failed "speed-up summary"
import json, os, sys
folder = sys.argv[1]
def load(name):
    path = os.path.join(folder, name)
    return json.load(open(path)) if os.path.exists(path) else []
# pixgrad FP32 against PyTorch with TF32 off; pixgrad --tf32 against PyTorch's default.
for ours_file, theirs_file, label in (("bench_pix2pix.json", "bench_torch.json", "FP32"),
                                      ("bench_pix2pix_tf32.json", "bench_torch_tf32.json", "TF32 allowed")):
    ours = {r["batch"]: r for r in load(ours_file) if r["preset"] == "paper"}
    for r in (r for r in load(theirs_file) if r.get("status") == "ok" and r["batch"] in ours):
        mine = ours[r["batch"]]["seconds_per_iteration"]
        speedup = r["seconds_per_iteration"] / mine
        line = (f"{label}: paper batch {r['batch']}: pixgrad {mine * 1e3:.2f} ms/iter, PyTorch {r['mode']} "
                f"{r['seconds_per_iteration'] * 1e3:.2f} ms/iter: pixgrad is {speedup:.2f}x as fast")
        if r["batch"] == 1 and r["mode"] == "eager":
            line += f" (goal >= 4x: {'met' if speedup >= 4 else 'not met'})"
        print(line)
PY
else
  echo "skipped: PyTorch is not importable"
fi

section "training: paper preset, 200 iterations on the carried facades"
train_run=$(mktemp -d /tmp/gpu_check_train.XXXXXX)
run_step train "$bin/train_pix2pix" --dataset "$carry/data/facades" --direction BtoA --device cuda \
  --output "$train_run/run" --max-iterations 200 --log-interval 50 --snapshot-interval 200 --preview-count 3 \
  || failed "train_pix2pix"
if [ -f "$train_run/run/log.jsonl" ]; then
  cp "$train_run/run/log.jsonl" "$OUT/results/training_log.jsonl"
  cp "$train_run/run/preview.png" "$OUT/results/" 2>/dev/null
  python3 - "$train_run/run/log.jsonl" <<'PY' || true
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if '"loss_G"' in line]
last = records[-1]
print(f"iterations/s over the last records: {1 / last['seconds_per_iteration']:.1f}  "
      f"(G {last['loss_G']:.3f}, L1 {last['loss_L1']:.4f}, D {last['loss_D']:.4f})")
PY
fi
rm -rf "$train_run"

section "if time is left: batch-16 convolutions, handwritten against cuDNN"
run_step extra_convs "$bin/bench_kernels" --device cuda --impls cudnn,handwritten --ops conv --batch-sizes 16 \
  --gpu-reps 15 --skip-gemm --json "$OUT/results/bench_kernels_b16.json"
echo "(status $?: informational)"

section "if time is left: the training step with cuDNN convolutions"
run_step extra_step "$bin/bench_pix2pix" --device cuda --conv-impl cudnn --presets paper --iterations 20 --warmup 5 \
  --batch-sizes 1,16 --json "$OUT/results/bench_pix2pix_cudnn.json"
echo "(status $?: informational)"

section "done"
tar -czf "$OUT/results.tar.gz" -C "$OUT" results && rm -rf "$OUT/results"
if [ "$status" -eq 0 ]; then
  echo "GPU CHECK PASSED in $(elapsed)s"
else
  echo "GPU CHECK FAILED in $(elapsed)s: ${failures[*]}"
fi
exit $status
