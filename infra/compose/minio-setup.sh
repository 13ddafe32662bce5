#!/bin/sh
# docker-compose's minio-setup: the service bucket and the services' own MinIO accounts, each
# with the policy next to this file (run with the root account on every 'docker compose up';
# every step is idempotent). The local stack does the same on VersityGW: infra/servers/s3.sh.
set -eu
: "${MC_HOST_cxr:?}" "${S3_BUCKET:?}" "${S3_GATEWAY_SECRET_ACCESS_KEY:?}" "${S3_INFERENCE_SECRET_ACCESS_KEY:?}"
export MC_CONFIG_DIR=/tmp/.mc
mc mb --ignore-existing "cxr/$S3_BUCKET"
for service in gateway inference; do
  case "$service" in
    gateway) secret="$S3_GATEWAY_SECRET_ACCESS_KEY" ;;
    inference) secret="$S3_INFERENCE_SECRET_ACCESS_KEY" ;;
  esac
  # The policy names the bucket: the file says cxr-classify, S3_BUCKET may say otherwise.
  sed "s/cxr-classify/$S3_BUCKET/g" "/setup/s3-$service-policy.json" >"/tmp/$service.json"
  mc admin policy create cxr "cxr-$service" "/tmp/$service.json"
  # 'user add' of an existing user sets its secret: a changed secret takes effect here.
  mc admin user add cxr "cxr-$service" "$secret"
  # Attaching a policy that is attached already fails; that one failure is fine.
  mc admin policy attach cxr "cxr-$service" --user "cxr-$service" 2>/tmp/attach.err ||
    grep -qi 'already' /tmp/attach.err || { cat /tmp/attach.err >&2; exit 1; }
done
echo "[minio-setup] bucket $S3_BUCKET and accounts cxr-gateway, cxr-inference ready"
