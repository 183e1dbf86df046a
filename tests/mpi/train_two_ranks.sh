#!/usr/bin/env bash
# train_pix2pix as two ranks under mpirun, as a user runs it, on small
# facade crops: one output folder written by rank 0, a resume on two ranks,
# the refusal of a resume on another number of ranks, the two-rank
# checkpoint translating in a single process, fine-tuning across world
# sizes, a task the launcher started but MPI did not join, the refusal of
# ranks started unlike, a damaged image, SIGUSR1 to mpirun, and the two
# faults a run must survive with its last checkpoint intact: a rank that
# hangs (stopped with SIGSTOP) and a rank that dies (SIGKILL).
# Usage: train_two_ranks.sh BUILD_DIR MPIEXEC [MPIEXEC_FLAGS...]  (from the repository root)
set -euo pipefail
build=$(cd "$1" && pwd)
mpiexec=$2
shift 2
source "$(dirname "$0")/../facades.sh"
facades=$(cd "$facades" && pwd)
train=$build/apps/train_pix2pix
translate=$build/apps/pix2pix_translate
two_ranks=("$mpiexec" -np 2 "$@")

work=$(mktemp -d /tmp/pixgrad-two-ranks.XXXXXX)
trap 'kill -9 $(jobs -p) 2> /dev/null || true; rm -rf "$work"' EXIT
small=(--dataset "$facades" --direction BtoA --load-size 36 --crop-size 32 --ngf 8 --ndf 8 --num-downs 5
       --workers 1 --preview-count 2 --device cpu)

fail() { echo "FAILED: $*" >&2; exit 1; }
expect() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "'$1' does not say '$2'"; }; }
# exits_with STATUS LOG WHAT COMMAND...: COMMAND, its output in LOG, must end with STATUS.
exits_with() {
  local want=$1 log=$2 what=$3 status
  shift 3
  set +e
  "$@" > "$log" 2>&1
  status=$?
  set -e
  [ "$status" = "$want" ] || { cat "$log" >&2; fail "$what: status $status, not $want"; }
}

echo "== two ranks train; rank 0 writes"
"${two_ranks[@]}" "$train" "${small[@]}" --norm instance --max-iterations 4 --snapshot-interval 2 \
  --log-interval 2 --output "$work/run" > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "training"; }
expect "$work/train.log" "data parallel: 2 ranks (mpi) x batch 1"
expect "$work/train.log" "1 CPU thread(s) on rank 0"
expect "$work/train.log" "img/s"
expect "$work/train.log" "done after 4 iterations"
[ "$(grep -c "^pix2pix: preset" "$work/train.log")" = 1 ] || fail "the run's opening line is printed more than once"
for file in checkpoint.safetensors log.jsonl preview.png index.html options.json; do
  [ -f "$work/run/$file" ] || fail "no $file in the output folder"
done
[ "$(grep -c '"loss_G"' "$work/run/log.jsonl")" = 2 ] || fail "log.jsonl should hold 2 training records"
grep -q '"world_size": 2' "$work/run/options.json" || fail "options.json does not record 2 ranks"

echo "== resume on two ranks"
"${two_ranks[@]}" "$train" --resume "$work/run/checkpoint.safetensors" --max-iterations 6 \
  > "$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "resume"; }
expect "$work/resume.log" "resuming at iteration 4"
expect "$work/resume.log" "done after 6 iterations"

echo "== resume in one process is refused"
if "$train" --resume "$work/run/checkpoint.safetensors" --max-iterations 8 > "$work/one.log" 2>&1; then
  fail "a two-rank checkpoint resumed in one process"
fi
expect "$work/one.log" "trained on 2 rank(s), this run has 1"

echo "== the two-rank checkpoint translates in one process"
"$translate" --checkpoint "$work/run/checkpoint.safetensors" --input "$facades/test" --aligned --num-test 2 \
  --output "$work/translated" --device cpu > "$work/translate.log" 2>&1 || { cat "$work/translate.log"; fail "translate"; }
[ "$(find "$work/translated" -maxdepth 1 -name '*.png' | wc -l)" = 2 ] || fail "translate wrote no 2 images"

echo "== fine-tuning across world sizes: one process from the two-rank weights, two ranks from one process's"
"$train" "${small[@]}" --norm instance --init-from "$work/run/checkpoint.safetensors" --max-iterations 2 \
  --output "$work/tuned-one" > "$work/tuned-one.log" 2>&1 || { cat "$work/tuned-one.log"; fail "--init-from in one process"; }
expect "$work/tuned-one.log" "starting from the weights in"
expect "$work/tuned-one.log" "done after 2 iterations"
"${two_ranks[@]}" "$train" "${small[@]}" --norm instance --init-from "$work/tuned-one/checkpoint.safetensors" \
  --max-iterations 2 --output "$work/tuned-two" > "$work/tuned-two.log" 2>&1 ||
  { cat "$work/tuned-two.log"; fail "--init-from on two ranks"; }
