#!/usr/bin/env bash
# Local server stack for CXR Classify: RabbitMQ, FerretDB (MongoDB API) on PostgreSQL (or
# SQLite), VersityGW (S3).
#
#   bash infra/stack.sh up|status|down|env
#   bash infra/stack.sh start|stop rabbitmq|postgres|ferretdb|s3   (one server, e.g. to inject faults)
#
# Environment (all optional): CXR_STACK=dev|test, CXR_STATE_DIR, CXR_CACHE_DIR,
# CXR_DB_BACKEND=postgresql|sqlite (FerretDB's storage; default postgresql),
# CXR_AMQP_PORT, CXR_RABBITMQ_MGMT_PORT, CXR_RABBITMQ_DIST_PORT, CXR_EPMD_PORT,
# CXR_MONGO_PORT, CXR_S3_PORT, CXR_PG_PORT, CXR_FERRETDB_INDEX_INTERVAL (1s; 0 = no index
# keeper), CXR_DB_NAME (cxr) and CXR_S3_BUCKET (cxr-classify): the database and bucket the
# services' own accounts may use. Test-stack defaults are the dev ports + 10.
set -euo pipefail

# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=infra/servers/rabbitmq.sh
source "$INFRA_DIR/servers/rabbitmq.sh"
# shellcheck source=infra/servers/postgres.sh
source "$INFRA_DIR/servers/postgres.sh"
# shellcheck source=infra/servers/ferretdb.sh
source "$INFRA_DIR/servers/ferretdb.sh"
# shellcheck source=infra/servers/s3.sh
source "$INFRA_DIR/servers/s3.sh"

SERVERS=(rabbitmq postgres ferretdb s3)

usage() {
  local names
  names="$(
    IFS='|'
    echo "${SERVERS[*]}"
  )"
  echo "usage: [CXR_STACK=dev|test] [CXR_DB_BACKEND=postgresql|sqlite] bash infra/stack.sh up|status|down|env" >&2
  echo "       bash infra/stack.sh start|stop $names" >&2
  exit 2
}

# Serialise up/down of one state dir (e.g. two terminals running 'up' at once).
lock_state_dir() {
  mkdir -p "$CXR_STATE_DIR"
  exec 8>"$CXR_STATE_DIR/.stack.lock"
  flock 8
}

# shell-safe single quoting for stack.env
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_stack_env() {
  local amqp="$LOOPBACK:$CXR_AMQP_PORT/cxr" tmp="$STACK_ENV_FILE.tmp.$$"
  (
    umask 077
    {
      echo "CXR_STACK=$(q "$CXR_STACK")"
      echo "AMQP_ADMIN_URL=$(q "amqp://cxr-admin:$CXR_RABBITMQ_ADMIN_PASSWORD@$amqp")"
      echo "AMQP_GATEWAY_URL=$(q "amqp://cxr-gateway:$CXR_RABBITMQ_GATEWAY_PASSWORD@$amqp")"
      echo "AMQP_INFERENCE_URL=$(q "amqp://cxr-inference:$CXR_RABBITMQ_INFERENCE_PASSWORD@$amqp")"
      echo "AMQP_RESULTS_URL=$(q "amqp://cxr-results:$CXR_RABBITMQ_RESULTS_PASSWORD@$amqp")"
      echo "RABBITMQ_MANAGEMENT_URL=$(q "http://$LOOPBACK:$CXR_RABBITMQ_MGMT_PORT")"
      echo "RABBITMQ_ADMIN_USER=$(q cxr-admin)"
      echo "RABBITMQ_ADMIN_PASSWORD=$(q "$CXR_RABBITMQ_ADMIN_PASSWORD")"
      # MONGODB_URI and S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY are the owner's and root's: for
      # the setup tools and the tests (which make databases and buckets of their own). Each
      # service gets its own account below, with rights on MONGODB_DATABASE and S3_BUCKET only.
      echo "MONGODB_URI=$(q "$(mongodb_uri "$PG_ROLE" "$CXR_PG_FERRETDB_PASSWORD")")"
      echo "MONGODB_DATABASE=$(q "$CXR_DB_NAME")"
      echo "MONGODB_GATEWAY_URI=$(q "$(mongodb_uri "$PG_GATEWAY_ROLE" "$CXR_PG_GATEWAY_PASSWORD")")"
      echo "MONGODB_RESULTS_URI=$(q "$(mongodb_uri "$PG_RESULTS_ROLE" "$CXR_PG_RESULTS_PASSWORD")")"
      echo "S3_ENDPOINT=$(q "http://$LOOPBACK:$CXR_S3_PORT")"
      echo "S3_REGION=$(q us-east-1)"
      echo "S3_BUCKET=$(q "$CXR_S3_BUCKET")"
      echo "S3_ACCESS_KEY_ID=$(q "$CXR_S3_ACCESS_KEY")"
      echo "S3_SECRET_ACCESS_KEY=$(q "$CXR_S3_SECRET_KEY")"
      echo "S3_GATEWAY_ACCESS_KEY_ID=$(q "$S3_GATEWAY_ACCESS_KEY")"
      echo "S3_GATEWAY_SECRET_ACCESS_KEY=$(q "$CXR_S3_GATEWAY_SECRET_KEY")"
      echo "S3_INFERENCE_ACCESS_KEY_ID=$(q "$S3_INFERENCE_ACCESS_KEY")"
      echo "S3_INFERENCE_SECRET_ACCESS_KEY=$(q "$CXR_S3_INFERENCE_SECRET_KEY")"
    } >"$tmp"
  )
  mv "$tmp" "$STACK_ENV_FILE"
  chmod 600 "$STACK_ENV_FILE"
}

