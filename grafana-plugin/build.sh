#!/bin/sh
# Builds the FaceID verification datasource plugin into dist/ the supported
# way: the frontend with @grafana/create-plugin's webpack config
# (npm run build: module.js and its source map, plugin.json, README, LICENSE,
# CHANGELOG, images) and the backend with the plugin SDK's standard mage
# build (Magefile.go: build.BuildAll), which names the binaries after
# plugin.json's "executable": dist/gpx_faceid_<os>_<arch>[.exe] for
# linux/amd64, linux/arm64, linux/arm, darwin/amd64, darwin/arm64 and
# windows/amd64, plus dist/go_plugin_build_manifest.
#
# Mage is not installed: `go run` builds it from the version go.mod pins.
# npm ci runs first when node_modules is missing.
#
# Usage: ./build.sh            frontend and backend
#        ./build.sh frontend   npm run build only
#        ./build.sh backend    mage only
set -eu

cd "$(dirname "$0")"
what=${1:-all}

if [ "$what" = all ] || [ "$what" = frontend ]; then
	[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund
	npm run build
fi
if [ "$what" = all ] || [ "$what" = backend ]; then
	go run github.com/magefile/mage -v
fi
echo "dist/ holds $(sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' src/plugin.json | head -n 1) $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' src/plugin.json | head -n 1)"
