#!/usr/bin/env bash
# The Celery peer of `npm run bench -- --peer celery` (peer.py says what it is).
#   bash infra/peer/celery/run.sh up     installs what is missing (Debian's redis-server, a Python
#                                        venv from PyPI in the cache folder), starts Redis, the
#                                        FastAPI app (uvicorn) and a Celery worker (2 prefork children)
#   bash infra/peer/celery/run.sh down
# up needs PEER_MODEL_DIR and the S3_* variables of the stack (bench.ts passes them); it prints
# the pid files, one line per process, for the bench's CPU accounting.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=infra/lib.sh
source "$HERE/../../lib.sh"

PEER_DIR="$CXR_STATE_DIR/peer-celery"
VENV="$CXR_CACHE_DIR/celery-peer-venv-$(sha256sum "$HERE/requirements.txt" | cut -c1-12)"
REDIS_PORT="${PEER_REDIS_PORT:-6389}"
HTTP_PORT="${PEER_HTTP_PORT:-8190}"
mkdir -p "$PEER_DIR"

ensure_installed() {
  if ! command -v redis-server >/dev/null; then
    log "installing Debian's redis-server for the Celery peer"
    apt_install_no_start redis-server >&2
  fi
  # A venv cannot be moved (its scripts name its path): .complete marks one fully installed.
  if [[ ! -e "$VENV/.complete" ]]; then
    log "creating the Celery peer's Python venv in $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2
    touch "$VENV/.complete"
  fi
}

http_ok() { curl -fsS "http://$LOOPBACK:$HTTP_PORT/health" >/dev/null 2>&1; }
redis_ok() { redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
worker_ok() { grep -q 'ready\.' "$PEER_DIR/worker.log" 2>/dev/null; }

up() {
  : "${PEER_MODEL_DIR:?PEER_MODEL_DIR (model.onnx and spec.json) is required}"
  ensure_installed
  down >/dev/null
  export PEER_REDIS_URL="redis://$LOOPBACK:$REDIS_PORT/0" PYTHONPATH="$HERE"
  check_port_free redis "$REDIS_PORT" "$PEER_DIR/redis.log"
  start_detached "$PEER_DIR/redis.pid" "$PEER_DIR/redis.log" redis-server --port "$REDIS_PORT" \
    --bind "$LOOPBACK" --save '' --appendonly no --dir "$PEER_DIR"
  await_up redis "$REDIS_PORT" "$PEER_DIR/redis.pid" "$PEER_DIR/redis.log" 20 "no PONG" redis_ok
  : >"$PEER_DIR/worker.log"
  start_detached "$PEER_DIR/worker.pid" "$PEER_DIR/worker.log" "$VENV/bin/celery" -A peer:celery worker \
    --pool prefork --concurrency 2 --loglevel INFO --without-gossip --without-mingle --without-heartbeat
  await_up celery - "$PEER_DIR/worker.pid" "$PEER_DIR/worker.log" 60 "not ready" worker_ok
  check_port_free uvicorn "$HTTP_PORT" "$PEER_DIR/http.log"
  start_detached "$PEER_DIR/http.pid" "$PEER_DIR/http.log" "$VENV/bin/uvicorn" peer:app \
    --host "$LOOPBACK" --port "$HTTP_PORT" --log-level warning --no-access-log
  await_up uvicorn "$HTTP_PORT" "$PEER_DIR/http.pid" "$PEER_DIR/http.log" 30 "no answer" http_ok
  for name in http worker redis; do echo "$name $(<"$PEER_DIR/$name.pid")"; done
}

down() {
  for name in http worker redis; do stop_pid "peer $name" "$PEER_DIR/$name.pid"; done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
