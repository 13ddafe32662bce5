#!/usr/bin/env bash
# Runs the whole system on this machine: the servers (infra/stack.sh), the topology, the three
# services, each under a supervisor that restarts it, with their own least-privilege AMQP
# accounts, and the demo.
#
#   bash infra/run.sh up|down|stop-services|status|scale N|autoscale|queue|logs [service]
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
  # Local development only: random keys made once per state folder, never a default (a state
  # folder from before webhooks gets its signing key added).
  local key
  for key in ADMIN_API_KEY WEBHOOK_SIGNING_KEY; do
    if ! grep -qs "^$key=" "$secrets"; then
      (umask 077 && echo "$key=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))')" >>"$secrets")
    fi
  done
  set -a
  # shellcheck disable=SC1090
  source "$secrets"
  set +a
  S3_COMMON=("S3_ENDPOINT=$S3_ENDPOINT" "S3_REGION=$S3_REGION" "S3_BUCKET=$S3_BUCKET")
}

# Every service (gateway, results, inference-i) runs in a "slot" under its own supervisor
# (infra/tools/supervise.ts), which restarts it with back-off whenever it exits unasked. Files of
# slot NAME in $SERVICES_DIR: NAME.supervisor.pid, NAME.child.pid (absent between runs),
# NAME.state (status, restarts, last exit) and NAME.log. Supervisor and child carry
# CXR_SLOT=$SERVICES_DIR/NAME in their environment, so a pid file whose process has gone and
# whose number was reused by someone else's process is never mistaken for ours.
STOP_GRACE_SECONDS=20

# slot_pid NAME supervisor|child: prints the pid in that pid file if it is a live process of this slot.
slot_pid() {
  local name="$1" pid
  pid="$(cat "$SERVICES_DIR/$name.$2.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && owned_by_slot "$pid" "$name" && echo "$pid"
}

# owned_by_slot PID NAME: PID is alive, not a zombie, and was started for slot NAME of this state folder.
owned_by_slot() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]] || return 1
  tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qxF "CXR_SLOT=$SERVICES_DIR/$2"
}

# legacy_pid NAME: a service started before supervision (NAME.pid) that is still running from this checkout.
legacy_pid() {
  local pid
  pid="$(cat "$SERVICES_DIR/$1.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$ROOT" ]] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "services/${1%%-*}/src/server.ts" && echo "$pid"
}

# state_get NAME KEY: a value from the slot's state file (written by its supervisor), or "-".
state_get() {
  local value
  value="$(sed -n "s/^$2=//p" "$SERVICES_DIR/$1.state" 2>/dev/null | head -n 1)"
  echo "${value:--}"
}

# wait_gone PID SECONDS: true once PID has exited (or is a zombie) within SECONDS.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# term_then_kill NAME WHAT PID: SIGTERM, up to STOP_GRACE_SECONDS, then SIGKILL.
term_then_kill() {
  kill -TERM "$3" 2>/dev/null || return 0
  if ! wait_gone "$3" "$STOP_GRACE_SECONDS"; then
    log "$1: $2 (pid $3) did not stop in $STOP_GRACE_SECONDS s; SIGKILL"
    kill -KILL "$3" 2>/dev/null || true
    wait_gone "$3" 5 || true
  fi
}

# stop_slot NAME: stops whatever runs in the slot and removes its pid and state files. The
# supervisor relays SIGTERM to its child, gives it STOP_GRACE_SECONDS, then SIGKILLs it, and
# does not restart it; a child left without its supervisor gets the same treatment from here.
stop_slot() {
  local name="$1" pid stopped="" f
  for f in supervisor.pid child.pid state pid; do [[ -e "$SERVICES_DIR/$name.$f" ]] && break; done
  [[ -e "$SERVICES_DIR/$name.$f" ]] || return 0 # nothing of this slot
  if pid="$(slot_pid "$name" supervisor)"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" $((STOP_GRACE_SECONDS + 5)); then
      log "$name: supervisor (pid $pid) did not stop; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    stopped="supervisor pid $pid"
  fi
  if pid="$(slot_pid "$name" child)"; then
    log "$name: child (pid $pid) has no supervisor; stopping it"
    term_then_kill "$name" child "$pid"
    stopped="${stopped:+$stopped, }child pid $pid"
  fi
  if pid="$(legacy_pid "$name")"; then
    log "$name: unsupervised process from before (pid $pid); stopping it"
    term_then_kill "$name" process "$pid"
    stopped="${stopped:+$stopped, }pid $pid"
  fi
  rm -f "$SERVICES_DIR/$name.supervisor.pid" "$SERVICES_DIR/$name.child.pid" "$SERVICES_DIR/$name.state" "$SERVICES_DIR/$name.pid"
  if [[ -n "$stopped" ]]; then log "$name stopped ($stopped)"; else log "$name was not running; its files are removed"; fi
}

# Restarts of each slot when ensure_slot saw it, so await_healthy notices any exit after that.
declare -A RESTARTS_BEFORE=()

