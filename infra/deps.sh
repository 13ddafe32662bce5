# shellcheck shell=bash
# Puts a supported Node.js on PATH, and installs the npm dependencies when they are missing or
# older than the lock file. Sourced by infra/test.sh and infra/run.sh.

# The Node.js the project is measured and tested on: the active LTS line. Node 20 left support on
# 2026-04-30; the gateway's extra listening sockets need reusePort (Node 22.12 and later).
CXR_NODE_VERSION=24.22.3
CXR_NODE_MINIMUM=22.12.0

# ensure_node: keeps the machine's node when it is CXR_NODE_MINIMUM or later; otherwise unpacks the
# official build of CXR_NODE_VERSION from the npm registry (package node-<os>-<arch>, checked
# against the registry's integrity hash by npm) once per machine into $CXR_CACHE_DIR/node, and
# puts it first on PATH for this script and everything it starts (npm and npx run on it too).
ensure_node() {
  local have
  have="$(node -v 2>/dev/null || true)"
  if [[ -n "$have" ]] && [[ "$(printf '%s\n%s\n' "$CXR_NODE_MINIMUM" "${have#v}" | sort -V | head -1)" == "$CXR_NODE_MINIMUM" ]]; then
    return 0
  fi
  local os="" arch=""
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
  esac
  if [[ -z "$os" || -z "$arch" ]]; then
    echo "[deps] no Node.js $CXR_NODE_MINIMUM or later here (found ${have:-none}), and no build of it for this platform on the npm registry; install it" >&2
    return 1
  fi
  local cache="${CXR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cxr-classify}/node"
  local dir="$cache/node-$os-$arch-$CXR_NODE_VERSION"
  if [[ ! -x "$dir/bin/node" ]]; then
    echo "[deps] Node.js ${have:-(none)} is older than $CXR_NODE_MINIMUM: installing Node.js $CXR_NODE_VERSION into $dir (once per machine)"
    mkdir -p "$cache"
    (
      flock 9
      if [[ ! -x "$dir/bin/node" ]]; then
        local tmp
        tmp="$(mktemp -d "$cache/.unpack.XXXXXX")"
        (cd "$tmp" && npm pack --silent "node-$os-$arch@$CXR_NODE_VERSION" >/dev/null && tar -xzf ./*.tgz) &&
          rm -rf "$dir" && mv "$tmp/package" "$dir"
        rm -rf "$tmp"
      fi
    ) 9>"$cache/.lock"
    [[ -x "$dir/bin/node" ]] || { echo "[deps] installing Node.js $CXR_NODE_VERSION failed" >&2 && return 1; }
  fi
  export PATH="$dir/bin:$PATH"
}

ensure_npm_deps() {
  local root="$1"
  if [[ ! -f "$root/node_modules/.package-lock.json" || "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
    echo "[deps] installing npm dependencies (npm ci)"
    # The CUDA add-on of onnxruntime-node downloads from outside the npm registry; the CPU build is in the package.
    (cd "$root" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
  fi
}
