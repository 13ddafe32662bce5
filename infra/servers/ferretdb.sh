# shellcheck shell=bash
# FerretDB v1 (MongoDB wire protocol, SQLite backend), built from infra/ferretdb.
# Sourced by infra/stack.sh after infra/lib.sh.

FERRETDB_VERSION=v1.24.2
FERRETDB_DATA="$CXR_STATE_DIR/ferretdb"
FERRETDB_LOG="$LOG_DIR/ferretdb.log"
FERRETDB_PID="$PID_DIR/ferretdb.pid"

# _ferretdb_build OUT: compile infra/ferretdb (a tiny main embedding FerretDB) to OUT.
_ferretdb_build() {
  local out="$1"
  (
    cd "$INFRA_DIR/ferretdb" || exit
    [[ -s go.sum ]] || go mod tidy
    go mod download
    # Pure Go (modernc SQLite): no cgo toolchain needed.
    CGO_ENABLED=0 go build -buildvcs=false -trimpath -o "$out" .
  )
}

# _ferretdb_source_hash: 12 hex digits over infra/ferretdb's go.mod, go.sum and Go sources
# (names and contents). Part of the cached binary's name, so a changed main.go or dependency
# is rebuilt instead of reusing a binary built from older sources under the same version.
_ferretdb_source_hash() {
  (
    cd "$INFRA_DIR/ferretdb" || exit
    export LC_ALL=C # the same file order on every machine
    local f
    for f in go.mod go.sum *.go; do
      [[ "$f" == *_test.go ]] && continue
      printf '%s\0' "$f"
      cat -- "$f"
    done
  ) | sha256sum | cut -c1-12
}

ferretdb_running() {
  pid_alive "$FERRETDB_PID" >/dev/null && port_open "$CXR_MONGO_PORT"
}

# ferretdb_ping: a real MongoDB 'ping' when the repo's mongodb driver is installed, else TCP.
ferretdb_ping() {
  if command -v node >/dev/null && [[ -d "$REPO_DIR/node_modules/mongodb" ]]; then
    (cd "$REPO_DIR" && timeout 20 node -e '
      const { MongoClient } = require("mongodb");
      const c = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 5000 });
      c.connect().then(() => c.db("admin").command({ ping: 1 }))
        .then(() => c.close()).then(() => process.exit(0))
        .catch((e) => { console.error(String(e)); process.exit(1); });
    ' "mongodb://$LOOPBACK:$CXR_MONGO_PORT/")
  else
    port_open "$CXR_MONGO_PORT"
  fi
}

ferretdb_up() {
  local bin
  bin="$(go_build_cached cxr-ferretdb "$FERRETDB_VERSION-$(_ferretdb_source_hash)" _ferretdb_build)"
  mkdir -p "$FERRETDB_DATA" "$LOG_DIR" "$PID_DIR"
  if ferretdb_running; then
    log "ferretdb already running (pid $(<"$FERRETDB_PID"), port $CXR_MONGO_PORT)"
    return 0
  fi
  if ! pid_alive "$FERRETDB_PID" >/dev/null; then
    check_port_free ferretdb "$CXR_MONGO_PORT" "$FERRETDB_LOG"
    log "starting ferretdb $FERRETDB_VERSION (port $CXR_MONGO_PORT)"
    start_detached "$FERRETDB_PID" "$FERRETDB_LOG" \
      "$bin" -listen "$LOOPBACK:$CXR_MONGO_PORT" -data "$FERRETDB_DATA" -log-level warn
  fi
  await_up ferretdb "$CXR_MONGO_PORT" "$FERRETDB_PID" "$FERRETDB_LOG" 30 "not listening" port_open "$CXR_MONGO_PORT"
  ferretdb_ping >>"$FERRETDB_LOG" 2>&1 || fail_server ferretdb "$CXR_MONGO_PORT" "$FERRETDB_LOG" "listening but does not answer a MongoDB ping"
  log "ferretdb up (pid $(<"$FERRETDB_PID"))"
}

ferretdb_down() {
  stop_pid ferretdb "$FERRETDB_PID" 15
}

ferretdb_status() {
  report_status ferretdb "$CXR_MONGO_PORT" "" "$FERRETDB_PID" port_open "$CXR_MONGO_PORT"
}