# ensure_slot NAME ENV=VALUE…: starts the slot's supervisor (which starts the service) unless it
# is alive. Leftovers of the slot go first: a child whose supervisor died holds the port.
ensure_slot() {
  local name="$1" service="${1%%-*}" pid
  shift
  RESTARTS_BEFORE[$name]=0
  if pid="$(slot_pid "$name" supervisor)"; then
    RESTARTS_BEFORE[$name]="$(state_get "$name" restarts)"
    log "$name already running (supervisor pid $pid, child pid $(slot_pid "$name" child || echo "- (restarting)"))"
    return 0
  fi
  if slot_pid "$name" child >/dev/null || legacy_pid "$name" >/dev/null; then stop_slot "$name"; fi
  rm -f "$SERVICES_DIR/$name.supervisor.pid" "$SERVICES_DIR/$name.child.pid" "$SERVICES_DIR/$name.state"
  local logfile="$SERVICES_DIR/$name.log"
  local common=(
    "PATH=$PATH" "HOME=$HOME" "LOG_LEVEL=${LOG_LEVEL:-info}" "HOST=127.0.0.1"
    "CXR_SLOT=$SERVICES_DIR/$name"
  )
  # 9>&-: the supervisor must not hold the services lock.
  setsid env -i "${common[@]}" "$@" \
    node --import tsx infra/tools/supervise.ts --name "$name" --dir "$SERVICES_DIR" --stop-grace-seconds "$STOP_GRACE_SECONDS" \
    -- node --import tsx "services/$service/src/server.ts" >>"$logfile" 2>&1 </dev/null 9>&- &
  echo $! >"$SERVICES_DIR/$name.supervisor.pid"
  log "$name started under its supervisor (pid $!, log $logfile)"
}

# await_healthy NAME HEALTH_URL: waits up to 60 s for /health; stops `up` or `scale` with the log's
# tail when the supervisor is gone or the service exits before answering (its supervisor keeps
# retrying it with back-off until ./cxr down).
await_healthy() {
  local name="$1" health="$2" logfile="$SERVICES_DIR/$1.log" why="no answer in 60 s"
  for _ in $(seq 1 120); do
    if curl -fs -o /dev/null "$health"; then return 0; fi
    if ! slot_pid "$name" supervisor >/dev/null; then
      why="its supervisor is gone"
      break
    fi
    if [[ "$(state_get "$name" restarts)" != "${RESTARTS_BEFORE[$name]:-0}" && "$(state_get "$name" status)" == backoff ]]; then
      why="it exited ($(state_get "$name" last_exit)); its supervisor keeps restarting it with back-off"
      break
    fi
    sleep 0.5
  done
  echo "[run] $name did not become healthy at $health: $why; last lines of $logfile:" >&2
  tail -n 30 "$logfile" >&2 || true
  exit 1
}

# replica_slots: the replica numbers that have any pid or state file, highest first.
replica_slots() {
  local f n
  for f in "$SERVICES_DIR"/inference-*; do
    n="${f##*/inference-}"
    n="${n%%.*}"
    case "$f" in *.supervisor.pid | *.child.pid | *.state | *.pid) [[ "$n" =~ ^[0-9]+$ ]] && echo "$n" ;; esac
  done | sort -rnu
}

# Only one ./cxr up, scale or down changes the services at a time (./cxr autoscale runs scale).
lock_services() {
  mkdir -p "$SERVICES_DIR"
  exec 9>"$SERVICES_DIR/.lock"
  flock -w 120 9 || { echo "[run] another ./cxr up, scale or down holds $SERVICES_DIR/.lock" >&2; exit 1; }
}

# ensure_replicas N: replica i = 1..N, each checked by its own pid files, is started when its
# supervisor is not alive, whatever the others do; then all N must answer /health.
ensure_replicas() {
  local want="$1" i
  for ((i = 1; i <= want; i++)); do
    ensure_slot "inference-$i" "AMQP_URL=$AMQP_INFERENCE_URL" "${S3_COMMON[@]}" \
      "S3_ACCESS_KEY_ID=$S3_INFERENCE_ACCESS_KEY_ID" "S3_SECRET_ACCESS_KEY=$S3_INFERENCE_SECRET_ACCESS_KEY" \
      "HEALTH_PORT=$((INFERENCE_BASE + i))" \
      "WORKER_ID=$(hostname)-inference-$i"
  done
  for ((i = 1; i <= want; i++)); do await_healthy "inference-$i" "http://127.0.0.1:$((INFERENCE_BASE + i))/health"; done
}

# reconcile_replicas N: exactly replicas 1..N run: the missing ones are started, and every replica
# above N is stopped whatever its state (alive, dead, only files left), its files removed.
reconcile_replicas() {
  local want="$1" i
  for i in $(replica_slots); do
    if ((i > want)); then stop_slot "inference-$i"; fi
  done
  ensure_replicas "$want"
}

