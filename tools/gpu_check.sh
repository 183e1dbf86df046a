#!/usr/bin/env bash
# The GPU check: everything pixgrad has to prove on a machine with an NVIDIA
# GPU (H100/H200, sm_90), in one run of under 8 minutes.
#
#   here:    bash tools/prepare_gpu_check.sh      (fills .gpu_carry/)
#            bash tools/gpu_check.sh --rehearse   (all of the below that needs no GPU)
#   there:   copy the tree with .gpu_carry/, then from the tree's root
#            OUT=<folder> bash tools/gpu_check.sh   (default OUT: /tmp/gpu_check_out)
#
# Steps, in order of importance; each has a time limit, and a step that would
# pass the overall budget is cut short or skipped, and says so:
#   setup        the machine (GPU, driver, toolkit, compute-sanitizer,
#                PyTorch); the build: the carried binaries if each one starts
#                here (no missing library, --help exits 0, CUDA compiled in)
#                and can use this GPU, else a build here from the carried
#                dependencies (.gpu_carry/deps)
#   cpu_tests    the carried CPU tests: parity with PyTorch, the comparison
#                tolerances, the staged copies (fixtures found from this tree)
#   cuda_tests   the CUDA suite on fresh random inputs (Catch's --rng-seed
#                time; the seed is printed so that a failure can be replayed)
#   nccl         the NCCL communicator in a world of one rank (MPI started
#                without mpirun): CUDA tensors all-reduced through NCCL;
#                skipped, and said so, when the build has no NCCL
#   memcheck     compute-sanitizer memcheck, then racecheck, on the small
#   racecheck      convolutions (our kernels), reductions, unaligned arrays
#   bench_kernels  bench_kernels --quick on the GPU (each record names the
#                algorithm and math that ran)
#   step_fp32, step_tf32    bench_pix2pix, paper preset: FP32 at batch 1, 4,
#                16; with --tf32 at batch 1 (our kernels on tensor cores);
#                each also replayed as one CUDA graph (--cuda-graph)
#   torch_fp32, torch_tf32  the same step in PyTorch with TF32 off and on;
#                then the speed-ups at equal precision
#   train        train_pix2pix, 200 iterations on the carried facades
#   extra_*      if time is left: the step at batch 1 with batch norms
#                making their own statistics passes (--moments off), the
#                chainer preset's step, batch-16 convolutions against cuDNN,
#                the step on cuDNN, the step in 3xTF32, the convolutions in
#                TF32 against cuDNN's, the step in bf16 and PyTorch's
#                under bf16 autocast, with their speed-up
#
# $OUT receives gpu_check.log and results.tar.gz (every JSON, the training
# log and preview; each benchmark rewrites its JSON as it goes, so a step cut
# short keeps what it measured). The last line says PASSED (exit 0: every
# required step ran and passed), FAILED (exit 1: a step failed) or
# INCOMPLETE (exit 3: nothing failed, but a required step was skipped, cut
# short or could not run its tool).
#
# --rehearse, on a machine without a GPU: checks that the carried binaries
# start from this tree, that a build from the carried dependencies alone
# would configure, that the carried CPU tests pass, that every test filter
# matches tests, that every file the GPU steps read is here, that every GPU
# command line is accepted, that the summaries run and that the budget adds
# up; then says plainly that no GPU was used.
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
if ! mkdir -p "$OUT" || ! rm -rf "$OUT/results" || ! mkdir "$OUT/results" || ! touch "$OUT/gpu_check.log"; then
  echo "gpu_check: cannot write the output folder '$OUT' (set OUT to a writable folder)" >&2
  exit 2
fi
exec > >(tee "$OUT/gpu_check.log") 2>&1
readonly tee_pid=$!
readonly carry=.gpu_carry
readonly budget=440        # seconds for everything; the script ends well inside 8 minutes
readonly setup_reserve=25  # machine, libraries and probe, before the first step
started=$(date +%s)
failures=()
incomplete=()

