# shellcheck shell=bash
# PostgreSQL (Debian's package) as a private cluster of this stack: FerretDB's storage when
# CXR_DB_BACKEND=postgresql (the default). Sourced by infra/stack.sh after infra/lib.sh.
#
# Layout: the cluster root PG_ROOT holds data/ (PGDATA), the Unix socket and postgres.log
# (linked from logs/postgres.log). PG_ROOT is $CXR_STATE_DIR/postgres, unless the server's
# user cannot reach it: run as root, the server runs as user 'postgres' (PostgreSQL refuses
# root), which needs search permission on every parent directory, and a clone under /root
# (0700) or another private directory does not give it. Then, rather than loosen those
# directories, the cluster goes to /var/lib/cxr-classify/<16 hex of sha256(state dir)>/ and
# $CXR_STATE_DIR/postgres is a symlink to it. The same happens when the socket path would be
# longer than the 107 bytes a Unix socket address allows. Run as another user, the server
# runs as that user, always in the state dir.
#
# Roles, each logging in over TCP only (127.0.0.1, SCRAM, its password from secrets.env):
#   ferretdb     owns the database and every schema (FerretDB database) and table (collection)
#                in it: the setup tools and the tests, and FerretDB's index keeper.
#   cxr-gateway  reads and writes the documents of every collection of the service database
#                (CXR_DB_NAME, a schema); cxr-results only those of the requests and results,
#                and reads the models. Neither may create, alter or drop anything, nor use any
#                other schema (postgres_grant_services).
# FerretDB logs a client in as the role it names (authMechanism=PLAIN); a client that names
# none gets nothing (infra/ferretdb/main.go). The superuser logs in only through the socket
# with peer authentication.

PG_ROLE=ferretdb
PG_DB=ferretdb
PG_GATEWAY_ROLE=cxr-gateway
PG_RESULTS_ROLE=cxr-results
PG_PID="$PID_DIR/postgres.pid"
PG_FALLBACK_BASE=/var/lib/cxr-classify
if ((EUID == 0)); then
  PG_OS_USER=postgres
else
  PG_OS_USER="$(id -un)"
fi
PG_SUPERUSER="$PG_OS_USER" # peer authentication maps the OS user to the role of the same name

# _pg_locate: set PG_ROOT, PG_DATA, PG_SOCK, PG_LOG (see the layout above); creates nothing.
_pg_locate() {
  local in_state="$CXR_STATE_DIR/postgres" fallback
  fallback="$PG_FALLBACK_BASE/$(printf '%s' "$CXR_STATE_DIR" | sha256sum | cut -c1-16)"
  if [[ -L "$in_state" ]]; then
    PG_ROOT="$(readlink -- "$in_state")"
  elif [[ -d "$in_state" ]]; then
    PG_ROOT="$in_state"
  elif [[ -d "$fallback" ]]; then
    PG_ROOT="$fallback" # its symlink was lost (e.g. the state dir was deleted)
  elif _pg_reachable "$in_state"; then
    PG_ROOT="$in_state"
  else
    PG_ROOT="$fallback"
  fi
  PG_DATA="$PG_ROOT/data"
  PG_SOCK="$PG_ROOT"
  PG_LOG="$PG_ROOT/postgres.log"
}

