#!/usr/bin/env bash
# Prepares what tools/gpu_check.sh needs on a GPU machine that may have no
# network, none of pixgrad's header-only dependencies and no copy of the
# datasets. Everything goes into the git-ignored folder .gpu_carry/:
#
#   bin/      Release binaries for sm_90 (H100/H200): the carried build
#   deps/     Catch2, CLI11, nlohmann-json and stb headers with their CMake
#             package files, and libjpeg-turbo's TurboJPEG, as an install
#             prefix: a build on the GPU machine uses them if the carried
#             binaries do not start there
#   lib/      libgomp.so.1, searched last, in case the machine has no OpenMP runtime
#   data/     a slice of the facades set (100 train, 10 test pairs)
#   commit    the commit the binaries were built from
#
# Copy the tree and .gpu_carry to the GPU machine, run `bash tools/gpu_check.sh`
# there from the tree's root, and read the log it writes ($OUT/gpu_check.log).
# `bash tools/gpu_check.sh --rehearse` checks everything but the GPU work here.
#
# Usage: bash tools/prepare_gpu_check.sh [--from-build DIR] [--output DIR] [FACADES]
#   --from-build DIR  take the binaries of an existing build instead of
#                     building build-gpu-carry/ (the rehearsal test does this)
#   --output DIR      where to write (default .gpu_carry)
#   FACADES           the facades folder (default ../shared/data/facades)
set -euo pipefail
cd "$(dirname "$0")/.."

from_build="" output=".gpu_carry" facades="../shared/data/facades"
needs_value() { [ $# -ge 2 ] || { echo "prepare_gpu_check: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --from-build) needs_value "$@"; from_build="$2"; shift 2 ;;
    --output) needs_value "$@"; output="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "prepare_gpu_check: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) facades="$1"; shift ;;
  esac
done
[ -d "$facades/train" ] && [ -d "$facades/test" ] ||
  { echo "prepare_gpu_check: no facades train/ and test/ at '$facades'" >&2; exit 1; }

# The tree and this folder travel together and may not pass 64 MiB; 4 MiB
# stay free for files the tree gains before the run.
readonly kMaxTotalMiB=60

build="$from_build"
if [ -z "$build" ]; then
  build=build-gpu-carry
  # Without MPI: the GPU machine may lack Open MPI's libraries, which every
  # binary would then fail to load (its NCCL step reports itself skipped).
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPIXGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DPIXGRAD_MPI=OFF
  cmake --build "$build" -j"$(nproc)"
fi
binaries=("$build/tests/pixgrad_tests" "$build/tests/pixgrad_cuda_tests" "$build/apps/train_pix2pix"
          "$build/apps/pix2pix_translate" "$build/apps/bench_pix2pix" "$build/apps/bench_kernels")
for binary in "${binaries[@]}"; do
  [ -x "$binary" ] || { echo "prepare_gpu_check: $binary is missing (build incomplete?)" >&2; exit 1; }
done
# A build without CUDA has a CUDA suite with no tests in it: nothing to check on a GPU.
cuda_tests=$("$build/tests/pixgrad_cuda_tests" --list-test-names-only 2>/dev/null | grep -c . || true)
if [ "${cuda_tests:-0}" -eq 0 ]; then
  echo "prepare_gpu_check: $build was built without CUDA (configure it with -DPIXGRAD_CUDA=ON)" >&2
  exit 1
fi
echo "prepare_gpu_check: $build has CUDA ($cuda_tests CUDA tests)"

# Replace only an earlier carry (it holds our marker), never another folder.
readonly marker="pixgrad-gpu-carry"
if [ -e "$output" ]; then
  if [ ! -f "$output/$marker" ]; then
    echo "prepare_gpu_check: '$output' exists and is not a carry made by this script; not touching it" >&2
    exit 1
  fi
  rm -rf "$output"
fi
mkdir -p "$output/bin" "$output/lib" "$output/data/facades/train" "$output/data/facades/test"
echo "Made by tools/prepare_gpu_check.sh; replaced whole by its next run." > "$output/$marker"
# Without their symbol tables (about 1 MiB each; a backtrace on the GPU
# machine then names addresses, which the build's own binaries resolve).
for binary in "${binaries[@]}"; do
  strip --strip-unneeded -o "$output/bin/$(basename "$binary")" "$binary"
done

# Header-only dependencies as a relocatable prefix: the packages' CMake files
# compute their prefix from where they sit.
deps="$output/deps"
mkdir -p "$deps/include/stb" "$deps/lib/cmake" "$deps/share/cmake"
cp -r /usr/include/catch2 /usr/include/CLI /usr/include/nlohmann "$deps/include/"
cp /usr/include/stb/stb_image.h /usr/include/stb/stb_image_write.h "$deps/include/stb/"
turbojpeg_include=$(sed -n 's/^TURBOJPEG_INCLUDE_DIR:PATH=//p' "$build/CMakeCache.txt")
turbojpeg_library=$(sed -n 's/^TURBOJPEG_LIBRARY:FILEPATH=//p' "$build/CMakeCache.txt")
cp "${turbojpeg_include:-/usr/include}/turbojpeg.h" "$deps/include/"
cp -L "${turbojpeg_library:-/usr/lib/x86_64-linux-gnu/libturbojpeg.a}" "$deps/lib/"
cp -r /usr/lib/cmake/Catch2 "$deps/lib/cmake/"
cp -r /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json "$deps/share/cmake/"
# Catch2's package file checks that its Catch2WithMain archive exists; pixgrad
# links only the header-only Catch2::Catch2, so an empty archive stands in.
printf '!<arch>\n' > "$deps/lib/libCatch2WithMain.a"

gomp="$(g++ -print-file-name=libgomp.so.1)"
[ -f "$gomp" ] && cp -L "$gomp" "$output/lib/"

ls "$facades/train" | sort -n | head -n 100 | while read -r f; do cp "$facades/train/$f" "$output/data/facades/train/"; done
ls "$facades/test" | sort -n | head -n 10 | while read -r f; do cp "$facades/test/$f" "$output/data/facades/test/"; done
# The commit of the tree the binaries were built from (with --from-build, that build's source tree).
source_tree=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)
source_tree=${source_tree:-.}
{
  git -C "$source_tree" rev-parse HEAD 2>/dev/null || echo "unknown commit"
  git -C "$source_tree" status --porcelain --untracked-files=no 2>/dev/null | grep -q . &&
    echo "(with uncommitted changes)"
  echo "built in $(cd "$build" && pwd) from $(cd "$source_tree" && pwd)"
} > "$output/commit"

carry_kib=$(du -sk "$output" | cut -f1)
tree_kib=$(git ls-files -z 2>/dev/null | xargs -0 du -ck 2>/dev/null | tail -n 1 | cut -f1)
total_mib=$(( (carry_kib + ${tree_kib:-0}) / 1024 ))
echo "prepare_gpu_check: $output is $(( carry_kib / 1024 )) MiB, the tracked tree $(( ${tree_kib:-0} / 1024 )) MiB:" \
     "${total_mib} MiB to copy (limit ${kMaxTotalMiB} MiB of 64)"
du -sh "$output"/* | sed 's/^/  /'
if [ "$total_mib" -gt "$kMaxTotalMiB" ]; then
  echo "prepare_gpu_check: too large to carry" >&2
  exit 1
fi
echo "prepare_gpu_check: ready. Rehearse here with 'bash tools/gpu_check.sh --rehearse'; on the GPU machine run" \
     "'bash tools/gpu_check.sh' from the tree's root with $output beside it."
