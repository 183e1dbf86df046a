#!/usr/bin/env bash
# Rehearses the GPU check the way a GPU machine will see it: copies the
# tracked tree and the prepared carry (tools/prepare_gpu_check.sh) to a fresh
# folder elsewhere, with no build folder and no ../shared beside it, hides the
# original checkout where the system allows (a private mount namespace), and
# runs `tools/gpu_check.sh --rehearse` in the copy. A binary that still read
# anything from the build machine's paths would fail here.
#
# Usage: bash tools/rehearse_gpu_check.sh [--carry DIR] [--hide DIR]... [--log FILE]
#   --carry DIR  the prepared carry (default .gpu_carry)
#   --hide DIR   another folder to hide, e.g. a build folder outside the tree
#   --log FILE   keep the rehearsal's log there (default /tmp/pixgrad-rehearsal.log)
set -euo pipefail
cd "$(dirname "$0")/.."
source_tree="$PWD"

carry=.gpu_carry log=/tmp/pixgrad-rehearsal.log
hidden=()
needs_value() { [ $# -ge 2 ] || { echo "rehearse_gpu_check: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --carry) needs_value "$@"; carry="$2"; shift 2 ;;
    --hide) needs_value "$@"; hidden+=("$(cd "$2" && pwd)"); shift 2 ;;
    --log) needs_value "$@"; log="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "rehearse_gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$carry/commit" ] || { echo "rehearse_gpu_check: no prepared carry at '$carry' (run tools/prepare_gpu_check.sh)" >&2; exit 1; }
carry="$(cd "$carry" && pwd)"

work=$(mktemp -d /tmp/pixgrad-rehearsal.XXXXXX)
trap 'rm -rf "$work"' EXIT
copy="$work/tree"
mkdir -p "$copy"
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  git ls-files -z | xargs -0 cp --parents -t "$copy"
else
  tar --exclude='./build*' --exclude='./.gpu_carry' --exclude='./out' -cf - . | tar -xf - -C "$copy"
fi
cp -r "$carry" "$copy/.gpu_carry"
echo "rehearse_gpu_check: tree copied to $copy ($(du -sh "$copy" | cut -f1) with the carry)"
if ls -d "$copy"/build* > /dev/null 2>&1 || [ -e "$work/shared" ]; then
  echo "rehearse_gpu_check: the copy has a build folder or a ../shared beside it" >&2
  exit 1
fi

# Hide the checkout, the shared data beside it and any --hide folder, unless
# the copy lives inside one of them; paths reach the inner shell as
# arguments, so no quoting can break them.
for path in "$source_tree" "$(dirname "$source_tree")/shared"; do
  [ -d "$path" ] && hidden+=("$path")
done
to_hide=()
for path in "${hidden[@]}"; do
  case "$copy/" in "$path"/*) continue ;; esac
  inside_another=0
  for other in "${hidden[@]}"; do
    [ "$other" != "$path" ] && case "$path/" in "$other"/*) inside_another=1 ;; esac
  done
  [ "$inside_another" = 0 ] && to_hide+=("$path")
done
# The variables that would point the tests back at the original files.
clean_environment=(env -u PIXGRAD_FIXTURES -u PIXGRAD_DATA -u PIXGRAD_ALLOW_MISSING_DATA)
readonly run_check='
  copy=$1 out=$2
  shift 2
  for path in "$@"; do mount -t tmpfs pixgrad-hidden "$path" || exit 1; done
  cd "$copy" && OUT="$out" bash tools/gpu_check.sh --rehearse'
status=0
if [ "${#to_hide[@]}" -gt 0 ] && unshare --mount --fork true 2> /dev/null; then
  echo "rehearse_gpu_check: hiding ${to_hide[*]} for the rehearsal"
  "${clean_environment[@]}" unshare --mount --fork bash -c "$run_check" rehearse "$copy" "$work/out" "${to_hide[@]}" ||
    status=$?
else
  echo "rehearse_gpu_check: cannot make a private mount namespace here; the original checkout stays visible"
  "${clean_environment[@]}" bash -c "$run_check" rehearse "$copy" "$work/out" || status=$?
fi
cp "$work/out/gpu_check.log" "$log" 2>/dev/null && echo "rehearse_gpu_check: log kept in $log"
exit "$status"