# _pg_reachable DIR: can the server's user use DIR (inside the state dir) and its socket path?
_pg_reachable() {
  local dir="$1"
  ((${#dir} + ${#CXR_PG_PORT} + 10 <= 107)) || return 1 # "$dir/.s.PGSQL.$port"
  ((EUID == 0)) || return 0
  [[ -d "$CXR_STATE_DIR" ]] || return 1
  # 'test -x DIR' as postgres fails unless every directory on the way is searchable.
  runuser -u postgres -- test -x "$CXR_STATE_DIR" 2>/dev/null
}

# _pg_as CMD...: run CMD as the server's user, from '/' (the caller's directory may be
# unreadable to it).
_pg_as() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# _pg_bin: set PGBIN to the binaries of the cluster's major version, or the newest installed.
_pg_bin() {
  local want=""
  [[ -s "$PG_DATA/PG_VERSION" ]] && want="$(<"$PG_DATA/PG_VERSION")"
  if [[ -n "$want" ]]; then
    PGBIN="/usr/lib/postgresql/$want/bin"
    [[ -x "$PGBIN/postgres" ]] || fail_server postgres "$CXR_PG_PORT" "$PG_LOG" \
      "the cluster in $PG_DATA was made by PostgreSQL $want, which is not installed (apt-get install postgresql-$want, or delete $PG_ROOT to start afresh)"
  else
    PGBIN="$(dirname "$(_pg_newest_initdb)")"
  fi
}

_pg_newest_initdb() {
  local f
  for f in /usr/lib/postgresql/*/bin/initdb; do
    [[ -x "$f" ]] && echo "$f"
  done | sort -V | tail -n 1
}

postgres_install() {
  [[ -n "$(_pg_newest_initdb)" ]] && return 0
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root (apt-get install -y postgresql)"
  log "installing postgresql with apt-get (the Debian 'main' cluster is created but not started)"
  apt_install_no_start postgresql || die "apt-get install postgresql failed"
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now postgresql.service >/dev/null 2>&1 || true
  fi
  [[ -n "$(_pg_newest_initdb)" ]] || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb exists"
}

# _pg_prepare_dirs: make PG_ROOT (owned by the server's user, 0700), its log, and the links.
_pg_prepare_dirs() {
  mkdir -p "$LOG_DIR" "$PID_DIR"
  if [[ "$PG_ROOT" == "$PG_FALLBACK_BASE"/* ]]; then
    ((EUID == 0)) || die "postgres: the socket path under $CXR_STATE_DIR/postgres would exceed 107 bytes; use a shorter CXR_STATE_DIR"
    [[ -d "$PG_ROOT" ]] || log "postgres: user postgres cannot reach $CXR_STATE_DIR (or the socket path would be too long); the cluster goes to $PG_ROOT"
    mkdir -p "$PG_FALLBACK_BASE"
    chmod 755 "$PG_FALLBACK_BASE"
    mkdir -p "$PG_ROOT"
    echo "$CXR_STATE_DIR" >"$PG_ROOT/state-dir" # whose cluster this is, for humans
    [[ -L "$CXR_STATE_DIR/postgres" ]] || ln -sfn "$PG_ROOT" "$CXR_STATE_DIR/postgres"
  else
    mkdir -p "$PG_ROOT"
  fi
  touch "$PG_LOG"
  if ((EUID == 0)); then
    chown postgres:postgres "$PG_ROOT" "$PG_LOG"
  fi
  chmod 700 "$PG_ROOT"
  ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
}

_pg_initdb() {
  log "postgres: initdb in $PG_DATA"
  # UTF8 is required by FerretDB; C locale because FerretDB sorts in Go anyway; data
  # checksums report a corrupted page instead of returning it; no trust anywhere.
  _pg_as "$PGBIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" -E UTF8 --locale=C --data-checksums \
    --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 ||
    fail_server postgres "$CXR_PG_PORT" "$PG_LOG" "initdb failed"
  echo "include 'cxr-stack.conf'" >>"$PG_DATA/postgresql.conf"
}

# _pg_write_config: cxr-stack.conf (included by postgresql.conf) and pg_hba.conf, on every
# 'up'; prints "changed" when either differs from what was there.
_pg_write_config() {
  local conf="$PG_DATA/cxr-stack.conf" hba="$PG_DATA/pg_hba.conf" before after
  before="$(cat "$conf" "$hba" 2>/dev/null | sha256sum)"
  cat >"$conf" <<EOF
# Generated by infra/servers/postgres.sh on every 'up'; edits are overwritten.
listen_addresses = '$LOOPBACK'
port = $CXR_PG_PORT
unix_socket_directories = '$PG_SOCK'
unix_socket_permissions = 0700
# FerretDB's pool opens up to 50 connections (its default pool_max_conns), the index keeper 1.
max_connections = 100

# FerretDB sends its pushed-down filters, _jsonb->\$1 @> \$2, as cached prepared statements
# with the field name as a parameter. A generic plan (made once, \$1 unknown) can never use
# the GIN expression indexes on (_jsonb->'field') made by the index keeper; a custom plan,
# made with the field name as a constant, can. PostgreSQL's default ('auto') switches to the
# generic plan once it looks no dearer than the custom ones, e.g. when the table was small
# during the first executions; this keeps it on custom plans (about 0.1 ms of planning each).
plan_cache_mode = force_custom_plan

# A dev/test box with 24 GB and 2 cores that also runs RabbitMQ, the Node services, ONNX
# Runtime and possibly a second stack: 512MB holds the hot set of a 100k-request collection
# (about 190 MB with its indexes), 4x the default, without taking memory from the rest.
shared_buffers = 512MB
effective_cache_size = 4GB
# Virtual disk on SSD: random reads cost little more than sequential ones.
random_page_cost = 1.1
# FerretDB's documents are jsonb of 1-2 KB that PostgreSQL compresses; lz4 decompresses them
# about twice as fast as the default pglz (a 100k-document scan here: 140 ms against 320 ms),
# which is what every query that still scans pays, for 10-15 % more disk. New rows only.
default_toast_compression = lz4
# JIT compiles expressions of costly plans (a seq scan of a big collection) and costs tens of
# ms per query; FerretDB's statements are short and would only pay for it.
jit = off

# Durability as PostgreSQL's defaults, written out so nobody "tunes" them away: a commit is
# acknowledged after its WAL is flushed (synchronous_commit=off would lose the last ~0.6 s of
# acknowledged writes on a crash).
synchronous_commit = on
fsync = on
full_page_writes = on

log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000
EOF
  cat >"$hba" <<EOF
# Generated by infra/servers/postgres.sh on every 'up'; edits are overwritten.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       $PG_SUPERUSER                  peer
host    $PG_DB  $PG_ROLE  $LOOPBACK/32   scram-sha-256
host    $PG_DB  $PG_GATEWAY_ROLE  $LOOPBACK/32   scram-sha-256
host    $PG_DB  $PG_RESULTS_ROLE  $LOOPBACK/32   scram-sha-256
EOF
  if ((EUID == 0)); then chown postgres:postgres "$conf" "$hba"; fi
  chmod 600 "$conf" "$hba"
  after="$(cat "$conf" "$hba" | sha256sum)"
  [[ "$before" == "$after" ]] || echo changed
}

# _pg_sync_pid: copy the postmaster's pid (first line of postmaster.pid) into run/postgres.pid.
# No postmaster.pid means no server (a clean stop removes it): forget the pid then.
_pg_sync_pid() {
  local pid=""
  [[ -s "$PG_DATA/postmaster.pid" ]] && pid="$(head -n 1 "$PG_DATA/postmaster.pid")"
  if [[ "$pid" =~ ^[0-9]+$ ]]; then
    mkdir -p "$PID_DIR"
    echo "$pid" >"$PG_PID"
  else
    rm -f "$PG_PID"
  fi
}

_pg_ready() {
  [[ -n "${PGBIN:-}" ]] || return 1
  "$PGBIN/pg_isready" -q -h "$LOOPBACK" -p "$CXR_PG_PORT" -U "$PG_ROLE" -d "$PG_DB" -t 2 >/dev/null 2>&1
}

postgres_running() {
  pid_alive "$PG_PID" >/dev/null && _pg_ready
}

# _pg_psql ARGS...: psql as the superuser over the socket (peer); SQL on stdin stays out of ps.
_pg_psql() {
  _pg_as "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$CXR_PG_PORT" -U "$PG_SUPERUSER" -d postgres "$@"
}

# _pg_setup: FerretDB's role (its password reset from secrets.env every time, so a new
# secrets.env still matches an old cluster) and its database, then a real SCRAM login over TCP.
_pg_setup() {
  _pg_psql >>"$PG_LOG" 2>&1 <<EOF || fail_server postgres "$CXR_PG_PORT" "$PG_LOG" "creating role and database $PG_DB failed"
SET log_min_error_statement = panic; -- never write the statement below, with its password, to the log
SELECT 'CREATE ROLE $PG_ROLE' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') \gexec
ALTER ROLE $PG_ROLE WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$CXR_PG_FERRETDB_PASSWORD';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SELECT 'CREATE ROLE "$PG_GATEWAY_ROLE"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_GATEWAY_ROLE') \gexec
ALTER ROLE "$PG_GATEWAY_ROLE" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '$CXR_PG_GATEWAY_PASSWORD';
SELECT 'CREATE ROLE "$PG_RESULTS_ROLE"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_RESULTS_ROLE') \gexec
ALTER ROLE "$PG_RESULTS_ROLE" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '$CXR_PG_RESULTS_PASSWORD';
-- Only the roles named here may connect (PUBLIC may by default) and none may make temporary tables.
REVOKE ALL ON DATABASE $PG_DB FROM PUBLIC;
GRANT CONNECT ON DATABASE $PG_DB TO "$PG_GATEWAY_ROLE", "$PG_RESULTS_ROLE";
EOF
  PGPASSWORD="$CXR_PG_FERRETDB_PASSWORD" "$PGBIN/psql" -X -w -q -At -h "$LOOPBACK" -p "$CXR_PG_PORT" \
    -U "$PG_ROLE" -d "$PG_DB" -c 'SELECT 1' >/dev/null 2>>"$PG_LOG" ||
    fail_server postgres "$CXR_PG_PORT" "$PG_LOG" "role $PG_ROLE cannot log in over TCP with its password"
}

# postgres_grant_services SCHEMA: the service roles' rights on the collections of FerretDB
# database SCHEMA, which must exist with its collections (infra/tools/migrate-database.ts makes
# them): FerretDB's metadata table (collection name -> table), and each collection's table as
# the header says. Grants only add: run it again after a migration adds a
# collection.
postgres_grant_services() {
  local schema="$1"
  _pg_locate
  _pg_bin
  _pg_psql -d "$PG_DB" >>"$PG_LOG" 2>&1 <<EOF || fail_server postgres "$CXR_PG_PORT" "$PG_LOG" "granting the service roles their rights on schema $schema failed"
GRANT USAGE ON SCHEMA "$schema" TO "$PG_GATEWAY_ROLE", "$PG_RESULTS_ROLE";
-- UPDATE too: the services' createIndexes at start, with every index present already, still
-- rewrites the collection's metadata row (FerretDB v1.24.2 metadata/registry.go indexesCreate).
-- A row names a table, whose own grants still apply: a rewrite can break, not reach further.
GRANT SELECT, UPDATE ON "$schema"._ferretdb_database_metadata TO "$PG_GATEWAY_ROLE", "$PG_RESULTS_ROLE";
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO %I', '$schema', _jsonb->>'table', '$PG_GATEWAY_ROLE')
  FROM "$schema"._ferretdb_database_metadata \gexec
SELECT format('GRANT %s ON %I.%I TO %I',
    CASE _jsonb->>'_id' WHEN 'models' THEN 'SELECT' ELSE 'SELECT, INSERT, UPDATE' END,
    '$schema', _jsonb->>'table', '$PG_RESULTS_ROLE')
  FROM "$schema"._ferretdb_database_metadata
  WHERE _jsonb->>'_id' IN ('classification_requests', 'classification_results', 'models') \gexec
EOF
}

# postgres_url: FerretDB's connection URL (the password is hex: nothing to escape). Loopback
# only and the cluster has no certificate: sslmode=disable spares each new connection a
# refused TLS attempt (pgx's default, prefer, tries TLS first).
postgres_url() {
  echo "postgres://$PG_ROLE:$CXR_PG_FERRETDB_PASSWORD@$LOOPBACK:$CXR_PG_PORT/$PG_DB?sslmode=disable"
}

postgres_up() {
  postgres_install
  mkdir -p "$CXR_STATE_DIR"
  _pg_locate
  _pg_prepare_dirs
  _pg_bin
  [[ -s "$PG_DATA/PG_VERSION" ]] || _pg_initdb
  local changed
  changed="$(_pg_write_config)"
  _pg_sync_pid
  if postgres_running; then
    log "postgres already running (pid $(<"$PG_PID"), port $CXR_PG_PORT)"
    if [[ "$changed" == changed ]]; then
      log "postgres: configuration changed; reloading"
      _pg_as "$PGBIN/pg_ctl" -D "$PG_DATA" -s reload 8>&- || warn "postgres: reload failed"
      local pending
      pending="$(_pg_psql -At -c "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart" 2>/dev/null || true)"
      [[ -z "$pending" ]] || warn "postgres: $pending change(s) need a restart: bash infra/stack.sh stop postgres && bash infra/stack.sh start postgres"
    fi
    _pg_setup
    return 0
  fi
  if ! pid_alive "$PG_PID" >/dev/null; then
    check_port_free postgres "$CXR_PG_PORT" "$PG_LOG"
    log "starting postgres $(basename "$(dirname "$PGBIN")") (port $CXR_PG_PORT, data $PG_DATA)"
    echo "=== $(date -Is) starting postgres" >>"$PG_LOG"
    # pg_ctl detaches the postmaster (its own session) and waits until it accepts connections.
    # 8>&-: do not hand the state-dir lock to the server.
    _pg_as "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s start 8>&- >/dev/null ||
      fail_server postgres "$CXR_PG_PORT" "$PG_LOG" "pg_ctl start failed"
    _pg_sync_pid
  fi
  await_up postgres "$CXR_PG_PORT" "$PG_PID" "$PG_LOG" 60 "not accepting connections" _pg_ready
  _pg_setup
  log "postgres up (pid $(<"$PG_PID"))"
}

postgres_down() {
  _pg_locate
  _pg_sync_pid
  if pid_alive "$PG_PID" >/dev/null; then
    log "stopping postgres (pid $(<"$PG_PID"))"
    # Fast shutdown: roll back open transactions, checkpoint, exit. Signals if pg_ctl cannot.
    if [[ -s "$PG_DATA/PG_VERSION" && -x "/usr/lib/postgresql/$(<"$PG_DATA/PG_VERSION")/bin/pg_ctl" ]]; then
      _pg_as "/usr/lib/postgresql/$(<"$PG_DATA/PG_VERSION")/bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 -s stop 8>&- >/dev/null 2>&1 ||
        warn "pg_ctl stop failed; falling back to signals"
    fi
    stop_pid postgres "$PG_PID" 15
  fi
  rm -f "$PG_PID"
  wait_until 5 port_closed "$CXR_PG_PORT" || warn "postgres: port $CXR_PG_PORT still open after stop"
}

postgres_status() {
  _pg_locate
  [[ -s "$PG_DATA/PG_VERSION" ]] && PGBIN="/usr/lib/postgresql/$(<"$PG_DATA/PG_VERSION")/bin"
  _pg_sync_pid
  report_status postgres "$CXR_PG_PORT" "" "$PG_PID" _pg_ready
}
