#!/usr/bin/env bash
# Every program's command line: --help prints its usage and exits 0; an
# unknown option, and a seed that is not a whole number of 64 bits (CLI11
# alone would wrap -1, clamp a larger number and read 010 as octal), are
# one line on stderr naming the program and pointing to --help, with an
# exit status of 100 or more, and nothing written; --seed 010 is 10.
# Usage: command_line.sh BUILD_DIR
set -euo pipefail
apps="$1/apps"
work=$(mktemp -d /tmp/pixgrad-command-line.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "command_line: $*" >&2; exit 1; }

for program in train_pix2pix pix2pix_translate pix2pix_prepare bench_kernels bench_pix2pix; do
  "$apps/$program" --help > "$work/help.txt" || fail "$program --help: status $?"
  grep -q "Usage\|usage" "$work/help.txt" || fail "$program --help printed no usage"
done

# mistake PROGRAM ARGS...: must be refused as a command-line mistake, in one line.
mistake() {
  local program=$1 status=0
  shift
  "$apps/$program" "$@" > "$work/out.txt" 2> "$work/err.txt" || status=$?
  [ "$status" -ge 100 ] || fail "$program $*: status $status, expected 100 or more"
  [ "$(wc -l < "$work/err.txt")" -eq 1 ] || fail "$program $*: not one line: $(cat "$work/err.txt")"
  grep -q "^$program: .*(see $program --help)$" "$work/err.txt" || fail "$program $*: $(cat "$work/err.txt")"
}
mistake train_pix2pix --no-such-option
mistake pix2pix_translate --no-such-option
for seed in -1 18446744073709551616 1e3 0x10 ""; do
  mistake train_pix2pix --dataset "$work/none" --output "$work/run" --seed "$seed"
  mistake pix2pix_translate --checkpoint "$work/none" --input "$work" --output "$work/results" --seed "$seed"
done
grep -q -- "--seed: '-1' is not a whole number" <("$apps/train_pix2pix" --seed -1 2>&1 || true) ||
  fail "the refusal of --seed -1 does not say why"
[ ! -e "$work/run" ] && [ ! -e "$work/results" ] || fail "a refused command line wrote its output folder"

status=0
"$apps/train_pix2pix" --resume "" 2> "$work/err.txt" || status=$?
[ "$status" = 1 ] && grep -q "^train_pix2pix: --resume needs a checkpoint's path$" "$work/err.txt" ||
  fail "--resume \"\": status $status, $(cat "$work/err.txt")"

# A leading zero is not octal: --seed 010 is seed 10.
source "$(dirname "$0")/facades.sh"
"$apps/train_pix2pix" --dataset "$facades" --output "$work/seeded" --device cpu --ngf 4 --ndf 4 --load-size 32 \
  --crop-size 32 --num-downs 5 --max-iterations 1 --preview-count 0 --workers 1 --seed 010 > "$work/seeded.log"
grep -q '"seed": *10,' "$work/seeded/options.json" || fail "--seed 010 was not taken as 10: $(grep seed "$work/seeded/options.json")"
echo "command lines: --help of 5 programs, unknown options and bad seeds refused in one line"
