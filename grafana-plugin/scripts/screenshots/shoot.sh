#!/bin/sh
# Renders the editors with the real @grafana/ui (editors.test.tsx, jsdom) to
# HTML and photographs each page with headless Chromium into src/img/, where
# plugin.json's screenshots and the README point. Needs Debian's chromium
# (apt-get install chromium fonts-noto-cjk); not part of CI.
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
SCREENSHOTS_OUT=$out npx jest --rootDir . --testMatch '<rootDir>/scripts/screenshots/*.test.tsx' scripts/screenshots
command -v chromium >/dev/null || { echo "chromium is not installed: apt-get install chromium fonts-noto-cjk" >&2; exit 1; }
for html in "$out"/*.html; do
	name=$(basename "$html" .html)
	case $name in
	config-editor) size=800,600 ;;
	variable-editor) size=1040,130 ;;
	*) size=1220,170 ;;
	esac
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=$size \
		--screenshot="src/img/$name.png" "file://$html" 2>/dev/null
	echo "src/img/$name.png"
done
