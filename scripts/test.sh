#!/usr/bin/env bash
# Installs what the tests need (Debian packages, Go tools) and runs every test.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Debian packages: promtool/prometheus and amtool/alertmanager for the rule,
# routing and end-to-end tests.
need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
if [ ${#need_apt[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Helm for the chart tests (deploy/helm): built from the Go module proxy,
# outside the main module, into .tools/bin (a few minutes the first time).
HELM_VERSION=v3.22.0
export HELM="$root/.tools/bin/helm"
if ! go version -m "$HELM" 2>/dev/null | grep -q "helm.sh/helm/v3[[:space:]]*${HELM_VERSION}"; then
  echo "== go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  GOBIN="$root/.tools/bin" go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi
echo "== helm lint --strict"
"$HELM" lint --strict --kube-version 1.33.0 deploy/helm/faceid-exporter
"$HELM" lint --strict --kube-version 1.33.0 deploy/helm/faceid-exporter -f deploy/helm/faceid-exporter/ci/all-on-values.yaml

echo "== go test ./... (exporter module)"
go test -count=1 ./...

echo "== fuzz: decode+classify, briefly"
go test -run '^$' -fuzz '^FuzzClassify$' -fuzztime "${FUZZTIME:-20s}" ./pkg/classify
echo "== fuzz: the decoder and its lexer against encoding/json and time.Parse, briefly"
for target in FuzzDecodeMatchesEncodingJSON FuzzParseRFC3339MatchesTimeParse; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME_ORACLE:-10s}" ./pkg/classify
done
for target in FuzzSkip FuzzString; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME_ORACLE:-10s}" ./internal/jsonscan
done
echo "== fuzz: the other decoders (ledger CSV, Tencent bill pages, checkpoint records and values), briefly"
go test -run '^$' -fuzz '^FuzzReadCSV$' -fuzztime "${FUZZTIME_DECODERS:-5s}" ./pkg/ledger
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "${FUZZTIME_DECODERS:-5s}" ./pkg/tencentbill
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "${FUZZTIME_DECODERS:-5s}" ./pkg/checkpoint
go test -run '^$' -fuzz '^FuzzRestore$' -fuzztime "${FUZZTIME_DECODERS:-5s}" ./pkg/books

echo "== grafana-plugin: gofmt, vet, tests (own module; builds and runs ../cmd/exporter)"
(cd grafana-plugin && test -z "$(gofmt -l .)" && go vet ./... && go test -count=1 -timeout 15m ./...)

echo "== deploy/compose: the compose file through the compose-spec loader (own module; builds ./cmd/exporter)"
(cd deploy/compose && test -z "$(gofmt -l .)" && go vet ./... && go mod tidy -diff && go test -count=1 ./...)

echo "== grafana-plugin: frontend (node --test)"
node --test grafana-plugin/test/module.test.js

echo "== grafana-plugin: build dist/ for every platform Grafana runs on"
grafana-plugin/build.sh
