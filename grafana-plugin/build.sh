#!/bin/sh
# Builds the FaceID verification datasource plugin into dist/: the backend
# gpx_faceid for every platform Grafana runs on, plus plugin.json, module.js,
# the logo and the README. The frontend is a hand-written AMD module: no npm
# install, no bundler.
#
# Usage: ./build.sh                 all platforms
#        PLATFORMS="linux/amd64" ./build.sh
set -eu

cd "$(dirname "$0")"
PLATFORMS=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"}
VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' src/plugin.json | head -n 1)

rm -rf dist
mkdir -p dist/img
for p in $PLATFORMS; do
	os=${p%/*}
	arch=${p#*/}
	out="dist/gpx_faceid_${os}_${arch}"
	[ "$os" = windows ] && out="$out.exe"
	echo "build $out"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w" -o "$out" ./pkg
done
cp src/plugin.json src/module.js dist/
cp src/img/logo.svg dist/img/
cp README.md dist/README.md
echo "dist/ holds faceid-verification-datasource $VERSION"
