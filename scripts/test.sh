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
# curl: the README's quick start, run by go test ./docs.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
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

# e2e/exactly runs a short pass of randomized fault schedules (TestChaosSingle,
# TestChaosCluster: a few new seeds each run); each seed's result and its rerun
# command go to the report printed below, pass or fail. e2e/exactly's
# fault tests together can outlast go test's default 10-minute limit on a
# loaded machine, hence -timeout.
# FACEID_CHAOS_SEEDS_SINGLE / FACEID_CHAOS_SEEDS_CLUSTER (comma-separated) run
# named seeds instead of new ones.
echo "== go test ./... (exporter module)"
chaos_report=$(mktemp)
if ! FACEID_CHAOS_REPORT="$chaos_report" go test -count=1 -timeout 30m ./...; then
  echo "== randomized fault schedules (e2e/exactly), seeds used:"; cat "$chaos_report"; rm -f "$chaos_report"
  exit 1
fi
echo "== randomized fault schedules (e2e/exactly), seeds used:"; cat "$chaos_report"; rm -f "$chaos_report"

echo "== go test -race: the concurrent packages (partitions, group, books, checkpoints, collectors, pipeline)"
go test -race -count=1 ./pkg/stream ./pkg/books ./pkg/dedupe ./pkg/checkpoint ./pkg/metrics ./pkg/service

# Fuzz budgets are execution counts (-fuzztime Nx), not durations: with a
# duration, Go 1.26's fuzz coordinator can report a spurious "context deadline
# exceeded" failure when the time runs out while a worker is mid-call
# (golang/go#75804, fixed in Go 1.27). A count has no deadline to race.
echo "== fuzz: decode+classify, briefly"
go test -run '^$' -fuzz '^FuzzClassify$' -fuzztime "${FUZZTIME:-400000x}" ./pkg/classify
echo "== fuzz: the decoder and its lexer against encoding/json and time.Parse, briefly"
for target in FuzzDecodeMatchesEncodingJSON FuzzParseRFC3339MatchesTimeParse; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME_ORACLE:-200000x}" ./pkg/classify
done
for target in FuzzSkip FuzzString; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME_ORACLE:-200000x}" ./internal/jsonscan
done
echo "== fuzz: the partition reader's reply-subject fast path against the whole-subject parse, briefly"
go test -run '^$' -fuzz '^FuzzParseAckTail$' -fuzztime "${FUZZTIME_ORACLE:-200000x}" ./pkg/stream
echo "== fuzz: the dead-letter redactor (no listed field survives at any depth, every other one does), briefly"
go test -run '^$' -fuzz '^FuzzRedact$' -fuzztime "${FUZZTIME_ORACLE:-200000x}" ./pkg/redact
echo "== fuzz: the other decoders (ledger CSV, Tencent bill pages, checkpoint records and values), briefly"
go test -run '^$' -fuzz '^FuzzReadCSV$' -fuzztime "${FUZZTIME_DECODERS:-50000x}" ./pkg/ledger
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "${FUZZTIME_DECODERS:-50000x}" ./pkg/tencentbill
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "${FUZZTIME_DECODERS:-50000x}" ./pkg/checkpoint
# FuzzRestore runs ~10x slower per input than the others (it builds books).
go test -run '^$' -fuzz '^FuzzRestore$' -fuzztime "${FUZZTIME_RESTORE:-10000x}" ./pkg/books
echo "== fuzz: the reference model against classify+books on short streams (e2e/hostile), briefly"
go test -run '^$' -fuzz '^FuzzModelAgrees$' -fuzztime "${FUZZTIME_MODEL:-10000x}" ./e2e/hostile

echo "== deploy/compose: the compose file through the compose-spec loader (own module; builds ./cmd/exporter)"
(cd deploy/compose && test -z "$(gofmt -l .)" && go vet ./... && go mod tidy -diff && go test -count=1 ./...)

# The plugin: the frontend with @grafana/create-plugin's toolchain, the
# backend with the SDK's mage build, then the Go tests, whose dist/ loader
# test reads what the two builds made. npm ci reads the npm cache first, and
# is skipped when grafana-plugin/node_modules (gitignored) was installed from
# the same package-lock.json by the same Node.
echo "== grafana-plugin: frontend (npm ci, typecheck, eslint, jest on the real @grafana/ui, webpack build)"
(
  cd grafana-plugin
  stamp="$(sha256sum package-lock.json | cut -d' ' -f1) node $(node --version)"
  if [ -f node_modules/.faceid-installed ] && [ "$(cat node_modules/.faceid-installed)" = "$stamp" ]; then
    echo "node_modules is installed from this package-lock.json; npm ci skipped"
  else
    npm ci --prefer-offline --no-audit --no-fund
    echo "$stamp" > node_modules/.faceid-installed
  fi
  npm run typecheck
  npm run lint
  npm run test
  npm run build
)

echo "== grafana-plugin: backend build (SDK build.BuildAll: gpx_faceid_<os>_<arch> for every platform)"
grafana-plugin/build.sh backend

echo "== grafana-plugin: gofmt, vet, tests (own module, ./pkg/...: node_modules holds Go files too; builds and runs ../cmd/exporter; checks dist/)"
(cd grafana-plugin && test -z "$(gofmt -l pkg Magefile.go)" && go vet ./pkg/... && go test -count=1 -timeout 15m ./pkg/...)
