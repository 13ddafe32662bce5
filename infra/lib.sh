# shellcheck shell=bash
# Shared helpers and configuration for infra/stack.sh and infra/servers/*.sh.
# Sourced, never executed directly.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$INFRA_DIR/.." && pwd)"

CXR_STACK="${CXR_STACK:-dev}"
case "$CXR_STACK" in
  dev) _port_offset=0 ;;
  test) _port_offset=10 ;; # test ports = dev ports + 10, so both stacks fit side by side
  *)
    echo "[stack] CXR_STACK must be 'dev' or 'test' (got '$CXR_STACK')" >&2
    exit 2
    ;;
esac

CXR_STATE_DIR="${CXR_STATE_DIR:-$REPO_DIR/.state/$CXR_STACK}"
CXR_CACHE_DIR="${CXR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cxr-classify}"
CXR_AMQP_PORT="${CXR_AMQP_PORT:-$((5672 + _port_offset))}"
CXR_RABBITMQ_MGMT_PORT="${CXR_RABBITMQ_MGMT_PORT:-$((15672 + _port_offset))}"
CXR_RABBITMQ_DIST_PORT="${CXR_RABBITMQ_DIST_PORT:-$((25672 + _port_offset))}"
CXR_EPMD_PORT="${CXR_EPMD_PORT:-$((4369 + _port_offset))}"
CXR_MONGO_PORT="${CXR_MONGO_PORT:-$((27017 + _port_offset))}"
CXR_S3_PORT="${CXR_S3_PORT:-$((9000 + _port_offset))}"
CXR_PG_PORT="${CXR_PG_PORT:-$((54320 + _port_offset))}"

# FerretDB's storage: PostgreSQL (default; equality reads use the indexes that
# infra/ferretdb/keeper.go adds) or SQLite (no extra server, but FerretDB v1.24.2 reads
# scan the whole collection there, even by _id).
CXR_DB_BACKEND="${CXR_DB_BACKEND:-postgresql}"
case "$CXR_DB_BACKEND" in
  postgresql | sqlite) ;;
  *)
    echo "[stack] CXR_DB_BACKEND must be 'postgresql' or 'sqlite' (got '$CXR_DB_BACKEND')" >&2
    exit 2
    ;;
esac

LOOPBACK=127.0.0.1
# The database the services use (./cxr up); the services' database roles have rights there only.
CXR_DB_NAME="${CXR_DB_NAME:-cxr}"
# The bucket the services use (./cxr up); its policy names the service accounts below.
CXR_S3_BUCKET="${CXR_S3_BUCKET:-cxr-classify}"
# Access key ids of the services' S3 accounts (their secrets are in secrets.env).
# shellcheck disable=SC2034 # used by the files that source lib.sh
S3_GATEWAY_ACCESS_KEY=cxr-gateway
# shellcheck disable=SC2034
S3_INFERENCE_ACCESS_KEY=cxr-inference
SECRETS_FILE="$CXR_STATE_DIR/secrets.env"
# shellcheck disable=SC2034 # used by the files that source lib.sh
STACK_ENV_FILE="$CXR_STATE_DIR/stack.env"
# shellcheck disable=SC2034
PID_DIR="$CXR_STATE_DIR/run"
# shellcheck disable=SC2034
LOG_DIR="$CXR_STATE_DIR/logs"

log() { echo "[stack] $*"; }
warn() { echo "[stack] WARNING: $*" >&2; }
die() {
  echo "[stack] ERROR: $*" >&2
  exit 1
}

# fail_server NAME PORT LOGFILE MESSAGE: the required failure report for a server
# that did not come up: name, port, log path and the tail of the log.
fail_server() {
  local name="$1" port="$2" logfile="$3" msg="$4"
  {
    echo "[stack] ERROR: $name (port $port) failed to start: $msg"
    echo "[stack] log file: $logfile"
    if [[ -f "$logfile" ]]; then
      echo "[stack] ---- last 20 lines of $logfile ----"
      tail -n 20 "$logfile"
      echo "[stack] ----"
    else
      echo "[stack] (log file does not exist)"
    fi
  } >&2
  exit 1
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/$LOOPBACK/$1") 2>/dev/null
}

