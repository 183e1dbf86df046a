#!/usr/bin/env bash
# Installs what pixgrad needs to build and test on Debian/Ubuntu: a C++17
# compiler, CMake >= 3.25, Ninja, Catch2, stb, libjpeg-turbo (TurboJPEG),
# nlohmann-json, CLI11 and Open MPI (data-parallel training across
# processes, and its tests under mpirun). The CUDA toolkit is optional and not installed
# here: when it is present (nvcc in /usr/local/cuda or on PATH) the CUDA
# backend is built as well. With --fuzz it also installs clang with its
# libFuzzer runtime and OpenMP, for tools/fuzz.sh.
set -euo pipefail

packages=(cmake g++ ninja-build catch2 libstb-dev libturbojpeg0-dev nlohmann-json3-dev libcli11-dev libopenmpi-dev
          openmpi-bin)
case "${1:-}" in
  --fuzz) packages+=(clang libclang-rt-dev libomp-dev) ;;
  "") ;;
  *) echo "install_deps: unknown argument '$1' (expected --fuzz or nothing)" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install_deps: installing ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
