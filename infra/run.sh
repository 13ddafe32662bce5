#!/usr/bin/env bash
# Runs the whole system on this machine: the servers (infra/stack.sh), the topology, the three
# services as background processes with their own least-privilege AMQP accounts, and the demo.
#
#   bash infra/run.sh up|down|status|scale N|autoscale|queue|logs [service]
#
# Ports (env): CXR_GATEWAY_PORT (8080), CXR_RESULTS_HEALTH_PORT (8082), inference replica i
# answers /health on CXR_INFERENCE_HEALTH_BASE+i (8100+i). CXR_INFERENCE_REPLICAS (1) on up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/deps.sh
source infra/deps.sh

export CXR_STACK="${CXR_STACK:-dev}"
STATE="${CXR_STATE_DIR:-$ROOT/.state/$CXR_STACK}"
SERVICES_DIR="$STATE/services"
GATEWAY_PORT="${CXR_GATEWAY_PORT:-8080}"
RESULTS_PORT="${CXR_RESULTS_HEALTH_PORT:-8082}"
INFERENCE_BASE="${CXR_INFERENCE_HEALTH_BASE:-8100}"

log() { echo "[run] $*"; }

load_env() {
  set -a
  # shellcheck disable=SC1090
  source <(bash infra/stack.sh env)
  set +a
  local secrets="$STATE/app-secrets.env"
  if [[ ! -f "$secrets" ]]; then
    # Local development only: a random admin key made once per state folder, never a default.
    (umask 077 && echo "ADMIN_API_KEY=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))')" >"$secrets")
  fi
  set -a
  # shellcheck disable=SC1090
  source "$secrets"
  set +a
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start_service NAME HEALTH_URL ENV=VALUE…
start_service() {
  local name="$1" health="$2" service="${1%%-*}"
  shift 2
  mkdir -p "$SERVICES_DIR"
  local pidfile="$SERVICES_DIR/$name.pid" logfile="$SERVICES_DIR/$name.log"
  if pid_alive "$pidfile"; then
    log "$name already running (pid $(cat "$pidfile"))"
  else
    local common=(
      "PATH=$PATH" "HOME=$HOME" "LOG_LEVEL=${LOG_LEVEL:-info}" "HOST=127.0.0.1"
      "MONGODB_URI=$MONGODB_URI" "MONGODB_DATABASE=cxr"
      "S3_ENDPOINT=$S3_ENDPOINT" "S3_REGION=$S3_REGION" "S3_BUCKET=cxr-classify"
      "S3_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID" "S3_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY"
      # The pinned SDK runs on Node 20; its notice that later releases need Node 22 is in the README.
      "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true"
    )
    setsid env -i "${common[@]}" "$@" node --import tsx "services/$service/src/server.ts" >>"$logfile" 2>&1 </dev/null &
    echo $! >"$pidfile"
    log "$name started (pid $!, log $logfile)"
  fi
  for _ in $(seq 1 120); do
    if curl -fs -o /dev/null "$health"; then return 0; fi
    if ! pid_alive "$pidfile"; then break; fi
    sleep 0.5
  done
  echo "[run] $name did not become healthy at $health; last lines of $logfile:" >&2
  tail -n 30 "$logfile" >&2 || true
  exit 1
}

start_inference() {
  local i="$1"
  start_service "inference-$i" "http://127.0.0.1:$((INFERENCE_BASE + i))/health" \
    "AMQP_URL=$AMQP_INFERENCE_URL" "HEALTH_PORT=$((INFERENCE_BASE + i))" "WORKER_ID=$(hostname)-inference-$i"
}

stop_pidfile() {
  local pidfile="$1" name
  name="$(basename "$pidfile" .pid)"
  if pid_alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 20 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name stopped"
  fi
  rm -f "$pidfile"
}

replicas_running() {
  local n=0
  for f in "$SERVICES_DIR"/inference-*.pid; do [[ -e "$f" ]] && pid_alive "$f" && n=$((n + 1)); done
  echo "$n"
}

cmd_up() {
  local started=$SECONDS
  ensure_npm_deps "$ROOT"
  bash infra/stack.sh up
  load_env
  AMQP_ADMIN_URL="$AMQP_ADMIN_URL" node --import tsx infra/tools/declare-topology.ts
  # The gateway first: it creates the bucket the workers read from.
  start_service gateway "http://127.0.0.1:$GATEWAY_PORT/health" \
    "AMQP_URL=$AMQP_GATEWAY_URL" "PORT=$GATEWAY_PORT" "ADMIN_API_KEY=$ADMIN_API_KEY"
  start_service results "http://127.0.0.1:$RESULTS_PORT/health" "AMQP_URL=$AMQP_RESULTS_URL" "HEALTH_PORT=$RESULTS_PORT"
  local replicas="${CXR_INFERENCE_REPLICAS:-1}"
  for i in $(seq 1 "$replicas"); do start_inference "$i"; done
  log "system up in $((SECONDS - started)) s: gateway http://127.0.0.1:$GATEWAY_PORT (OpenAPI at /v1/openapi.json)"
  GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" DEMO_STATE="$STATE/demo.json" node --import tsx infra/tools/demo.ts
  log "admin key for this local stack: $STATE/app-secrets.env; stop everything with ./cxr down"
}

cmd_down() {
  for f in "$SERVICES_DIR"/gateway.pid "$SERVICES_DIR"/inference-*.pid "$SERVICES_DIR"/results.pid; do
    [[ -e "$f" ]] && stop_pidfile "$f"
  done
  bash infra/stack.sh down
}

cmd_status() {
  local rc=0
  bash infra/stack.sh status || rc=1
  for f in "$SERVICES_DIR"/*.pid; do
    [[ -e "$f" ]] || continue
    if pid_alive "$f"; then echo "$(basename "$f" .pid) pid $(cat "$f") up"; else echo "$(basename "$f" .pid) down"; rc=1; fi
  done
  return "$rc"
}

# Scales inference replicas to N: the knob an autoscaler turns from the queue depth (./cxr queue).
cmd_scale() {
  local want="${1:?usage: scale N}"
  [[ "$want" =~ ^[0-9]+$ ]] || { echo "scale takes a whole number" >&2; exit 2; }
  load_env
  local have
  have="$(replicas_running)"
  for ((i = have + 1; i <= want; i++)); do start_inference "$i"; done
  for ((i = have; i > want; i--)); do stop_pidfile "$SERVICES_DIR/inference-$i.pid"; done
  log "inference replicas: $(replicas_running)"
}

# Follows the queue depth and scales inference replicas (infra/tools/autoscale.ts).
cmd_autoscale() {
  load_env
  SERVICES_DIR="$SERVICES_DIR" exec node --import tsx infra/tools/autoscale.ts
}

cmd_queue() {
  load_env
  # shellcheck disable=SC2016 # the $ and backticks belong to the JavaScript
  curl -fsS -K <(printf 'user = "%s:%s"\n' "$RABBITMQ_ADMIN_USER" "$RABBITMQ_ADMIN_PASSWORD") "$RABBITMQ_MANAGEMENT_URL/api/queues/cxr" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const q of JSON.parse(s))console.log(`${q.name.padEnd(18)} ready ${String(q.messages_ready??0).padStart(6)}  unacked ${String(q.messages_unacknowledged??0).padStart(6)}  consumers ${q.consumers??0}`)})'
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  scale) cmd_scale "${2:-}" ;;
  queue) cmd_queue ;;
  autoscale) cmd_autoscale ;;
  logs) tail -n 50 -F "$SERVICES_DIR"/"${2:-*}".log ;;
  *) echo "usage: bash infra/run.sh up|down|status|scale N|autoscale|queue|logs [service]" >&2; exit 2 ;;
esac
