#!/usr/bin/env bash
# The README's translate command, run as written on a few real facade test
# pairs: a tiny model is trained into out/facades first (in a temporary
# working directory whose ../shared/data/facades/test holds 3 pairs), then
# the command is taken from the README's code block and run. Each pair must
# give a 256x256 result that differs from its input half, the truth and
# input images for the page, index.html, and a line of mean metrics. The
# README's other translate form (a folder of single images) runs too, and a
# non-square photo with --preprocess none keeps its size; a
# second run into the same folder is refused in one line; both results
# pages render in headless Chromium with every image loaded.
# Usage: readme_translate.sh BUILD_DIR      (from the repository root)
set -euo pipefail
build=$(cd "$1" && pwd)
readme="$PWD/README.md"
check_page="$PWD/tools/check_html_page.sh"
source "$(dirname "$0")/facades.sh"
facades=$(cd "$facades" && pwd)

work=$(mktemp -d /tmp/pixgrad-readme.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/shared/data/facades/test" "$work/repo"
for pair in 1 2 3; do ln -s "$facades/test/$pair.jpg" "$work/shared/data/facades/test/$pair.jpg"; done
ln -s "$build" "$work/repo/build"
cd "$work/repo"

./build/apps/train_pix2pix --dataset "$facades" --direction BtoA --output out/facades --ngf 8 --ndf 8 \
  --max-iterations 1 --preview-count 1 --workers 1 --device cpu > train.log

# The first code block in the README that runs pix2pix_translate, continuation lines joined.
command=$(awk '/^```sh/{block=""; inside=1; next} /^```/{if (inside && block ~ /pix2pix_translate/) {print block; exit} inside=0; next}
               inside {sub(/\\$/, ""); block = block $0 " "}' "$readme")
if [[ "$command" != *"--aligned"* ]]; then
  echo "README: no translate command with --aligned found (got '$command')" >&2
  exit 1
fi
echo "README command: $command"
eval "$command --device cpu" | tee translate.log

png_size() {  # WIDTHxHEIGHT of a PNG, from its IHDR chunk (bytes 16-23, big-endian)
  read -r -a bytes <<<"$(od -An -tu1 -N24 "$1" | tr -s ' \n' '  ')"
  echo "$(((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]))x$(((bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23]))"
}
results=$(printf '%s\n' "$command" | sed -n 's/.*--output \([^ ]*\).*/\1/p')
for pair in 1 2 3; do
  for file in "$results/$pair.png" "$results/images/${pair}_input.png" "$results/images/${pair}_truth.png"; do
    [ -f "$file" ] || { echo "missing $file" >&2; exit 1; }
    [ "$(png_size "$file")" = 256x256 ] || { echo "$file is $(png_size "$file"), not 256x256" >&2; exit 1; }
  done
  # Same encoder, same pixels, same bytes: a result equal to its input would compare equal.
  if cmp -s "$results/$pair.png" "$results/images/${pair}_input.png"; then
    echo "$results/$pair.png is its input" >&2
    exit 1
  fi
done
grep -q "mean over 3 image(s): L1 [0-9.]*  PSNR [0-9.]* dB  SSIM" translate.log || { echo "no metrics line" >&2; exit 1; }
grep -q '"mean"' "$results/metrics.json"
grep -q '"convolutions": *"fp32 convolutions"' "$results/metrics.json" || {
  echo "metrics.json does not say how the convolutions computed" >&2
  exit 1
}
grep -q '1.png' "$results/index.html"

# Single images (the label halves alone): one result each, no metrics.
mkdir labels
cp "$results/images/1_input.png" "$results/images/2_input.png" labels/
./build/apps/pix2pix_translate --checkpoint out/facades/checkpoint.safetensors --input labels/ --output translated/ \
  --device cpu > single.log
[ "$(png_size translated/1_input.png)" = 256x256 ] && [ -f translated/index.html ] && [ ! -f translated/metrics.json ]

# A photo that is not square, with --preprocess none as the README says: it comes out at its own size.
mkdir photos
photo="$(dirname "$facades")/cmp_facade_base/cmp_b0001.jpg"
[ -f "$photo" ] || { echo "no CMP photo at $photo (the data holds cmp_facade_base beside facades)" >&2; exit 1; }
ln -s "$photo" photos/
./build/apps/pix2pix_translate --checkpoint out/facades/checkpoint.safetensors --input photos/ --output own_size/ \
  --preprocess none --device cpu > own_size.log
own=$(png_size own_size/cmp_b0001.png)
[ "$own" = "$(png_size own_size/images/cmp_b0001_input.png)" ] && [ "${own%x*}" != "${own#*x}" ] ||
  { echo "--preprocess none gave $own for a photo of $(png_size own_size/images/cmp_b0001_input.png)" >&2; exit 1; }
echo "a photo translated at its own size, $own"

# Running the README command again must not replace the results.
if eval "$command --device cpu" > again.log 2>&1; then
  echo "a second run replaced the results without --overwrite" >&2
  exit 1
fi
[ "$(wc -l < again.log)" -eq 1 ] && grep -q "exists already" again.log
# Both results pages in a real browser, when one is installed: every image loads.
for page in "$results/index.html" out/facades/index.html; do
  status=0
  bash "$check_page" "$page" || status=$?
  if [ "$status" -eq 77 ]; then
    echo "no headless Chromium: $page not rendered"
  elif [ "$status" -ne 0 ]; then
    echo "$page did not render with all its images" >&2
    exit 1
  fi
done
echo "README translate command: 3 pairs translated, metrics reported, index.html written"