expect "$work/tuned-two.log" "data parallel: 2 ranks"
expect "$work/tuned-two.log" "done after 2 iterations"

echo "== tasks a launcher started but MPI does not join are refused (srun without its MPI plug-in)"
exits_with 1 "$work/unjoined.log" "a task MPI did not join" env SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=0 \
  timeout 120 "$train" "${small[@]}" --max-iterations 2 --output "$work/unjoined"
expect "$work/unjoined.log" "the launcher started 2 processes, but MPI joined 1"
expect "$work/unjoined.log" "srun --mpi=pmix"
[ ! -e "$work/unjoined" ] || fail "a task MPI did not join left an output folder"

echo "== ranks started with different options are refused before anything is written"
one_rank=("$mpiexec" -np 1 "$@")
set +e
timeout 120 "${one_rank[@]}" "$train" "${small[@]}" --norm instance --max-iterations 2 --output "$work/unlike" : \
  -np 1 "$train" "${small[@]}" --norm instance --max-iterations 2 --batch-size 2 --output "$work/unlike" \
  > "$work/unlike.log" 2>&1
status=$?
set -e
[ "$status" = 1 ] || { cat "$work/unlike.log"; fail "ranks with different --batch-size: status $status, not 1"; }
expect "$work/unlike.log" "rank 0: the ranks were not started alike: they differ in --batch-size;"
[ ! -e "$work/unlike" ] || fail "a refused start left an output folder"
if grep -q "MPI_ABORT" "$work/unlike.log"; then cat "$work/unlike.log"; fail "a refused start aborted MPI"; fi

echo "== ranks whose datasets differ after the first image are refused"
mkdir -p "$work/copy/train" "$work/copy/test"
for name in 1 10 100 101; do cp "$facades/train/$name.jpg" "$work/copy/train/"; done
cp "$facades/test/1.jpg" "$work/copy/test/"
cp -r "$work/copy" "$work/other" && cp "$facades/train/102.jpg" "$work/other/train/101.jpg"
set +e
timeout 120 "${one_rank[@]}" "$train" "${small[@]}" --dataset "$work/copy" --max-iterations 2 --output "$work/unlike2" : \
  -np 1 "$train" "${small[@]}" --dataset "$work/other" --max-iterations 2 --output "$work/unlike2" \
  > "$work/unlike2.log" 2>&1
status=$?
set -e
[ "$status" = 1 ] || { cat "$work/unlike2.log"; fail "ranks with different datasets: status $status, not 1"; }
expect "$work/unlike2.log" "they differ in the training split's files (names and sizes);"

echo "== --help on one rank ends every rank, with the help and the rank named"
set +e
timeout 120 "${one_rank[@]}" "$train" "${small[@]}" --max-iterations 2 --output "$work/helped" : \
  -np 1 "$train" --help > "$work/help.log" 2>&1
status=$?
set -e
[ "$status" = 1 ] || { cat "$work/help.log"; fail "--help on rank 1 alone: status $status, not 1"; }
expect "$work/help.log" "^Usage: "
expect "$work/help.log" "rank 0: the command line of rank(s) 1 stopped the run"
[ ! -e "$work/helped" ] || fail "a run with --help on one rank trained"

echo "== different mistakes on two ranks: each is printed"
set +e
timeout 120 "${one_rank[@]}" "$train" --bogus-zero : -np 1 "$train" --bogus-one > "$work/mistakes.log" 2>&1
status=$?
set -e
[ "$status" -ge 100 ] || { cat "$work/mistakes.log"; fail "mistakes on both ranks: status $status, not >= 100"; }
expect "$work/mistakes.log" "train_pix2pix: The following argument was not expected: --bogus-zero"
expect "$work/mistakes.log" "train_pix2pix: rank 1: The following argument was not expected: --bogus-one"

echo "== translation refuses to run as several ranks"
if timeout 60 "${two_ranks[@]}" "$translate" --checkpoint "$work/run/checkpoint.safetensors" --input "$facades/test" \
     --output "$work/translated2" > "$work/translate2.log" 2>&1; then
  fail "pix2pix_translate ran as two ranks"
fi
expect "$work/translate2.log" "runs as one process"
[ "$(grep -c "runs as one process" "$work/translate2.log")" = 1 ] || fail "the refusal is printed more than once"

echo "== a damaged image on rank 1: every rank stops and rank 0 saves the completed iteration"
# Four pairs, the last one damaged. With seed 7, rank 0 and rank 1 read
# good pairs in the first step, and rank 1 the damaged one in the second.
mkdir -p "$work/damaged/train" "$work/damaged/test"
for name in 1 10 100; do cp "$facades/train/$name.jpg" "$work/damaged/train/"; done
echo "not an image" > "$work/damaged/train/101.jpg"
cp "$facades/test/1.jpg" "$work/damaged/test/"
exits_with 1 "$work/damaged.log" "a damaged image" timeout 120 "${two_ranks[@]}" "$train" "${small[@]}" \
  --dataset "$work/damaged" --norm instance --epochs 3 --seed 7 --output "$work/damaged-run"