elapsed() { echo $(( $(date +%s) - started )); }
section() { echo; echo "=== $* (t+$(elapsed)s)"; }
failed() { failures+=("$1"); echo "FAILED: $1"; }
unfinished() { incomplete+=("$1"); echo "INCOMPLETE: $1"; }

# Prints the verdict, lets tee write the log's last line, and exits.
finish() {
  local code=0 verdict
  if [ "${#failures[@]}" -gt 0 ]; then
    code=1
    verdict="FAILED: $(printf '%s; ' "${failures[@]}")"
  elif [ "${#incomplete[@]}" -gt 0 ]; then
    code=3
    verdict="INCOMPLETE: $(printf '%s; ' "${incomplete[@]}")"
  else
    verdict="PASSED"
  fi
  if [ "$rehearse" = 1 ]; then
    echo "REHEARSAL ${verdict%; } in $(elapsed)s."
    echo "NO GPU WAS USED: no CUDA test ran and no GPU figure was produced."
  else
    echo "GPU CHECK ${verdict%; } in $(elapsed)s"
  fi
  exec 1>&- 2>&-
  wait "$tee_pid" 2> /dev/null
  exit "$code"
}

# The plan: step name, time limit in seconds, required (1) or only if time is left (0).
plan=(
  "cpu_tests 30 1"
  "cuda_tests 110 1"
  "nccl 10 1"
  "memcheck 40 1"
  "racecheck 30 1"
  "bench_kernels 50 1"
  "step_fp32 35 1"
  "step_tf32 15 1"
  "torch_fp32 45 1"
  "torch_tf32 20 1"
  "train 30 1"
  "extra_no_moments 15 0"
  "extra_chainer 15 0"
  "extra_convs 30 0"
  "extra_step 25 0"
  "extra_3xtf32 15 0"
  "extra_tf32_convs 30 0"
  "extra_bf16 15 0"
  "extra_torch_bf16 25 0"
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
  echo "gpu_check: no step '$1' in the plan" >&2
  echo 0
}

# run_step NAME COMMAND...: runs COMMAND for at most the step's limit, never
# past the budget. Returns its status; 124 when cut short, 125 when skipped.
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
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "cut short after ${limit}s"
  return "$rc"
}

# judge NAME STATUS: a required step's outcome (0 passed; 124, 125, 137 incomplete; else failed).
judge() {
  case "$2" in
    0) ;;
    124|137) unfinished "$1: cut short at its time limit" ;;
    125) unfinished "$1: skipped, the budget was spent" ;;
    *) failed "$1 (status $2)" ;;
  esac
}

# ---------------------------------------------------------------------------
section "plan and budget"
required=$setup_reserve optional=0
printf '  %-14s %4ss  %s\n' setup "$setup_reserve" "required (reserved)"
for entry in "${plan[@]}"; do
  read -r name limit is_required <<< "$entry"
  printf '  %-14s %4ss  %s\n' "$name" "$limit" "$([ "$is_required" = 1 ] && echo required || echo "if time is left")"
  if [ "$is_required" = 1 ]; then required=$(( required + limit )); else optional=$(( optional + limit )); fi
done
echo "  required: ${required}s of the ${budget}s budget; optional: up to ${optional}s more, within the budget"
[ "$required" -le "$budget" ] || failed "the required steps' limits (${required}s) exceed the budget (${budget}s)"
echo "  the script ends within $(( budget + 30 ))s; give the run a limit of 540s or more"

if [ ! -f "$carry/commit" ]; then
  failed "no $carry here: run tools/prepare_gpu_check.sh on the build machine and copy $carry with the tree"
  finish
fi

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
echo "carried build: $(tr '\n' ' ' < "$carry/commit")"
echo "tree: $PWD"
[ "$rehearse" = 1 ] && [ "$gpu" = 1 ] && echo "(a GPU is present, but --rehearse runs no GPU step)"