cmd_up() {
  local start=$SECONDS
  lock_state_dir
  mkdir -p "$LOG_DIR" "$PID_DIR"
  load_secrets
  log "stack '$CXR_STACK', state dir $CXR_STATE_DIR"
  rabbitmq_up
  if [[ "$CXR_DB_BACKEND" == postgresql ]]; then
    postgres_up
  fi
  ferretdb_up
  s3_up
  write_stack_env
  log "all servers up in $((SECONDS - start))s; environment: $STACK_ENV_FILE (bash infra/stack.sh env)"
}

cmd_status() {
  local rc=0
  rabbitmq_status || rc=1
  if [[ "$CXR_DB_BACKEND" == postgresql ]]; then
    postgres_status || rc=1
  fi
  ferretdb_status || rc=1
  s3_status || rc=1
  return "$rc"
}

cmd_down() {
  lock_state_dir
  log "stopping stack '$CXR_STACK' ($CXR_STATE_DIR)"
  s3_down
  ferretdb_down
  postgres_down # whatever CXR_DB_BACKEND says now: it may have been up from an earlier 'up'
  rabbitmq_down
  # Nothing of this stack may remain: check every port it owns.
  local p left=()
  for p in "$CXR_AMQP_PORT" "$CXR_RABBITMQ_MGMT_PORT" "$CXR_RABBITMQ_DIST_PORT" "$CXR_EPMD_PORT" "$CXR_MONGO_PORT" "$CXR_S3_PORT" "$CXR_PG_PORT"; do
    port_open "$p" && left+=("$p")
  done
  if ((${#left[@]})); then
    echo "[stack] ERROR: ports still listening after down: ${left[*]}" >&2
    for p in "${left[@]}"; do ss -ltnpH "sport = :$p" >&2 || true; done
    exit 1
  fi
  log "stack '$CXR_STACK' is down (data kept in $CXR_STATE_DIR)"
}

# cmd_one start|stop NAME: one server's own idempotent up / down, nothing else (no
# dependency is started or stopped with it, and stack.env is not rewritten).
cmd_one() {
  local action="$1" name="${2:-}"
  [[ " ${SERVERS[*]} " == *" $name "* ]] || usage
  lock_state_dir
  mkdir -p "$LOG_DIR" "$PID_DIR"
  load_secrets
  case "$action" in
    start) "${name}_up" ;;
    stop)
      "${name}_down"
      log "$name stopped"
      ;;
  esac
}

cmd_env() {
  [[ -s "$STACK_ENV_FILE" ]] || die "$STACK_ENV_FILE does not exist; run 'CXR_STACK=$CXR_STACK bash infra/stack.sh up' first"
  cat "$STACK_ENV_FILE"
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  down) cmd_down ;;
  env) cmd_env ;;
  start | stop) cmd_one "$1" "${2:-}" ;;
  *) usage ;;
esac
