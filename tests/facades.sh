# Sourced by the test scripts that read the facades: sets $facades to
# $PIXGRAD_DATA/facades, else ../shared/data/facades (from the repository
# root). When it is missing the test fails, naming it, unless
# PIXGRAD_ALLOW_MISSING_DATA=1 says this machine has no data on purpose: then
# it exits 77, which CTest reports as skipped (as tests/test_paths.h does).
facades="${PIXGRAD_DATA:-../shared/data}/facades"
if [ ! -d "$facades/train" ]; then
  if [ "${PIXGRAD_ALLOW_MISSING_DATA:-}" = 1 ]; then
    echo "SKIPPED: no facades at $facades (PIXGRAD_ALLOW_MISSING_DATA=1)"
    exit 77
  fi
  echo "no facades at $facades: set PIXGRAD_DATA, or PIXGRAD_ALLOW_MISSING_DATA=1" >&2
  exit 1
fi