section "libraries"
# cuDNN and cuBLAS may come with the CUDA toolkit or as pip's nvidia-* wheels;
# the carried libraries are searched last.
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
# probe DIR: every program is there, links, answers --help with status 0, and
# the CUDA suite holds tests (a build without CUDA has none).
probe() {
  local dir=$1 program missing rc ok=0 listed
  for program in "${programs[@]}"; do
    if [ ! -x "$dir/$program" ]; then
      echo "  $program: missing"; ok=1; continue
    fi
    missing=$(ldd "$dir/$program" 2>&1 | grep "not found")
    if [ -n "$missing" ]; then
      echo "  $program: $(echo "$missing" | tr -s ' \t\n' ' ')"; ok=1; continue
    fi
    "$dir/$program" --help > /dev/null 2> "$OUT/probe.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
      echo "  $program: --help exited with status $rc: $(head -c 300 "$OUT/probe.err" | tr '\n' ' ')"; ok=1; continue
    fi
    echo "  $program: starts"
  done
  rm -f "$OUT/probe.err"
  if [ "$ok" = 0 ]; then
    listed=$("$dir/pixgrad_cuda_tests" --list-test-names-only 2>/dev/null | grep -c .)
    if [ "${listed:-0}" -eq 0 ]; then
      echo "  pixgrad_cuda_tests: holds no test: this build has no CUDA"; ok=1
    else
      echo "  pixgrad_cuda_tests: $listed CUDA tests"
    fi
  fi
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
# configure_here DIR [cmake arguments]: configures a CUDA build with the carried dependencies.
configure_here() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPIXGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_PREFIX_PATH="$PWD/$carry/deps" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "${cudnn_arguments[@]}" "$@"
}
# build_here: a build in build-gpu/ (its time comes out of the later steps'); sets bin.
build_here() {
  if configure_here build-gpu && timeout 300 cmake --build build-gpu -j"$(nproc)"; then
    mkdir -p build-gpu/bin
    cp build-gpu/tests/pixgrad_tests build-gpu/tests/pixgrad_cuda_tests build-gpu/apps/train_pix2pix \
       build-gpu/apps/pix2pix_translate build-gpu/apps/bench_pix2pix build-gpu/apps/bench_kernels build-gpu/bin/
    probe build-gpu/bin && bin=build-gpu/bin
  fi
}

bin=""
if probe "$carry/bin"; then
  bin=$carry/bin
  echo "the carried build starts here"
elif [ "$rehearse" = 1 ]; then
  failed "the carried binaries do not start from this tree"
  finish
else
  echo "the carried build cannot be used here: building here with the carried dependencies"
  build_here
fi
if [ "$rehearse" = 0 ] && [ "$gpu" = 1 ] && [ "$bin" = "$carry/bin" ]; then
  # The carried CUDA runtime must work with this machine's driver: a quick
  # CUDA test says "SKIPPED" (77) if it cannot use the GPU.
  "$bin/pixgrad_cuda_tests" "[errors]" > "$OUT/device_probe.log" 2>&1
  rc=$?
  if [ "$rc" -eq 77 ]; then
    echo "the carried binaries cannot use this GPU: $(grep -m1 SKIPPED "$OUT/device_probe.log")"
    echo "building here, with this machine's toolkit"
    bin=""
    build_here
  else
    echo "the carried binaries use this GPU (device probe status $rc)"
  fi
  rm -f "$OUT/device_probe.log"
fi
if [ -z "$bin" ]; then
  failed "no usable build: the carried one cannot be used here and building here failed"
  finish
fi
echo "using $bin"

if [ "$rehearse" = 1 ]; then
  section "rehearsal: a build from the carried dependencies alone would configure"
  if command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
    # System prefixes are ignored, as on a machine without these packages.
    scratch=$(mktemp -d /tmp/pixgrad-fallback-configure.XXXXXX)
    if configure_here "$scratch" "-DCMAKE_IGNORE_PREFIX_PATH=/usr;/usr/local" > "$scratch.log" 2>&1; then
      found=$(grep -E "^(Catch2|CLI11|nlohmann_json)_DIR|^(STB|TURBOJPEG)_INCLUDE_DIR|^TURBOJPEG_LIBRARY" \
        "$scratch/CMakeCache.txt")
      echo "$found" | sed 's/^/  /'
      if [ "$(echo "$found" | grep -c "$carry/deps")" -ne 6 ]; then
        failed "the fallback configure took a dependency from outside $carry/deps"
      else
        echo "  every header-only dependency comes from $carry/deps"
      fi
    else
      tail -n 20 "$scratch.log"
      failed "a build from the carried dependencies does not configure"
    fi
    rm -rf "$scratch" "$scratch.log"
  else
    unfinished "no CUDA toolkit here: the fallback configure was not tried"
  fi
