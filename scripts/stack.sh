#!/usr/bin/env bash
# A stack to look at, on this machine: the exporter's demo (embedded NATS with
# JetStream, synthetic traffic), Debian's Prometheus with the shipped rules
# (alerts/*.yml) and Alertmanager with the shipped routing
# (deploy/alertmanager/alertmanager.yml), all on loopback, on free ports.
# Ctrl-C (or SIGTERM) stops them together; so does any of them exiting.
#
#   scripts/stack.sh            # needs Go and: apt-get install prometheus prometheus-alertmanager
#
# Environment: STACK_DIR (working directory, default a fresh temporary one,
# removed on exit unless given), STACK_DEMO_RATE (events/s, default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "stack: $1 not found: apt-get install $2 (scripts/test.sh installs it too)" >&2
    exit 1
  }
}
need prometheus prometheus
need prometheus-alertmanager prometheus-alertmanager
need go golang

if [ -n "${STACK_DIR:-}" ]; then
  dir=$STACK_DIR
  mkdir -p "$dir"
  keep=1
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/faceid-stack.XXXXXX")
  keep=0
fi

# free_port prints a loopback TCP port nobody listens on (and that this
# script has not handed out yet).
taken=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    case "$taken" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      taken="$taken$p "
      echo "$p"
      return
    fi
  done
  echo "stack: no free port found" >&2
  exit 1
}
exporter_port=$(free_port)
nats_port=$(free_port)
prom_port=$(free_port)
am_port=$(free_port)
am_cluster_port=$(free_port)

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stack: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$keep" = 0 ]; then rm -rf "$dir"; fi
  echo "stack: stopped"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

echo "stack: building the exporter into $dir"
go build -o "$dir/exporter" ./cmd/exporter

# The local Prometheus configuration with this run's ports and an absolute
# path to the shipped rules.
sed -e "s|'127.0.0.1:9479'|'127.0.0.1:$exporter_port'|" \
    -e "s|'127.0.0.1:9093'|'127.0.0.1:$am_port'|" \
    -e "s|\.\./\.\./alerts/\*\.yml|$root/alerts/*.yml|" \
    deploy/prometheus/prometheus.local.yml > "$dir/prometheus.yml"
cp deploy/alertmanager/alertmanager.yml "$dir/alertmanager.yml"

"$dir/exporter" --demo --demo.rate="${STACK_DEMO_RATE:-50}" \
  --web.listen-address="127.0.0.1:$exporter_port" \
  --nats.embedded.listen="127.0.0.1:$nats_port" \
  --nats.embedded.store-dir="$dir/nats" >"$dir/exporter.log" 2>&1 &
pids+=($!)
exporter_pid=$!

prometheus --config.file="$dir/prometheus.yml" \
  --web.listen-address="127.0.0.1:$prom_port" \
  --storage.tsdb.path="$dir/prometheus-data" >"$dir/prometheus.log" 2>&1 &
pids+=($!)

prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
  --web.listen-address="127.0.0.1:$am_port" \
  --cluster.listen-address="127.0.0.1:$am_cluster_port" \
  --storage.path="$dir/alertmanager-data" >"$dir/alertmanager.log" 2>&1 &
pids+=($!)

# wait_port waits until something listens on a port, or gives up.
wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "stack: $name did not listen on 127.0.0.1:$port within 60s; its log: $dir/$name.log" >&2
  tail -20 "$dir/$name.log" >&2 || true
  exit 1
}
wait_port exporter "$exporter_port"
wait_port prometheus "$prom_port"
wait_port alertmanager "$am_port"

cat <<EOF

stack: running (Ctrl-C stops everything)
  exporter      http://127.0.0.1:$exporter_port/   (pid $exporter_pid; metrics, API, ledger)
  prometheus    http://127.0.0.1:$prom_port/alerts   (rules: http://127.0.0.1:$prom_port/rules, targets: http://127.0.0.1:$prom_port/targets)
  alertmanager  http://127.0.0.1:$am_port/          (routing of deploy/alertmanager/alertmanager.yml; its webhooks point nowhere here)
  nats          nats://127.0.0.1:$nats_port       (publish more: $dir/exporter simulate --nats.url nats://127.0.0.1:$nats_port --scenario billable-failure-spike)
  logs          $dir/{exporter,prometheus,alertmanager}.log
  dashboards    need Grafana (not in Debian): see docs/stack.md
  an alert now: kill -STOP $exporter_pid   (FaceIDExporterDown fires after 2 minutes; kill -CONT $exporter_pid to resume)
EOF

# Stop together: when any of them exits, or on Ctrl-C.
set +e
wait -n "${pids[@]}"
keep=1
echo "stack: a process exited; see the logs in $dir" >&2
exit 1
