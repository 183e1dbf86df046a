#!/usr/bin/env bash
# Builds pixgrad and trains pix2pix on the facades (labels -> photos), on the
# GPU when one is usable, else on the CPU. Installs what is missing first.
# Usage: bash tools/train_facades.sh [FACADES_DIR] [train_pix2pix options...]
#   FACADES_DIR defaults to data/facades, downloaded there when missing;
#   give e.g. ../shared/data/facades to use an existing copy. The run writes
#   out/facades/ and uses --direction BtoA unless the options say otherwise;
#   with --resume the checkpoint's own options stand (and it writes beside it).
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:-data/facades}"
[ $# -gt 0 ] && shift

bash tools/install_deps.sh
cmake -S . -B build -G Ninja
cmake --build build -j"$(nproc)" --target train_pix2pix pix2pix_translate
if [ ! -d "$data/train" ]; then
  bash tools/download_dataset.sh facades "$(dirname "$data")"
fi
# The defaults below stand unless the extra arguments give their own; a
# resumed run keeps those it was started with.
defaults=()
given() { local option=$1; shift; for argument in "$@"; do [[ "$argument" == "$option" || "$argument" == "$option="* ]] && return 0; done; return 1; }
if ! given --resume "$@"; then
  given --direction "$@" || defaults+=(--direction BtoA)
  given --output "$@" || defaults+=(--output out/facades)
fi
# (An empty array spelt so that bash before 4.4 accepts it under set -u.)
exec ./build/apps/train_pix2pix --dataset "$data" ${defaults[@]+"${defaults[@]}"} "$@"