fi

# check_filter BINARY SPEC: the Catch test spec matches at least one test.
check_filter() {
  local count
  count=$("$1" "$2" --list-test-names-only 2>/dev/null | grep -c .)
  if [ "${count:-0}" -eq 0 ]; then
    failed "no test in $(basename "$1") matches '$2'"
    return 1
  fi
  echo "  '$2' selects $count test(s) of $(basename "$1")"
}
readonly cpu_filter="[parity],[compare],[staging]"
readonly memcheck_filter="[small],[reduction],[unaligned]"
readonly racecheck_filter="[small],[reduction]"
readonly nccl_filter="[nccl]"
# has_nccl BINARY: the CUDA suite holds the NCCL test that needs a GPU (only
# a build with NCCL compiles it).
has_nccl() { [ "$("$1" "[nccl_gpu]" --list-test-names-only 2>/dev/null | grep -c .)" -gt 0 ]; }

section "test filters"
check_filter "$bin/pixgrad_tests" "$cpu_filter"
check_filter "$bin/pixgrad_cuda_tests" "$memcheck_filter"
check_filter "$bin/pixgrad_cuda_tests" "$racecheck_filter"
# The CUDA suite's NCCL tests exist only in a build with NCCL (the checks
# made before NCCL is involved are in the CPU suite, which CI runs).
if has_nccl "$bin/pixgrad_cuda_tests"; then check_filter "$bin/pixgrad_cuda_tests" "$nccl_filter"; fi

section "carried CPU tests: parity with PyTorch, comparison tolerances, staged copies"
# Run from the tree's root: the tests find tests/fixtures from here.
run_step cpu_tests env OMP_NUM_THREADS="$(nproc)" "$bin/pixgrad_tests" "$cpu_filter"
judge "CPU tests" $?

section "files the GPU steps read"
for needed in "$carry/data/facades/train" "$carry/data/facades/test" tests/fixtures/paper.safetensors \
              tests/fixtures/chainer.safetensors tests/fixtures/ops.safetensors tools/bench_torch_pix2pix.py \
              tools/gpu_check_summary.py; do
  if [ -e "$needed" ]; then echo "  found $needed"; else failed "missing $needed"; fi
done
train_images=$(ls "$carry/data/facades/train" 2>/dev/null | wc -l)
test_images=$(ls "$carry/data/facades/test" 2>/dev/null | wc -l)
echo "  facades slice: $train_images train, $test_images test pairs"
[ "$train_images" -ge 10 ] && [ "$test_images" -ge 3 ] || failed "the facades slice is too small"

# The GPU steps' command lines, shared by the run and the rehearsal.
kernels_command=("$bin/bench_kernels" --device cuda --quick --json "$OUT/results/bench_kernels.json")
step_fp32_command=("$bin/bench_pix2pix" --device cuda --presets paper --iterations 20 --warmup 5 --cuda-graph
                   --batch-sizes 1,4,16 --json "$OUT/results/bench_pix2pix.json")
step_tf32_command=("$bin/bench_pix2pix" --device cuda --tf32 --presets paper --iterations 20 --warmup 5
                   --cuda-graph --batch-sizes 1 --json "$OUT/results/bench_pix2pix_tf32.json")
torch_fp32_command=(env PYTHONUNBUFFERED=1 python3 tools/bench_torch_pix2pix.py --device cuda --batch-sizes 1,4
                    --modes eager,cuda_graph --iterations 20 --warmup 5 --tf32 off
                    --json "$OUT/results/bench_torch.json")