port_closed() { ! port_open "$1"; }

# pid_alive PIDFILE: true if the pid file names a live process; prints the pid.
pid_alive() {
  local pidfile="$1" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie still answers kill -0; treat it as dead.
  [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]] || return 1
  echo "$pid"
}

# wait_until TIMEOUT_SECONDS CMD...: poll CMD every 0.25s until it succeeds.
wait_until() {
  local timeout="$1" deadline
  shift
  deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

# await_up NAME PORT PIDFILE LOG TIMEOUT WHAT CMD...: poll CMD until it succeeds; stop with the
# server's name, port and log if its process exits, or with "WHAT after TIMEOUTs" when time is up.
await_up() {
  local name="$1" port="$2" pidfile="$3" logfile="$4" timeout="$5" what="$6" deadline
  shift 6
  deadline=$((SECONDS + timeout))
  until "$@"; do
    pid_alive "$pidfile" >/dev/null || fail_server "$name" "$port" "$logfile" "the process exited"
    ((SECONDS < deadline)) || fail_server "$name" "$port" "$logfile" "$what after ${timeout}s"
    sleep 0.25
  done
}

# report_status NAME PORT EXTRA PIDFILE CMD...: prints the server's status line; it is up when
# its process lives and CMD succeeds (the exit status says which).
report_status() {
  local name="$1" port="$2" extra="$3" pidfile="$4" pid state=down
  shift 4
  pid="$(pid_alive "$pidfile")" || pid=-
  if [[ "$pid" != - ]] && "$@"; then state=up; fi
  printf '%-9s port %-5s %-10s pid %-7s %s\n' "$name" "$port" "$extra" "$pid" "$state"
  [[ "$state" == up ]]
}

# stop_pid NAME PIDFILE [TIMEOUT]: SIGTERM the process group, wait, then SIGKILL.
stop_pid() {
  local name="$1" pidfile="$2" timeout="${3:-15}" pid
  if pid="$(pid_alive "$pidfile")"; then
    log "stopping $name (pid $pid)"
    # Servers are started with setsid, so pid == process group id: signal the whole group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "$timeout" not_alive "$pidfile"; then
      warn "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      wait_until 5 not_alive "$pidfile" || warn "$name (pid $pid) is still alive after SIGKILL"
    fi
  fi
  rm -f "$pidfile"
}
not_alive() { ! pid_alive "$1" >/dev/null; }

# start_detached PIDFILE LOGFILE CMD...: run CMD in its own session (survives
# the calling shell, and can be killed as a group), output appended to LOGFILE.
start_detached() {
  local pidfile="$1" logfile="$2"
  shift 2
  echo "=== $(date -Is) starting: $1" >>"$logfile"
  # 8>&-: do not hand the state-dir lock (fd 8) to long-lived servers.
  setsid nohup "$@" </dev/null >>"$logfile" 2>&1 8>&- &
  echo $! >"$pidfile"
}

# random_hex NBYTES: lowercase hex, no external dependency beyond od.
random_hex() {
  od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# SECRET_VARS: NAME:BYTES for every generated secret (hex of BYTES random bytes).
SECRET_VARS=(
  CXR_RABBITMQ_ADMIN_PASSWORD:16
  CXR_RABBITMQ_GATEWAY_PASSWORD:16
  CXR_RABBITMQ_INFERENCE_PASSWORD:16
  CXR_RABBITMQ_RESULTS_PASSWORD:16
  CXR_S3_ACCESS_KEY:10
  CXR_S3_SECRET_KEY:20
  CXR_S3_GATEWAY_SECRET_KEY:20
  CXR_S3_INFERENCE_SECRET_KEY:20
  CXR_PG_FERRETDB_PASSWORD:16
  CXR_PG_GATEWAY_PASSWORD:16
  CXR_PG_RESULTS_PASSWORD:16
)

# load_secrets: create secrets.env once per state dir (mode 600), append any secret it lacks
# (a file from an older version of this script keeps its values and gains the new ones),
# then source it.
load_secrets() {
  mkdir -p "$CXR_STATE_DIR"
  if [[ ! -s "$SECRETS_FILE" ]]; then
    log "generating secrets in $SECRETS_FILE"
    local tmp="$SECRETS_FILE.tmp.$$"
    (
      umask 077
      echo "# Generated once by infra/stack.sh; reused by every later 'up' of this state dir." >"$tmp"
    )
    mv "$tmp" "$SECRETS_FILE"
  fi
  chmod 600 "$SECRETS_FILE"
  local entry name
  for entry in "${SECRET_VARS[@]}"; do
    name="${entry%%:*}"
    if ! grep -q "^$name=" "$SECRETS_FILE"; then
      echo "$name=$(random_hex "${entry##*:}")" >>"$SECRETS_FILE"
    fi
  done
  # shellcheck source=/dev/null
  source "$SECRETS_FILE"
}

# apt_install_no_start PKG...: apt-get update and install PKG, with a temporary policy-rc.d
# that forbids the packages' maintainer scripts to start their system-wide services (which
# would take the default ports). Needs root.
apt_install_no_start() {
  (
    # policy-rc.d exit 101 = "action forbidden" for invoke-rc.d and deb-systemd-invoke.
    created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\n# temporary, created by cxr infra/stack.sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      created=1
    fi
    trap '[[ $created == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    # '&&': set -e does not apply inside a function called before '||'.
    apt-get update && apt-get install -y "$@"
  )
}

# check_port_free NAME PORT LOGFILE: refuse to start if a foreign process holds PORT.
check_port_free() {
  if port_open "$2"; then
    fail_server "$1" "$2" "$3" "port $2 is already in use by another process ($(ss -ltnpH "sport = :$2" 2>/dev/null | head -n1))"
  fi
}

# go_install_to OUT BINARY PACKAGE@VERSION: go install, run outside the repo so no go.mod or
# go.work of ours interferes with 'go install pkg@version'; the binary is moved to OUT.
go_install_to() {
  local out="$1" binary="$2" pkg="$3" gobin
  gobin="$(mktemp -d)"
  (cd "$gobin" && GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath "$pkg") && mv "$gobin/$binary" "$out"
  local rc=$?
  rm -rf "$gobin"
  return "$rc"
}

# go_build_cached NAME VERSION BUILD_FN: ensure $CXR_CACHE_DIR/bin/NAME-VERSION exists.
# BUILD_FN is called with a temp output path; the result is renamed into place so
# an interrupted build never leaves a broken binary. flock serialises concurrent
# stacks building the same binary. Prints the binary path on stdout.
go_build_cached() {
  local name="$1" version="$2" build_fn="$3"
  local bin="$CXR_CACHE_DIR/bin/$name-$version"
  if [[ -x "$bin" ]]; then
    echo "$bin"
    return 0
  fi
  command -v go >/dev/null || die "go is required to build $name $version (not found in PATH)"
  mkdir -p "$CXR_CACHE_DIR/bin"
  (
    flock 9
    if [[ ! -x "$bin" ]]; then
      local tmp="$bin.tmp.$$" start=$SECONDS
      log "building $name $version into $bin (first time only; takes a few minutes)" >&2
      rm -f "$tmp"
      if ! "$build_fn" "$tmp" >&2; then
        rm -f "$tmp"
        die "building $name $version failed"
      fi
      mv -f "$tmp" "$bin"
      log "built $name $version in $((SECONDS - start))s" >&2
    fi
  ) 9>"$CXR_CACHE_DIR/bin/.$name-$version.lock"
  [[ -x "$bin" ]] || exit 1
  echo "$bin"
}