expect "$work/damaged.log" "rank 1: image '.*101.jpg': not a JPEG or PNG"
expect "$work/damaged.log" "rank 0: rank 1 could not read its next batch"
expect "$work/damaged.log" "error at iteration 1: a checkpoint of the completed iterations is in"
grep -q '"event":"error","iteration":1' "$work/damaged-run/log.jsonl" || fail "the log does not record the iteration"
"$translate" --checkpoint "$work/damaged-run/checkpoint.safetensors" --input "$facades/test" --aligned --num-test 1 \
  --output "$work/damaged-translated" --device cpu > "$work/damaged-translate.log" 2>&1 ||
  { cat "$work/damaged-translate.log"; fail "the checkpoint saved after the damaged image"; }

# Starts a long two-rank run in the background; returns once it has written
# its first checkpoint.
start_long_run() {
  local output=$1
  "${two_ranks[@]}" "$train" "${small[@]}" --norm instance --max-iterations 100000 --snapshot-interval 2 \
    --dist-timeout 5 --output "$output" > "$output.log" 2>&1 &
  launcher=$!
  for _ in $(seq 600); do
    [ -f "$output/checkpoint.safetensors" ] && return 0
    kill -0 "$launcher" 2> /dev/null || { cat "$output.log"; fail "the long run ended early"; }
    sleep 0.1
  done
  fail "no checkpoint after 60 s"
}

# The pid of the train_pix2pix process that is rank $1 of the launcher's run.
rank_pid() {
  local pid
  for pid in $(pgrep -f "$train" || true); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      echo "$pid"
      return 0
    fi
  done
  fail "rank $1's process not found"
}

# Waits at most $2 seconds for the launcher to end; its exit status in $status.
wait_for_launcher() {
  for _ in $(seq $(($2 * 10))); do
    if ! kill -0 "$1" 2> /dev/null; then
      set +e; wait "$1"; status=$?; set -e
      return 0
    fi
    sleep 0.1
  done
  fail "the run did not stop within $2 s"
}

# The last checkpoint is intact: it translates.
check_checkpoint() {
  "$translate" --checkpoint "$1/checkpoint.safetensors" --input "$facades/test" --aligned --num-test 1 \
    --output "$1.translated" --device cpu > "$1.translate.log" 2>&1 || { cat "$1.translate.log"; fail "checkpoint of $1"; }
}

# A run whose rank $1 is stopped (SIGSTOP) after its first checkpoint: the
# run must stop within a minute, with a message matching $2, and leave its
# last checkpoint intact.
hang_case() {
  local output=$work/hang$1
  start_long_run "$output"
  local hung
  hung=$(rank_pid "$1")
  kill -STOP "$hung"
  wait_for_launcher "$launcher" 60
  [ "$status" != 0 ] || fail "the run with rank $1 hung exited 0"
  expect "$output.log" "$2"
  grep "train_pix2pix: rank" "$output.log"
  kill -9 "$hung" 2> /dev/null || true
  check_checkpoint "$output"
}

echo "== rank 1 hangs: rank 0 names it and the run stops"
hang_case 1 "rank 0: .* waited [0-9]* s for the other ranks: rank 1 .*does not answer"
echo "== rank 0 hangs: rank 1 says so and the run stops"
hang_case 0 "rank 1: .* waited [0-9]* s for the other ranks: rank 0 did not end it"

echo "== SIGUSR1 to mpirun: every rank stops after its step and rank 0 saves"
start_long_run "$work/usr1"
kill -USR1 "$launcher"
wait_for_launcher "$launcher" 60
[ "$status" = 130 ] || { cat "$work/usr1.log"; fail "SIGUSR1 to mpirun: status $status, not 130"; }
expect "$work/usr1.log" "interrupted: saving a checkpoint at iteration"
expect "$work/usr1.log" "stopped after [0-9]* iterations; checkpoint"
grep -q '"event":"stopped"' "$work/usr1/log.jsonl" || fail "the log does not record the stop"
# Under mpirun a rank's output is a terminal even when mpirun's is a file:
# the progress must come as lines, not redrawn in place.
if grep -q $'\r' "$work/usr1.log"; then fail "the progress bar redraws in place under mpirun"; fi
check_checkpoint "$work/usr1"

echo "== a rank that dies: the run stops"
start_long_run "$work/dead"
kill -9 "$(rank_pid 1)"
wait_for_launcher "$launcher" 60
[ "$status" != 0 ] || fail "the run with a dead rank exited 0"
echo "the launcher ended the run with status $status"
check_checkpoint "$work/dead"

echo "all two-rank checks passed"