torch_tf32_command=(env PYTHONUNBUFFERED=1 python3 tools/bench_torch_pix2pix.py --device cuda --batch-sizes 1
                    --modes eager --iterations 20 --warmup 5 --tf32 on --json "$OUT/results/bench_torch_tf32.json")
torch_bf16_command=(env PYTHONUNBUFFERED=1 python3 tools/bench_torch_pix2pix.py --device cuda --batch-sizes 1
                    --modes autocast_bf16 --iterations 20 --warmup 5 --json "$OUT/results/bench_torch_bf16.json")
train_folder=$(mktemp -d /tmp/gpu_check_train.XXXXXX)
train_command=("$bin/train_pix2pix" --dataset "$carry/data/facades" --direction BtoA --device cuda
               --output "$train_folder/run" --max-iterations 200 --log-interval 50 --snapshot-interval 200
               --preview-count 3)
chainer_command=("$bin/bench_pix2pix" --device cuda --presets chainer --iterations 10 --warmup 3 --batch-sizes 1
                 --json "$OUT/results/bench_pix2pix_chainer.json")
convs_command=("$bin/bench_kernels" --device cuda --impls cudnn,handwritten --ops conv --batch-sizes 16
               --gpu-reps 15 --skip-gemm --json "$OUT/results/bench_kernels_b16.json")
step_3xtf32_command=("$bin/bench_pix2pix" --device cuda --precision 3xtf32 --presets paper --iterations 20
                     --warmup 5 --batch-sizes 1 --json "$OUT/results/bench_pix2pix_3xtf32.json")
step_bf16_command=("$bin/bench_pix2pix" --device cuda --precision bf16 --presets paper --iterations 20
                   --warmup 5 --batch-sizes 1 --json "$OUT/results/bench_pix2pix_bf16.json")
tf32_convs_command=("$bin/bench_kernels" --device cuda --precision tf32 --impls cudnn,handwritten --ops conv
                    --quick --skip-gemm --json "$OUT/results/bench_kernels_tf32.json")
cudnn_step_command=("$bin/bench_pix2pix" --device cuda --conv-impl cudnn --presets paper --iterations 20
                    --warmup 5 --batch-sizes 1,16 --json "$OUT/results/bench_pix2pix_cudnn.json")
no_moments_command=("$bin/bench_pix2pix" --device cuda --moments off --presets paper --iterations 20 --warmup 5
                    --cuda-graph --batch-sizes 1 --json "$OUT/results/bench_pix2pix_no_moments.json")

