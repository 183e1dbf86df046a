#!/usr/bin/env bash
# Rehearses the GPU check the way a GPU machine will see it: copies the
# tracked tree and the prepared carry (tools/prepare_gpu_check.sh) to a fresh
# folder elsewhere, with no build folder and no ../shared beside it, hides the
# original checkout where the system allows (a private mount namespace), and
# runs `tools/gpu_check.sh --rehearse` in the copy. A binary that still read
# anything from the build machine's paths would fail here.
#
# Usage: bash tools/rehearse_gpu_check.sh [--carry DIR]   (default .gpu_carry)
set -euo pipefail
cd "$(dirname "$0")/.."
source_tree="$PWD"

carry=.gpu_carry
while [ $# -gt 0 ]; do
  case "$1" in
    --carry) carry="$2"; shift 2 ;;
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

run_check='cd "$1" && OUT="$2" bash tools/gpu_check.sh --rehearse'
# Hide the checkout the binaries were built in, and the shared data beside it,
# unless the copy lives inside one of them.
hidden=()
for path in "$source_tree" "$(dirname "$source_tree")/shared"; do
  [ -d "$path" ] && case "$copy/" in "$path"/*) ;; *) hidden+=("$path") ;; esac
done
if [ "${#hidden[@]}" -gt 0 ] && unshare --mount --fork true 2> /dev/null; then
  echo "rehearse_gpu_check: hiding ${hidden[*]} for the rehearsal"
  mounts=""
  for path in "${hidden[@]}"; do mounts+="mount -t tmpfs pixgrad-hidden '$path' && "; done
  unshare --mount --fork bash -c "${mounts} bash -c '$run_check' rehearse '$copy' '$work/out'"
  exit $?
fi
echo "rehearse_gpu_check: cannot make a private mount namespace here; the original checkout stays visible"
bash -c "$run_check" rehearse "$copy" "$work/out"
