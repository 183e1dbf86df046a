#!/usr/bin/env bash
# CTest's run of a GAN example (examples/): a few iterations on the facades
# into a fresh temporary folder, after which OUTPUT/samples.png must be a PNG
# of the expected size; and a missing data folder must be refused in one
# line that names it.
# Usage: example_smoke.sh EXAMPLE WIDTH HEIGHT [ARGS...]     (from the repository root)
set -euo pipefail
example=$1 width=$2 height=$3
shift 3
name=$(basename "$example")

source "$(dirname "$0")/facades.sh"

work=$(mktemp -d /tmp/pixgrad-example.XXXXXX)
trap 'rm -rf "$work"' EXIT

missing="$work/no-such-folder"
if message=$("$example" --data "$missing" --output "$work/unused" --iterations 1 --device cpu 2>&1); then
  echo "$name ran without its data folder:" >&2
  echo "$message" >&2
  exit 1
fi
if [ "$(printf '%s\n' "$message" | wc -l)" -ne 1 ] || [[ "$message" != *"$missing"* ]]; then
  echo "$name: expected one line naming $missing, got:" >&2
  echo "$message" >&2
  exit 1
fi

"$example" --data "$facades" --output "$work/out" "$@"
png="$work/out/samples.png"
if [ ! -f "$png" ]; then
  echo "$name wrote no $png" >&2
  exit 1
fi
# A PNG starts with an 8-byte signature and the IHDR chunk, whose width and
# height are big-endian 32-bit numbers at bytes 16-23.
read -r -a bytes <<<"$(od -An -tu1 -N24 "$png" | tr -s ' \n' '  ')"
signature="${bytes[1]} ${bytes[2]} ${bytes[3]}"
png_width=$(((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]))
png_height=$(((bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23]))
if [ "$signature" != "80 78 71" ] || [ "$png_width" -ne "$width" ] || [ "$png_height" -ne "$height" ]; then
  echo "$png: expected a ${width}x${height} PNG, found signature '$signature', ${png_width}x${png_height}" >&2
  exit 1
fi
echo "$name: wrote a ${png_width}x${png_height} sample grid"