if [ "$rehearse" = 1 ]; then
  section "CUDA tests"
  "$bin/pixgrad_cuda_tests" --rng-seed time --durations yes > "$OUT/cuda_tests.log" 2>&1
  rc=$?
  cat "$OUT/cuda_tests.log"
  if [ "$rc" -eq 77 ] && grep -q "SKIPPED: CUDA tests need a GPU" "$OUT/cuda_tests.log"; then
    echo "the CUDA suite starts and reports that no GPU is usable, as it must here"
  else
    failed "the CUDA suite did not report a missing GPU (status $rc)"
  fi
  rm -f "$OUT/cuda_tests.log"

  section "rehearsal: the GPU command lines are accepted"
  # Each GPU program parses its arguments first and then stops at the missing
  # GPU with a one-line error; a rejected argument would fail differently.
  for command_name in kernels_command step_fp32_command step_tf32_command train_command chainer_command \
                      convs_command cudnn_step_command step_3xtf32_command tf32_convs_command step_bf16_command \
                      no_moments_command; do
    declare -n command_line=$command_name
    output=$("${command_line[@]}" 2>&1)
    if echo "$output" | grep -q -i "no usable GPU\|CUDA driver version is insufficient\|cannot use cuda"; then
      echo "  $command_name: accepted (stops at the missing GPU)"
    else
      failed "$command_name: $(echo "$output" | tail -n 2 | tr '\n' ' ')"
    fi
    unset -n command_line
  done
  rm -rf "${train_folder:?}/run"
  for command_name in torch_fp32_command torch_tf32_command torch_bf16_command; do
    declare -n command_line=$command_name
    if output=$("${command_line[@]}" --dry-run 2>&1); then
      echo "  $command_name: accepted ($output)"
    else
      failed "$command_name: $(echo "$output" | tail -n 1)"
    fi
    unset -n command_line
  done

  section "rehearsal: the programs the GPU steps run, on the CPU"
  run_step step_fp32 "$bin/bench_pix2pix" --device cpu --presets paper --batch-sizes 1 --iterations 1 --warmup 0 \
    --cuda-graph --json "$OUT/results/bench_pix2pix.json"
  judge "bench_pix2pix on the CPU" $?
  # A small U-Net at 64x64: the same code path in a second instead of half a minute on two busy cores.
  run_step train "$bin/train_pix2pix" --dataset "$carry/data/facades" --direction BtoA --device cpu \
    --output "$train_folder/run" --max-iterations 2 --log-interval 1 --snapshot-interval 2 --preview-count 1 \
    --load-size 64 --crop-size 64 --num-downs 6 --ngf 8 --ndf 8
  judge "train_pix2pix on the carried facades" $?
  [ -f "$train_folder/run/checkpoint.safetensors" ] || failed "train_pix2pix wrote no checkpoint"
  run_step train "$bin/pix2pix_translate" --checkpoint "$train_folder/run/checkpoint.safetensors" \
    --input "$carry/data/facades/test" --aligned --output "$train_folder/translated" --device cpu
  judge "pix2pix_translate" $?

  section "rehearsal: the summaries"
  # pixgrad's CPU figures stand in for both sides here: only the code path is checked.
  cp "$OUT/results/bench_pix2pix.json" "$OUT/results/bench_pix2pix_bf16.json" 2>/dev/null &&
    python3 - "$OUT/results/bench_pix2pix.json" "$OUT/results" <<'PY'
import json, os, sys
records = json.load(open(sys.argv[1]))
for name, mode in (("bench_torch.json", "eager"), ("bench_torch_bf16.json", "autocast_bf16")):
    for r in records:
        r.update(mode=mode, status="ok")
    json.dump(records, open(os.path.join(sys.argv[2], name), "w"))
PY
  summary=$(python3 tools/gpu_check_summary.py speedups "$OUT/results" fp32 bf16) || failed "the speed-up summary"
  echo "$summary"
  # Each precision's pair, eager and replayed (--cuda-graph): four lines.
  [ "$(echo "$summary" | grep -c "as fast")" -eq 4 ] || failed "the speed-up summary compared other than 4 pairs"
  echo "$summary" | grep -q "with --cuda-graph" || failed "the speed-up summary left out the --cuda-graph step"
  python3 tools/gpu_check_summary.py training "$train_folder/run/log.jsonl" || failed "the training summary"
  rm -rf "$train_folder"
  [ -n "$sanitizer" ] || echo "note: compute-sanitizer is not here; on the GPU machine, its steps need it"
  [ "$have_torch" = 1 ] || echo "note: PyTorch is not importable here; on the GPU machine, its steps need it"
  has_nccl "$bin/pixgrad_cuda_tests" || echo "note: this build has no NCCL; on the GPU machine, the nccl step is skipped"
  finish
fi

[ "$gpu" = 1 ] || failed "no GPU: nvidia-smi found none, the GPU steps below will fail"

section "CUDA tests"
run_step cuda_tests "$bin/pixgrad_cuda_tests" --rng-seed time --durations yes
judge "CUDA tests" $?

section "NCCL: a world of one rank all-reduces CUDA tensors"
if has_nccl "$bin/pixgrad_cuda_tests"; then
  run_step nccl "$bin/pixgrad_cuda_tests" "$nccl_filter" --durations yes
  judge "NCCL test" $?
else
  echo "skipped: this build has no NCCL (it needs MPI and NCCL when it is configured)"
fi

