# shellcheck shell=bash
# Installs the npm dependencies when they are missing or older than the lock file.
# Sourced by infra/test.sh and infra/run.sh.
ensure_npm_deps() {
  local root="$1"
  if [[ ! -f "$root/node_modules/.package-lock.json" || "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
    echo "[deps] installing npm dependencies (npm ci)"
    # The CUDA add-on of onnxruntime-node downloads from outside the npm registry; the CPU build is in the package.
    (cd "$root" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
  fi
}
