#!/usr/bin/env bash
# Renders a results page (index.html) in headless Chromium and checks that
# every image on it loaded and every chart is there: pixgrad's pages mark
# each <img> with data-loaded or data-failed when the browser has it.
# Usage: check_html_page.sh PAGE [--screenshot FILE.png]
# Exit status: 0 every image loaded; 1 an image failed or the page did not
# render; 77 no Chromium on this machine (set CHROMIUM to name one).
set -euo pipefail
page=${1:?usage: check_html_page.sh PAGE [--screenshot FILE.png]}
screenshot=""
if [ "${2:-}" = --screenshot ]; then screenshot=${3:?--screenshot needs a file}; fi
[ -f "$page" ] || { echo "check_html_page: '$page' is not a file" >&2; exit 1; }

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
  for candidate in chromium-headless-shell chromium chromium-browser google-chrome; do
    if command -v "$candidate" > /dev/null; then browser=$candidate; break; fi
  done
fi
if [ -z "$browser" ]; then
  echo "check_html_page: no headless Chromium found (apt-get install chromium-headless-shell, or set CHROMIUM)"
  exit 77
fi

url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
profile=$(mktemp -d /tmp/pixgrad-chromium.XXXXXX)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$profile"
       --allow-file-access-from-files --virtual-time-budget=15000)
# The DOM after the page and its images have loaded (the browser's own log goes to stderr).
dom=$(timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" 2> "$profile/browser.log") || {
  echo "check_html_page: $browser could not render $page:" >&2
  tail -5 "$profile/browser.log" >&2
  exit 1
}
images=$(grep -o '<img [^>]*>' <<<"$dom" || true)
total=$(grep -c '<img ' <<<"$images" || true)
loaded=$(grep -c 'data-loaded=' <<<"$images" || true)
failed=$(grep 'data-failed=' <<<"$images" | grep -o 'src="[^"]*"' || true)
charts=$( { grep -o '<svg ' <<<"$dom" || true; } | wc -l)
if [ -n "$screenshot" ]; then
  timeout 120 "$browser" "${flags[@]}" --window-size=1280,2000 --screenshot="$screenshot" "$url" \
    2>> "$profile/browser.log" > /dev/null || echo "check_html_page: no screenshot written" >&2
fi
if [ -n "$failed" ] || [ "$loaded" -ne "$total" ]; then
  echo "check_html_page: $page: $loaded of $total image(s) loaded; failed: ${failed:-none reported}" >&2
  exit 1
fi
if ! grep -q '</html>\|</body>' <<<"$dom"; then
  echo "check_html_page: $page: the browser returned no document" >&2
  exit 1
fi
echo "check_html_page: $page: $total image(s) loaded, $charts chart(s)"