cmd_up() {
  local started=$SECONDS
  ensure_npm_deps "$ROOT"
  bash infra/stack.sh up
  load_env
  lock_services
  AMQP_ADMIN_URL="$AMQP_ADMIN_URL" node --import tsx infra/tools/declare-topology.ts
  # Each service gets its own accounts (infra/stack.sh made them) and none it does not use:
  # inference has no database account, results no S3 account.
  ensure_slot gateway "AMQP_URL=$AMQP_GATEWAY_URL" "MONGODB_URI=$MONGODB_GATEWAY_URI" "MONGODB_DATABASE=$MONGODB_DATABASE" \
    "${S3_COMMON[@]}" "S3_ACCESS_KEY_ID=$S3_GATEWAY_ACCESS_KEY_ID" "S3_SECRET_ACCESS_KEY=$S3_GATEWAY_SECRET_ACCESS_KEY" \
    "PORT=$GATEWAY_PORT" "ADMIN_API_KEY=$ADMIN_API_KEY" "WEBHOOK_SIGNING_KEY=$WEBHOOK_SIGNING_KEY" \
    "WEBHOOK_ALLOWED_NETWORKS=${WEBHOOK_ALLOWED_NETWORKS-127.0.0.0/8}"
  await_healthy gateway "http://127.0.0.1:$GATEWAY_PORT/health"
  ensure_slot results "AMQP_URL=$AMQP_RESULTS_URL" "MONGODB_URI=$MONGODB_RESULTS_URI" "MONGODB_DATABASE=$MONGODB_DATABASE" \
    "HEALTH_PORT=$RESULTS_PORT"
  await_healthy results "http://127.0.0.1:$RESULTS_PORT/health"
  # Replicas started by an earlier ./cxr scale beyond CXR_INFERENCE_REPLICAS are left running.
  ensure_replicas "${CXR_INFERENCE_REPLICAS:-1}"
  log "system up in $((SECONDS - started)) s: gateway http://127.0.0.1:$GATEWAY_PORT (web page at /, API docs at /docs, OpenAPI at /v1/openapi.json)"
  GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" DEMO_STATE="$STATE/demo.json" node --import tsx infra/tools/demo.ts
  log "admin key for this local stack: $STATE/app-secrets.env; stop everything with ./cxr down"
}

# Stops every service of this state folder (gateway, replicas, results) and leaves the servers up.
stop_services() {
  local i
  stop_slot gateway
  for i in $(replica_slots); do stop_slot "inference-$i"; done
  stop_slot results
}

cmd_down() {
  lock_services
  stop_services
  bash infra/stack.sh down
}

# The services alone, e.g. after a test ran a system on a stack that others keep using.
cmd_stop_services() {
  lock_services
  stop_services
}

# One line per slot: its supervisor, its child, the restarts so far and whether it is up.
slot_status() {
  local name="$1" sup child state=down
  sup="$(slot_pid "$name" supervisor)" || sup=""
  child="$(slot_pid "$name" child)" || child=""
  if [[ -n "$child" ]]; then
    state=up
    [[ -n "$sup" ]] || state="up (unsupervised: ./cxr up or scale restarts it under a supervisor)"
  elif [[ -n "$sup" ]]; then
    state="down (restart due $(state_get "$name" next_restart))"
  fi
  local supervisor="${sup:+alive pid $sup}"
  printf '%-12s supervisor %-15s child %-8s restarts %-4s %s' "$name" "${supervisor:-dead}" "${child:--}" \
    "$(state_get "$name" restarts)" "$state"
  if [[ "$(state_get "$name" last_exit)" != - ]]; then printf '  (last exit: %s)' "$(state_get "$name" last_exit)"; fi
  printf '\n'
  [[ -n "$sup" && -n "$child" ]]
}

cmd_status() {
  local rc=0 i name
  bash infra/stack.sh status || rc=1
  for name in gateway results; do
    if [[ -e "$SERVICES_DIR/$name.supervisor.pid" || -e "$SERVICES_DIR/$name.state" ]]; then slot_status "$name" || rc=1; fi
  done
  for i in $(replica_slots | sort -n); do slot_status "inference-$i" || rc=1; done
  return "$rc"
}

# Scales inference replicas to N: the knob an autoscaler turns from the queue depth (./cxr queue).
# Each replica is checked by its own pid files, so a dead replica 1 is restarted even when 2 lives.
cmd_scale() {
  local want="${1:?usage: scale N}"
  [[ "$want" =~ ^[0-9]+$ ]] || { echo "scale takes a whole number" >&2; exit 2; }
  load_env
  lock_services
  reconcile_replicas "$want"
  log "inference replicas: $want"
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

# What starts services runs them on a supported Node.js (infra/deps.sh).
case "${1:-}" in up | scale | autoscale) ensure_node ;; esac
case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  stop-services) cmd_stop_services ;;
  status) cmd_status ;;
  scale) cmd_scale "${2:-}" ;;
  queue) cmd_queue ;;
  autoscale) cmd_autoscale ;;
  logs) tail -n 50 -F "$SERVICES_DIR"/"${2:-*}".log ;;
  *) echo "usage: bash infra/run.sh up|down|stop-services|status|scale N|autoscale|queue|logs [service]" >&2; exit 2 ;;
esac
