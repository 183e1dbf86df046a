#!/usr/bin/env bash
# CTest's run of pix2pix_prepare: `edges` on six CMP facade photos (each
# output must be a 2N x N PNG, in train/ or test/ as asked), `combine` on A
# and B folders built from those outputs, and the refusals of a missing
# partner and of mismatched sizes: exit status 1 and one line naming the file.
# Usage: prepare_smoke.sh BUILD_DIR     (from the repository root)
set -euo pipefail
prepare="$1/apps/pix2pix_prepare"

# Missing data fails the test unless PIXGRAD_ALLOW_MISSING_DATA=1 says this
# machine has none on purpose: then it is skipped (77), as in tests/facades.sh.
cmp="${PIXGRAD_DATA:-../shared/data}/cmp_facade_base"
missing="no CMP facade photos at $cmp"
if [ ! -f "$cmp/cmp_b0001.jpg" ] && [ "${PIXGRAD_ALLOW_MISSING_DATA:-}" = 1 ]; then
  echo "SKIPPED: $missing (PIXGRAD_ALLOW_MISSING_DATA=1)" && exit 77
elif [ ! -f "$cmp/cmp_b0001.jpg" ]; then
  echo "$missing: set PIXGRAD_DATA, or PIXGRAD_ALLOW_MISSING_DATA=1" >&2 && exit 1
fi

work=$(mktemp -d /tmp/pixgrad-prepare.XXXXXX)
trap 'rm -rf "$work"' EXIT

# "WIDTHxHEIGHT" of a PNG, from its IHDR chunk (big-endian at bytes 16-23).
png_size() {
  read -r -a bytes <<<"$(od -An -tu1 -N24 "$1" | tr -s ' \n' '  ')"
  if [ "${bytes[1]} ${bytes[2]} ${bytes[3]}" != "80 78 71" ]; then
    echo "not-a-png"
    return
  fi
  echo "$(((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]))x$(((bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23]))"
}

expect_size() {
  local found
  found=$(png_size "$1")
  if [ "$found" != "$2" ]; then
    echo "$1: expected a $2 PNG, found $found" >&2
    exit 1
  fi
}

# Runs pix2pix_prepare ARGS..., which must fail with status 1 and one line on
# stderr containing $needle.
expect_refusal() {
  local needle=$1 status=0
  shift
  "$prepare" "$@" >"$work/stdout" 2>"$work/stderr" || status=$?
  if [ "$status" -ne 1 ] || [ "$(wc -l <"$work/stderr")" -ne 1 ] || ! grep -qF -- "$needle" "$work/stderr"; then
    echo "pix2pix_prepare $*: expected status 1 and one line naming $needle, got status $status:" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
}

# Six photos (and their label maps, which --extension jpg leaves out).
mkdir "$work/photos"
for n in 0001 0002 0003 0004 0005 0006; do
  ln -s "$(realpath "$cmp/cmp_b$n.jpg")" "$work/photos/"
  ln -s "$(realpath "$cmp/cmp_b$n.png")" "$work/photos/"
done

"$prepare" edges --input "$work/photos" --extension jpg --output "$work/edges" --size 64 --test-count 2
for n in 0001 0002 0003 0004; do expect_size "$work/edges/train/cmp_b$n.png" 128x64; done
for n in 0005 0006; do expect_size "$work/edges/test/cmp_b$n.png" 128x64; done
"$prepare" edges --input "$work/photos" --extension jpg --output "$work/canny" --size 32 --method canny --test-count 0
expect_size "$work/canny/train/cmp_b0006.png" 64x32
if [ -e "$work/canny/test" ]; then
  echo "pix2pix_prepare edges --test-count 0 made an empty test/ folder" >&2
  exit 1
fi
# Without --extension, cmp_bNNNN.jpg and .png would both become cmp_bNNNN.png.
expect_refusal "--extension" edges --input "$work/photos" --output "$work/clash"
expect_refusal "exist already" edges --input "$work/photos" --extension jpg --output "$work/edges" --size 64

# combine: A and B folders of 64x64 halves, with split sub-folders.
for split in train test; do
  mkdir -p "$work/A/$split" "$work/B/$split"
  cp "$work/edges/$split"/*.png "$work/A/$split/"
  cp "$work/edges/$split"/*.png "$work/B/$split/"
done
"$prepare" combine --a "$work/A" --b "$work/B" --output "$work/combined"
expect_size "$work/combined/train/cmp_b0001.png" 256x64
expect_size "$work/combined/test/cmp_b0006.png" 256x64

rm "$work/B/train/cmp_b0003.png"
expect_refusal "cmp_b0003.png" combine --a "$work/A" --b "$work/B" --output "$work/missing"
cp "$work/canny/train/cmp_b0003.png" "$work/B/train/"
expect_refusal "64x32" combine --a "$work/A" --b "$work/B" --output "$work/mismatch"
if [ -e "$work/missing" ] || [ -e "$work/mismatch" ]; then
  echo "pix2pix_prepare combine wrote files although it refused" >&2
  exit 1
fi
echo "pix2pix_prepare: edges and combine wrote the expected sizes; bad pairs refused in one line"
