#!/usr/bin/env bash
# The install_consumer test: installs a pixgrad build into a fresh prefix,
# then configures, builds and runs the project in this folder against it, in
# a temporary folder outside the source tree, and checks that the consumer saw
# only the prefix: pixgrad found there, no path of the source or build tree on
# its command lines, every pixgrad header it read taken from the prefix.
#
# The commands marked "README" are the ones README.md shows under "Use pixgrad
# in your own project"; here the build's generator, compiler and build type
# are added to the consumer's configure command. Keep the two in step.
#
# Usage (tests/CMakeLists.txt passes the arguments):
#   run.sh BUILD_DIR SOURCE_DIR VERSION GENERATOR CXX_COMPILER BUILD_TYPE
set -euo pipefail
if [ $# -ne 6 ]; then
  echo "usage: run.sh BUILD_DIR SOURCE_DIR VERSION GENERATOR CXX_COMPILER BUILD_TYPE" >&2
  exit 2
fi
build=$1 source=$2 version=$3 generator=$4 cxx=$5 build_type=$6
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "install_consumer: $*" >&2; exit 1; }
step() { echo "+ $*"; "$@"; }

# A folder of its own, so that runs in parallel never meet; removed at the end.
work=$(mktemp -d "${TMPDIR:-/tmp}/pixgrad-install-consumer.XXXXXX")
# cmake --install writes the build's install_manifest.txt: the record of the
# user's own install of this build (what to remove to uninstall it) is put
# back afterwards, and one this test made is removed again.
manifest=$build/install_manifest.txt
trap 'rm -rf "$work"' EXIT
if [ -f "$manifest" ]; then
  cp -p "$manifest" "$work/user_manifest.txt"
  trap 'cp -p "$work/user_manifest.txt" "$manifest" || true; rm -rf "$work"' EXIT
else
  trap 'rm -f "$manifest" || true; rm -rf "$work"' EXIT
fi
case "$work/" in
  "$source"/* | "$build"/*) fail "the temporary folder $work is inside the source or build tree; set TMPDIR elsewhere" ;;
esac
prefix=$work/prefix
mkdir "$work/consumer"
cp "$here/CMakeLists.txt" "$here/main.cpp" "$work/consumer/"
cd "$work"

# README: install the library.
step cmake --install "$build" --prefix "$prefix"

# README: configure and build the consumer (with this build's generator,
# compiler and build type added).
options=(-G "$generator" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
step cmake -S consumer -B consumer/build -DCMAKE_PREFIX_PATH="$prefix" "${options[@]}" | tee configure.log
step cmake --build consumer/build

# pixgrad came from the prefix, with its version file.
grep -qF -- "-- pixgrad $version in $prefix/" configure.log ||
  fail "find_package(pixgrad) did not find version $version under $prefix"
# No path of the source or build tree in the consumer's compile and link
# commands (or, with Ninja, among the CMake files its configure read).
[ -f consumer/build/compile_commands.json ] || fail "no consumer/build/compile_commands.json"
commands=(consumer/build/compile_commands.json)
for file in consumer/build/build.ninja consumer/build/CMakeFiles/consumer.dir/link.txt; do
  if [ -f "$file" ]; then commands+=("$file"); fi
done
[ ${#commands[@]} -ge 2 ] || fail "found no link command in consumer/build"
if grep -F -e "$source/" -e "$build/" "${commands[@]}"; then
  fail "the consumer's build names the source or build tree (above)"
fi
# Every pixgrad header the compiler read is the prefix's (Ninja records them).
if [[ "$generator" == Ninja* ]]; then
  ninja=$(sed -n 's/^CMAKE_MAKE_PROGRAM:[A-Z]*=//p' consumer/build/CMakeCache.txt)
  headers=$("$ninja" -C consumer/build -t deps | sed -n 's/^ \{1,\}//p')
  if grep -F -e '/pixgrad/' -e "$source/" -e "$build/" <<< "$headers" | grep -vF -e "$prefix/include/pixgrad/" -e "$work/consumer/"; then
    fail "the headers above were read from outside $prefix"
  fi
  grep -qxF "$prefix/include/pixgrad/pixgrad.h" <<< "$headers" || fail "pixgrad.h was not read from $prefix"
fi

step consumer/build/consumer "$work"
