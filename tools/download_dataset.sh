#!/usr/bin/env bash
# Fetches a public facades dataset into DEST, in the layout pixgrad reads:
#
#   tools/download_dataset.sh facades DEST  ->  DEST/facades/{train,val,test}/*.jpg
#       (pix2pix's aligned A|B images, 400 / 100 / 106; for AlignedDataset)
#   tools/download_dataset.sh cmp DEST      ->  DEST/cmp_facade_base/cmp_bNNNN.{jpg,png}
#       (the CMP Facade "base" set, 378 pairs; for CmpDataset)
#
# Idempotent: a dataset that is already complete is left alone. The archive is
# downloaded and unpacked in a temporary folder and moved into place only
# once its layout checks out, so an interrupted run leaves nothing half-made.
set -euo pipefail

FACADES_URL="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
CMP_URL="https://cmp.felk.cvut.cz/~tylecr1/facade/CMP_facade_DB_base.zip"

usage() {
  echo "usage: $0 facades|cmp DEST" >&2
  exit 2
}

die() {
  echo "download_dataset: $*" >&2
  exit 1
}

count_files() {  # count_files DIR PATTERN: regular files directly in DIR matching PATTERN
  find "$1" -maxdepth 1 -type f -name "$2" 2>/dev/null | wc -l | tr -d ' '
}

facades_complete() {  # facades_complete DIR
  [[ "$(count_files "$1/train" '*.jpg')" == 400 && "$(count_files "$1/val" '*.jpg')" == 100 &&
     "$(count_files "$1/test" '*.jpg')" == 106 ]]
}

cmp_complete() {  # cmp_complete DIR
  [[ "$(count_files "$1" 'cmp_b*.jpg')" == 378 && "$(count_files "$1" 'cmp_b*.png')" == 378 ]]
}

fetch() {  # fetch URL FILE
  echo "download_dataset: fetching $1"
  if command -v curl >/dev/null 2>&1; then
    curl --fail --location --retry 3 --output "$2" "$1" || die "could not download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget --tries=3 --output-document="$2" "$1" || die "could not download $1"
  else
    die "neither curl nor wget is installed"
  fi
  [[ -s "$2" ]] || die "the download of $1 is empty"
}

[[ $# -eq 2 ]] || usage
dataset="$1"
dest="$2"
case "$dataset" in
  facades) target="$dest/facades" ;;
  cmp) target="$dest/cmp_facade_base" ;;
  *) usage ;;
esac

if [[ "$dataset" == facades ]] && facades_complete "$target"; then
  echo "download_dataset: $target is already complete; nothing to do"
  exit 0
fi
if [[ "$dataset" == cmp ]] && cmp_complete "$target"; then
  echo "download_dataset: $target is already complete; nothing to do"
  exit 0
fi
[[ ! -e "$target" ]] || die "$target exists but is incomplete; remove it and run again"

mkdir -p "$dest" || die "cannot create $dest"
work="$(mktemp -d "$dest/.download.XXXXXX")" || die "cannot create a temporary folder in $dest"
trap 'rm -rf "$work"' EXIT

if [[ "$dataset" == facades ]]; then
  command -v tar >/dev/null 2>&1 || die "tar is not installed"
  fetch "$FACADES_URL" "$work/facades.tar.gz"
  tar -xzf "$work/facades.tar.gz" -C "$work" || die "could not unpack facades.tar.gz"
  facades_complete "$work/facades" ||
    die "facades.tar.gz does not hold facades/{train,val,test} with 400/100/106 JPEGs"
  mv "$work/facades" "$target"
else
  command -v unzip >/dev/null 2>&1 || die "unzip is not installed"
  fetch "$CMP_URL" "$work/cmp.zip"
  unzip -q "$work/cmp.zip" -d "$work/unpacked" || die "could not unpack CMP_facade_DB_base.zip"
  # The archive keeps its files in a folder (base/); find it rather than assume its name.
  source_dir="$(dirname "$(find "$work/unpacked" -type f -name 'cmp_b0001.jpg' | head -n 1)")"
  [[ "$source_dir" != . ]] || die "CMP_facade_DB_base.zip holds no cmp_b0001.jpg"
  cmp_complete "$source_dir" || die "CMP_facade_DB_base.zip does not hold 378 cmp_bNNNN.jpg/.png pairs"
  names="$(find "$work/unpacked" -type f -name label_names.txt | head -n 1)"
  if [[ -n "$names" && ! -e "$source_dir/label_names.txt" ]]; then cp "$names" "$source_dir/"; fi
  mv "$source_dir" "$target"
fi
echo "download_dataset: $dataset is ready in $target"
