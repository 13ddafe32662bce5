# shellcheck shell=bash
# S3-compatible storage: VersityGW with the posix backend (MinIO is not obtainable
# through the Go proxy here). Sourced by infra/stack.sh after infra/lib.sh.
#
# Accounts: the root key (secrets.env) belongs to the setup tools and the tests only. Each
# service that uses S3 has its own account in VersityGW's internal IAM (--iam-dir), and the
# service bucket's policy gives each account the operations on the prefixes its service uses
# (s3_provision); the results service has no account.

VERSITYGW_VERSION=v1.7.0
S3_DIR="$CXR_STATE_DIR/s3"
S3_DATA="$S3_DIR/data"
S3_SIDECAR="$S3_DIR/meta"
S3_MODE_FILE="$S3_DIR/metadata-mode" # 'xattr' or 'sidecar', decided once per state dir
# VersityGW's internal IAM: users.json (mode 600) with the service accounts. Outside S3_DATA,
# where every directory is a bucket.
S3_IAM="$S3_DIR/iam"
S3_LOG="$LOG_DIR/s3.log"
S3_PID="$PID_DIR/s3.pid"
# What the running server was started with; a server started before the IAM is restarted.
S3_STARTED_FILE="$PID_DIR/s3.started"
S3_STARTED_AS="$VERSITYGW_VERSION iam"

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
  mkdir -p "$S3_DATA" "$S3_IAM" "$LOG_DIR" "$PID_DIR"
  chmod 700 "$S3_IAM"
  if s3_running; then
    if [[ "$(cat "$S3_STARTED_FILE" 2>/dev/null)" == "$S3_STARTED_AS" ]]; then
      log "s3 already running (pid $(<"$S3_PID"), port $CXR_S3_PORT)"
      s3_provision
      return 0
    fi
    log "s3 was started without its IAM (an older infra/servers/s3.sh): restarting it"
    s3_down
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
      "$bin" --port "$LOOPBACK:$CXR_S3_PORT" --region us-east-1 --quiet --iam-dir "$S3_IAM" \
      posix "${backend_opts[@]}" "$S3_DATA"
    echo "$S3_STARTED_AS" >"$S3_STARTED_FILE"
  fi
  await_up s3 "$CXR_S3_PORT" "$S3_PID" "$S3_LOG" 30 "no HTTP answer" s3_answers
  s3_provision
  log "s3 up (pid $(<"$S3_PID"))"
}

# s3_root_call METHOD PATH [BODY]: a request signed (SigV4) with the root key; prints the HTTP
# status, then a space and the answer's body. The body goes on stdin and the key through a
# curl config on a pipe: neither appears in argv, where 'ps' would show it.
s3_root_call() {
  local method="$1" path="$2" body="${3:-}" out code
  out="$(mktemp)"
  code="$(printf '%s' "$body" | curl -sS -m 10 -o "$out" -w '%{http_code}' -X "$method" --data-binary @- \
    --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: $(printf '%s' "$body" | sha256sum | cut -d' ' -f1)" \
    -K <(printf 'user = "%s:%s"\n' "$CXR_S3_ACCESS_KEY" "$CXR_S3_SECRET_KEY") \
    "http://$LOOPBACK:$CXR_S3_PORT$path")" || code=000
  echo "$code $(tr -d '\n' <"$out" | head -c 400)"
  rm -f "$out"
}

# s3_account ACCESS SECRET: the account exists with that secret (created, or its secret reset
# from secrets.env, so a new secrets.env still matches an old IAM).
s3_account() {
  local access="$1" secret="$2" answer
  answer="$(s3_root_call PATCH /create-user "<Account><Access>$access</Access><Secret>$secret</Secret><Role>user</Role></Account>")"
  if [[ "$answer" == 409* && "$answer" == *XAdminUserExists* ]]; then
    answer="$(s3_root_call PATCH "/update-user?access=$access" "<MutableProps><Secret>$secret</Secret><Role>user</Role></MutableProps>")"
  fi
  [[ "$answer" == 2* ]] || fail_server s3 "$CXR_S3_PORT" "$S3_LOG" "creating S3 account $access: HTTP $answer"
}

# s3_bucket_policy: who may do what in the service bucket. Object keys are images/<dataset>/…
# and models/<dataset>/… (services/gateway/src/routes); ListBucket is what HeadBucket (the
# services' readiness check) needs. VersityGW decides a non-root request by the policy alone
# once the bucket has one (auth/access-control.go VerifyAccess), so nothing else is allowed.
s3_bucket_policy() {
  local b="arn:aws:s3:::$CXR_S3_BUCKET"
  cat <<EOF
{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Principal":{"AWS":["$S3_GATEWAY_ACCESS_KEY","$S3_INFERENCE_ACCESS_KEY"]},"Action":["s3:ListBucket"],"Resource":["$b"]},
{"Effect":"Allow","Principal":{"AWS":["$S3_GATEWAY_ACCESS_KEY"]},"Action":["s3:PutObject","s3:AbortMultipartUpload","s3:DeleteObject"],"Resource":["$b/images/*","$b/models/*"]},
{"Effect":"Allow","Principal":{"AWS":["$S3_GATEWAY_ACCESS_KEY"]},"Action":["s3:GetObject"],"Resource":["$b/models/*"]},
{"Effect":"Allow","Principal":{"AWS":["$S3_INFERENCE_ACCESS_KEY"]},"Action":["s3:GetObject"],"Resource":["$b/images/*","$b/models/*"]}
]}
EOF
}

# s3_provision: the service accounts, the service bucket (owned by root) and its policy;
# idempotent.
s3_provision() {
  s3_account "$S3_GATEWAY_ACCESS_KEY" "$CXR_S3_GATEWAY_SECRET_KEY"
  s3_account "$S3_INFERENCE_ACCESS_KEY" "$CXR_S3_INFERENCE_SECRET_KEY"
  local answer
  answer="$(s3_root_call PUT "/$CXR_S3_BUCKET")"
  [[ "$answer" == 2* || "$answer" == *BucketAlreadyOwnedByYou* ]] ||
    fail_server s3 "$CXR_S3_PORT" "$S3_LOG" "creating bucket $CXR_S3_BUCKET: HTTP $answer"
  answer="$(s3_root_call PUT "/$CXR_S3_BUCKET?policy=" "$(s3_bucket_policy)")"
  [[ "$answer" == 2* ]] || fail_server s3 "$CXR_S3_PORT" "$S3_LOG" "setting the policy of bucket $CXR_S3_BUCKET: HTTP $answer"
}

s3_down() {
  stop_pid s3 "$S3_PID" 15
  rm -f "$S3_STARTED_FILE"
}

s3_status() {
  report_status s3 "$CXR_S3_PORT" "" "$S3_PID" s3_answers
}
