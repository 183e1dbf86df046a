#!/usr/bin/env bash
# The README's quickstart training command, tools/train_facades.sh, as
# written, in a temporary copy of the repository's layout whose
# ../shared/data/facades is the real facades: installing and building are
# stand-ins there (CI runs tools/install_deps.sh and the build itself), and
# this build's programs do the work. A tiny run (options appended to the
# command) must leave its checkpoint in out/facades/, trained BtoA; a run
# started AtoB must then continue under the script with --resume, keeping
# its own direction and folder, and say which steering options it kept.
# Usage: readme_train.sh BUILD_DIR      (from the repository root)
set -euo pipefail
build=$(cd "$1" && pwd)
readme="$PWD/README.md"
script="$PWD/tools/train_facades.sh"
source "$(dirname "$0")/facades.sh"
facades=$(cd "$facades" && pwd)

work=$(mktemp -d /tmp/pixgrad-readme-train.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/shared/data" "$work/repo/tools" "$work/bin"
ln -s "$facades" "$work/shared/data/facades"
ln -s "$build" "$work/repo/build"
cp "$script" "$work/repo/tools/"
printf '#!/bin/sh\necho "install_deps: (stand-in)"\n' > "$work/repo/tools/install_deps.sh"
printf '#!/bin/sh\necho "cmake $* (stand-in)"\n' > "$work/bin/cmake"
chmod +x "$work/bin/cmake"
export PATH="$work/bin:$PATH"
cd "$work/repo"

tiny=(--ngf 8 --ndf 8 --load-size 64 --crop-size 64 --num-downs 6 --max-iterations 2 --preview-count 1 --workers 1
      --device cpu)
command=$(grep -m1 '^bash tools/train_facades.sh' "$readme")
[ -n "$command" ] || { echo "README: no 'bash tools/train_facades.sh' line found" >&2; exit 1; }
echo "README command: $command"
eval "$command ${tiny[*]}" > train.log
grep -q '"direction": *"BtoA"' out/facades/options.json || { echo "the README's run is not BtoA" >&2; exit 1; }
grep -q "stopped at --max-iterations: iteration 2 of 2" out/facades/index.html ||
  { echo "index.html does not say the run was cut short by --max-iterations" >&2; exit 1; }

# Started AtoB into another folder, then resumed through the script.
bash tools/train_facades.sh "$facades" --direction AtoB --output out/ab "${tiny[@]}" > ab.log
bash tools/train_facades.sh "$facades" --resume out/ab/checkpoint.safetensors --max-iterations 3 > resume.log ||
  { cat resume.log >&2; echo "the script could not resume an AtoB run" >&2; exit 1; }
grep -q "done after 3 iterations; checkpoint 'out/ab/checkpoint.safetensors'" resume.log ||
  { cat resume.log >&2; echo "the resumed run did not continue in out/ab to iteration 3" >&2; exit 1; }
grep -q '"direction": *"AtoB"' out/ab/options.json || { echo "the resumed run lost its direction" >&2; exit 1; }
grep -q "^kept from the run: .*--preview-count 1 (give them again" resume.log ||
  { echo "the resume did not say which of the run's own steering options it kept" >&2; exit 1; }
echo "README train command: checkpoint in out/facades (BtoA); an AtoB run resumed to iteration 3 in its folder"