section "compute-sanitizer (our convolution kernels only: cuDNN's timed search would take the time)"
# sanitize NAME TOOL FILTER: 86 is the sanitizer's own finding; a tool that
# cannot run (an unsupported device, say) or runs out of time gives no verdict.
sanitize() {
  local name=$1 tool=$2 filter=$3 rc
  echo "-- $tool on $filter"
  run_step "$name" env PIXGRAD_TEST_CONV_IMPLS=handwritten "$sanitizer" --tool "$tool" --error-exitcode 86 \
    --print-limit 20 "$bin/pixgrad_cuda_tests" "$filter" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    echo "$tool: no findings"
  elif [ "$rc" -eq 86 ]; then
    failed "$tool found errors (see the log above)"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] || [ "$rc" -eq 125 ]; then
    unfinished "$tool: no verdict, cut short or skipped (status $rc)"
  elif grep -q -E "Device not supported|Error: Target application|== ERROR: .*(internal|unsupported)" \
         "$OUT/$name.log"; then
    unfinished "$tool could not run on this machine (see the log above)"
  else
    failed "tests failed under $tool (status $rc)"
  fi
  rm -f "$OUT/$name.log"
}
if [ -z "$sanitizer" ]; then
  unfinished "memcheck and racecheck: compute-sanitizer not found"
else
  sanitize memcheck memcheck "$memcheck_filter"
  sanitize racecheck racecheck "$racecheck_filter"
fi

section "kernel benchmark (quick: batch 1, every implementation, FP32)"
run_step bench_kernels "${kernels_command[@]}"
judge "bench_kernels" $?

section "training-step benchmark: FP32 at batch 1, 4, 16; TF32 allowed at batch 1"
run_step step_fp32 "${step_fp32_command[@]}"
judge "bench_pix2pix" $?
run_step step_tf32 "${step_tf32_command[@]}"
judge "bench_pix2pix --tf32" $?

section "PyTorch: the same step, TF32 off (plain FP32) and on (PyTorch's cuDNN default)"
if [ "$have_torch" = 1 ]; then
  run_step torch_fp32 "${torch_fp32_command[@]}"
  judge "PyTorch step, TF32 off" $?
  run_step torch_tf32 "${torch_tf32_command[@]}"
  judge "PyTorch step, TF32 on" $?
  python3 tools/gpu_check_summary.py speedups "$OUT/results"
else
  unfinished "the PyTorch comparison: PyTorch is not importable"
fi

section "training: paper preset, 200 iterations on the carried facades"
run_step train "${train_command[@]}"
judge "train_pix2pix" $?
if [ -f "$train_folder/run/log.jsonl" ]; then
  cp "$train_folder/run/log.jsonl" "$OUT/results/training_log.jsonl"
  cp "$train_folder/run/preview.png" "$OUT/results/" 2>/dev/null
  python3 tools/gpu_check_summary.py training "$train_folder/run/log.jsonl" || failed "training losses"
fi
rm -rf "$train_folder"

section "if time is left: the step without moments, the chainer preset's step, batch-16 convolutions, the step on cuDNN (informational)"
run_step extra_no_moments "${no_moments_command[@]}"; echo "(status $?)"
run_step extra_chainer "${chainer_command[@]}"; echo "(status $?)"
run_step extra_convs "${convs_command[@]}"; echo "(status $?)"
run_step extra_step "${cudnn_step_command[@]}"; echo "(status $?)"
run_step extra_3xtf32 "${step_3xtf32_command[@]}"; echo "(status $?)"
run_step extra_tf32_convs "${tf32_convs_command[@]}"; echo "(status $?)"
run_step extra_bf16 "${step_bf16_command[@]}"; echo "(status $?)"
if [ "$have_torch" = 1 ]; then
  run_step extra_torch_bf16 "${torch_bf16_command[@]}"; echo "(status $?)"
  python3 tools/gpu_check_summary.py speedups "$OUT/results" bf16
fi

section "results"
if tar -czf "$OUT/results.tar.gz" -C "$OUT" results; then
  rm -rf "$OUT/results"
  echo "results.tar.gz: $(tar -tzf "$OUT/results.tar.gz" | grep -c -v '/$') files"
else
  failed "packing the results"
fi
finish
