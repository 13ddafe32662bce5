# shellcheck shell=bash
# FerretDB v1 (MongoDB wire protocol), built from infra/ferretdb, on PostgreSQL
# (CXR_DB_BACKEND=postgresql, the default; infra/servers/postgres.sh must be up first) or
# SQLite (CXR_DB_BACKEND=sqlite). Sourced by infra/stack.sh after infra/lib.sh and
# infra/servers/postgres.sh.

FERRETDB_VERSION=v1.24.2
FERRETDB_DATA="$CXR_STATE_DIR/ferretdb"
FERRETDB_LOG="$LOG_DIR/ferretdb.log"
FERRETDB_PID="$PID_DIR/ferretdb.pid"
# What the running server was started with: "BACKEND BINARY [index-interval=…]".
FERRETDB_STARTED_FILE="$PID_DIR/ferretdb.started"
# How often the index keeper looks for new collections and indexes (PostgreSQL only; 0 = off).
CXR_FERRETDB_INDEX_INTERVAL="${CXR_FERRETDB_INDEX_INTERVAL:-1s}"

# _ferretdb_build OUT: compile infra/ferretdb (a tiny main embedding FerretDB) to OUT.
_ferretdb_build() {
  local out="$1"
  (
    cd "$INFRA_DIR/ferretdb" || exit
    [[ -s go.sum ]] || go mod tidy
    go mod download
    # Pure Go (modernc SQLite, pgx): no cgo toolchain needed.
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

# mongodb_uri [ROLE PASSWORD]: the MongoDB URI of this FerretDB, logging in as that PostgreSQL
# role (FerretDB passes PLAIN credentials on to PostgreSQL); without a role (the SQLite
# backend, which has no users), anonymous. The passwords are hex: nothing to escape.
mongodb_uri() {
  if [[ $# -eq 2 && "$CXR_DB_BACKEND" == postgresql ]]; then
    echo "mongodb://$1:$2@$LOOPBACK:$CXR_MONGO_PORT/?authMechanism=PLAIN&authSource=%24external"
  else
    echo "mongodb://$LOOPBACK:$CXR_MONGO_PORT/"
  fi
}

# ferretdb_ping: a real MongoDB command as the owner role when the repo's mongodb driver is
# installed, else TCP. listDatabases, unlike ping, reaches PostgreSQL: it checks the login,
# and FerretDB loads its catalogue of databases as the owner, who sees them all.
ferretdb_ping() {
  if command -v node >/dev/null && [[ -d "$REPO_DIR/node_modules/mongodb" ]]; then
    # The URI (with its password) through the environment, not argv: ps shows argv.
    (cd "$REPO_DIR" && CXR_PING_URI="$(mongodb_uri "$PG_ROLE" "$CXR_PG_FERRETDB_PASSWORD")" timeout 20 node -e '
      const { MongoClient } = require("mongodb");
      const c = new MongoClient(process.env.CXR_PING_URI, { serverSelectionTimeoutMS: 5000 });
      c.connect().then(() => c.db("admin").command({ listDatabases: 1, nameOnly: true }))
        .then(() => c.close()).then(() => process.exit(0))
        .catch((e) => { console.error(String(e)); process.exit(1); });
    ')
  else
    port_open "$CXR_MONGO_PORT"
  fi
}

# ferretdb_provision: on PostgreSQL, the service database's collections and indexes, made by
# the owner role (infra/tools/migrate-database.ts), then the service roles' rights on them
# (postgres_grant_services). Needs the repo's npm dependencies; without them (a bare
# 'stack.sh up' before 'npm ci') it is left to the next 'up' (./cxr up and ./cxr test install them first).
ferretdb_provision() {
  [[ "$CXR_DB_BACKEND" == postgresql ]] || return 0
  if ! command -v node >/dev/null || [[ ! -d "$REPO_DIR/node_modules/mongoose" ]]; then
    warn "ferretdb: no npm dependencies yet: the service roles get their rights at the next 'up' after 'npm ci'"
    return 0
  fi
  (cd "$REPO_DIR" && MONGODB_URI="$(mongodb_uri "$PG_ROLE" "$CXR_PG_FERRETDB_PASSWORD")" MONGODB_DATABASE="$CXR_DB_NAME" \
    timeout 120 node --import tsx infra/tools/migrate-database.ts) >>"$FERRETDB_LOG" 2>&1 ||
    fail_server ferretdb "$CXR_MONGO_PORT" "$FERRETDB_LOG" "creating the collections of database $CXR_DB_NAME failed"
  postgres_grant_services "$CXR_DB_NAME"
}

ferretdb_up() {
  local bin want running
  bin="$(go_build_cached cxr-ferretdb "$FERRETDB_VERSION-$(_ferretdb_source_hash)" _ferretdb_build)"
  want="$CXR_DB_BACKEND $bin"
  [[ "$CXR_DB_BACKEND" == postgresql ]] && want+=" index-interval=$CXR_FERRETDB_INDEX_INTERVAL"
  mkdir -p "$LOG_DIR" "$PID_DIR"
  if ferretdb_running; then
    # A server started before backends were selectable ran on SQLite.
    running="$(cat "$FERRETDB_STARTED_FILE" 2>/dev/null || echo sqlite)"
    if [[ "$running" == "$want" ]]; then
      log "ferretdb already running (pid $(<"$FERRETDB_PID"), port $CXR_MONGO_PORT, $CXR_DB_BACKEND)"
      ferretdb_provision
      return 0
    fi
    # Another backend, a binary from older sources or another keeper interval.
    log "ferretdb was started as '$running', wanted '$want': restarting it"
    ferretdb_down
  fi
  if ! pid_alive "$FERRETDB_PID" >/dev/null; then
    check_port_free ferretdb "$CXR_MONGO_PORT" "$FERRETDB_LOG"
    local -a args=(-listen "$LOOPBACK:$CXR_MONGO_PORT" -handler "$CXR_DB_BACKEND" -log-level warn)
    local url=""
    case "$CXR_DB_BACKEND" in
      sqlite) args+=(-data "$FERRETDB_DATA") ;;
      postgresql)
        args+=(-index-interval "$CXR_FERRETDB_INDEX_INTERVAL")
        url="$(postgres_url)"
        ;;
    esac
    log "starting ferretdb $FERRETDB_VERSION on $CXR_DB_BACKEND (port $CXR_MONGO_PORT)"
    # The PostgreSQL URL (with its password) through the environment, not argv: ps shows argv.
    CXR_FERRETDB_POSTGRESQL_URL="$url" start_detached "$FERRETDB_PID" "$FERRETDB_LOG" "$bin" "${args[@]}"
    echo "$want" >"$FERRETDB_STARTED_FILE"
  fi
  await_up ferretdb "$CXR_MONGO_PORT" "$FERRETDB_PID" "$FERRETDB_LOG" 30 "not listening" port_open "$CXR_MONGO_PORT"
  ferretdb_ping >>"$FERRETDB_LOG" 2>&1 || fail_server ferretdb "$CXR_MONGO_PORT" "$FERRETDB_LOG" "listening but does not answer a MongoDB command as role $PG_ROLE"
  ferretdb_provision
  log "ferretdb up (pid $(<"$FERRETDB_PID"), $CXR_DB_BACKEND)"
}

ferretdb_down() {
  stop_pid ferretdb "$FERRETDB_PID" 15
  rm -f "$FERRETDB_STARTED_FILE"
}

ferretdb_status() {
  local backend=-
  [[ -s "$FERRETDB_STARTED_FILE" ]] && read -r backend _ <"$FERRETDB_STARTED_FILE"
  report_status ferretdb "$CXR_MONGO_PORT" "$backend" "$FERRETDB_PID" port_open "$CXR_MONGO_PORT"
}
