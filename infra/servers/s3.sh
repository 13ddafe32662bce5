# shellcheck shell=bash
# S3-compatible storage: VersityGW with the posix backend (MinIO is not obtainable
# through the Go proxy here). Sourced by infra/stack.sh after infra/lib.sh.

VERSITYGW_VERSION=v1.7.0
S3_DIR="$CXR_STATE_DIR/s3"
S3_DATA="$S3_DIR/data"
S3_SIDECAR="$S3_DIR/meta"
S3_MODE_FILE="$S3_DIR/metadata-mode" # 'xattr' or 'sidecar', decided once per state dir
S3_LOG="$LOG_DIR/s3.log"
S3_PID="$PID_DIR/s3.pid"

_versitygw_build() { go_install_to "$1" versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"; }

# The posix backend keeps object metadata (content-type, x-amz-meta-*, etag) in
# user.* xattrs. Probe the filesystem once; without xattrs use a sidecar directory.
_s3_metadata_mode() {
  if [[ ! -s "$S3_MODE_FILE" ]]; then
    local mode=sidecar probe="$S3_DATA/.xattr-probe"
    touch "$probe"
    if command -v python3 >/dev/null &&
      python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.cxr", b"1")' "$probe" 2>/dev/null; then
      mode=xattr
    fi
    rm -f "$probe"
    echo "$mode" >"$S3_MODE_FILE"
    log "s3: metadata stored in $mode mode"
  fi
  cat "$S3_MODE_FILE"
}

s3_answers() {
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$LOOPBACK:$CXR_S3_PORT/" 2>/dev/null)" || true
  [[ -n "$code" && "$code" != 000 ]]
}

s3_running() {
  pid_alive "$S3_PID" >/dev/null && s3_answers
}

s3_up() {
  local bin
  bin="$(go_build_cached versitygw "$VERSITYGW_VERSION" _versitygw_build)"
  mkdir -p "$S3_DATA" "$LOG_DIR" "$PID_DIR"
  if s3_running; then
    log "s3 already running (pid $(<"$S3_PID"), port $CXR_S3_PORT)"
    return 0
  fi
  if ! pid_alive "$S3_PID" >/dev/null; then
    check_port_free s3 "$CXR_S3_PORT" "$S3_LOG"
    local -a backend_opts=()
    if [[ "$(_s3_metadata_mode)" == sidecar ]]; then
      mkdir -p "$S3_SIDECAR"
      backend_opts+=(--sidecar "$S3_SIDECAR")
    fi
    log "starting versitygw $VERSITYGW_VERSION (port $CXR_S3_PORT)"
    # Keys via env rather than flags so they do not show up in 'ps'.
    ROOT_ACCESS_KEY="$CXR_S3_ACCESS_KEY" ROOT_SECRET_KEY="$CXR_S3_SECRET_KEY" \
      start_detached "$S3_PID" "$S3_LOG" \
      "$bin" --port "$LOOPBACK:$CXR_S3_PORT" --region us-east-1 --quiet \
      posix "${backend_opts[@]}" "$S3_DATA"
  fi
  await_up s3 "$CXR_S3_PORT" "$S3_PID" "$S3_LOG" 30 "no HTTP answer" s3_answers
  log "s3 up (pid $(<"$S3_PID"))"
}

s3_down() {
  stop_pid s3 "$S3_PID" 15
}

s3_status() {
  report_status s3 "$CXR_S3_PORT" "" "$S3_PID" s3_answers
}
