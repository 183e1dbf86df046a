#!/usr/bin/env bash
# Fuzzes pixgrad's readers of untrusted files with libFuzzer: the safetensors
# reader, a checkpoint's training metadata, the image decoders and the CMP
# label reader (tests/fuzz). Builds build-fuzz/ with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer, replays the committed corpora, then fuzzes
# each target for the given time, two at a time, from a scratch copy of its
# corpus. Any crash, sanitizer report, timeout or out-of-memory is a finding:
# the script prints the reproducer's path and exits with status 1.
#
# Usage: bash tools/fuzz.sh [--seconds N] [--targets a,b] [--keep DIR]
#   --seconds N   fuzzing time per target (default 60)
#   --targets     which targets (default: safetensors,checkpoint,image,label_image)
#   --keep DIR    keep the grown corpora and the logs in DIR (default: a temporary folder, removed)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 targets="safetensors,checkpoint,image,label_image" keep=""
needs_value() { [ $# -ge 2 ] || { echo "fuzz: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) needs_value "$@"; seconds="$2"; shift 2 ;;
    --targets) needs_value "$@"; targets="$2"; shift 2 ;;
    --keep) needs_value "$@"; keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
bash tools/install_deps.sh --fuzz

cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPIXGRAD_CUDA=OFF \
  -DPIXGRAD_FUZZ=ON -DPIXGRAD_BUILD_TESTS=OFF -DPIXGRAD_BUILD_APPS=OFF -DPIXGRAD_BUILD_EXAMPLES=OFF > /dev/null
cmake --build build-fuzz -j"$(nproc)"
ctest --test-dir build-fuzz -L fuzz --output-on-failure

work="${keep:-$(mktemp -d /tmp/pixgrad-fuzz.XXXXXX)}"
mkdir -p "$work"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT
IFS=, read -r -a names <<< "$targets"

# fuzz_one NAME: fuzzes one target; its log ends with libFuzzer's totals,
# and its exit status goes to $work/NAME/status.
fuzz_one() {
  local name=$1 rc=0
  mkdir -p "$work/$name/corpus" "$work/$name/findings"
  cp tests/fuzz/corpus/"$name"/* "$work/$name/corpus/" &&
    build-fuzz/tests/fuzz/fuzz_"$name" "$work/$name/corpus" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$name/findings/" > "$work/$name/log" 2>&1 ||
    rc=$?
  echo "$rc" > "$work/$name/status"
}

status=0
running=()
for name in "${names[@]}"; do
  [ -x "build-fuzz/tests/fuzz/fuzz_$name" ] || { echo "fuzz: no target '$name'" >&2; exit 2; }
  fuzz_one "$name" &
  running+=("$!:$name")
  if [ "${#running[@]}" -ge 2 ]; then
    entry=${running[0]}; running=("${running[@]:1}")
    wait "${entry%%:*}" || true
  fi
done
for entry in "${running[@]}"; do wait "${entry%%:*}" || true; done

for name in "${names[@]}"; do
  log="$work/$name/log"
  exit_status=$(cat "$work/$name/status" 2>/dev/null || echo "none")
  runs=$(grep -o "stat::number_of_executed_units: [0-9]*" "$log" 2>/dev/null | tail -n 1 | grep -o "[0-9]*$" || true)
  coverage=$(grep -o "cov: [0-9]* ft: [0-9]*" "$log" 2>/dev/null | tail -n 1 || true)
  corpus=$(ls "$work/$name/corpus" 2>/dev/null | wc -l)
  findings=$(ls "$work/$name/findings" 2>/dev/null | wc -l)
  echo "fuzz_$name: ${seconds}s, ${runs:-?} executions, ${coverage:-cov: ?}, corpus $corpus inputs," \
       "$findings finding(s), exit status $exit_status"
  # A finding, a fuzzer that failed or never ran, or one that ran nothing, all fail.
  if [ "$findings" -gt 0 ] || [ "$exit_status" != 0 ] || [ -z "$runs" ] || [ "$runs" -eq 0 ] ||
     grep -q -E "ERROR: (AddressSanitizer|libFuzzer)|runtime error:|SUMMARY: " "$log" 2>/dev/null; then
    status=1
    grep -E -m 5 "ERROR:|runtime error:|SUMMARY:" "$log" 2>/dev/null | sed 's/^/  /'
    ls "$work/$name/findings" 2>/dev/null | sed "s|^|  reproducer: $work/$name/findings/|"
  fi
done
[ "$status" -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FINDINGS (kept in $work)"
[ "$status" -ne 0 ] && trap - EXIT
exit $status
