#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a developer's: installs what is missing, starts
# the test stack (its own ports and state folder, beside any dev stack), runs typecheck, lint,
# the format check and every jest project (unit, integration, e2e, security together; then chaos alone, as
# it restarts the servers the others use), then stops the stack.
#
#   ./cxr test [jest args…]        CXR_TEST_REUSE_STACK=1 keeps the stack up afterwards (and reuses it).
#   ./cxr test --selectProjects chaos    one project (or several) as jest selects them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/deps.sh
source infra/deps.sh

export CXR_STACK=test
ensure_node
ensure_npm_deps "$ROOT"
# The projects asked for (--selectProjects, as jest reads it: the names up to the next option),
# every one by default; the other arguments go to both jest runs, before --selectProjects, whose
# list would otherwise swallow a test path pattern.
projects=()
args=()
while (($#)); do
  case "$1" in
    --selectProjects)
      shift
      while (($#)) && [[ "$1" != -* ]]; do
        projects+=("$1")
        shift
      done
      ;;
    --selectProjects=*)
      projects+=("${1#*=}")
      shift
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
((${#projects[@]})) || projects=(unit integration e2e security deploy chaos)
together=()
chaos=0
for p in "${projects[@]}"; do
  if [[ "$p" == chaos ]]; then chaos=1; else together+=("$p"); fi
done

# The deploy project's kustomize and kubeconform are built with Go the first time (minutes on a
# fresh machine): start that now, beside the stack's start, typecheck and lint; the test waits on
# the same lock and reuses the result.
tools_pid=""
for p in "${projects[@]}"; do
  if [[ "$p" == deploy ]]; then
    mkdir -p "$ROOT/.state"
    setsid bash infra/k8s/tools.sh >/dev/null 2>"$ROOT/.state/k8s-tools.log" &
    tools_pid=$!
    break
  fi
done
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  # A build cut short leaves nothing behind (it renames its result into place when done).
  [[ -z "$tools_pid" ]] || kill -- "-$tools_pid" 2>/dev/null || true
  # Services a chaos run started on this stack (it stops them itself, unless it was killed), then the servers.
  bash infra/run.sh stop-services >/dev/null || true
  if [[ "${CXR_TEST_REUSE_STACK:-0}" != 1 ]]; then bash infra/stack.sh down; fi
}
trap cleanup EXIT
bash infra/stack.sh up
# The e2e project drives the web page in Debian's headless Chromium (tests/e2e/web-page.test.ts).
if [[ " ${together[*]} " == *" e2e "* && -z "${CHROMIUM_PATH:-}" ]] && ! command -v chromium >/dev/null; then
  if [[ $EUID -ne 0 ]]; then
    echo "[test] the e2e project needs Chromium: apt-get install chromium (as root), or set CHROMIUM_PATH" >&2
    exit 1
  fi
  echo "[test] installing Debian's chromium for the web page test"
  DEBIAN_FRONTEND=noninteractive apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
set -a
# shellcheck disable=SC1090
source <(bash infra/stack.sh env)
set +a

echo "[test] typecheck"
node_modules/.bin/tsc -p tsconfig.json
echo "[test] lint and format"
node_modules/.bin/eslint .
node_modules/.bin/prettier --check --log-level warn .
results="$(mktemp -d)"
status=0
# Each jest run started, as a label and the report it is to write, for the closing lines.
reports=()
# --passWithNoTests: a test path pattern may match files of one run only; no test at all still fails below.
if ((${#together[@]})); then
  echo "[test] jest: ${together[*]}"
  reports+=("${together[*]}" "$results/1.json")
  node_modules/.bin/jest --ci --json --outputFile="$results/1.json" --passWithNoTests "${args[@]}" \
    --selectProjects "${together[@]}" || status=$?
fi
if ((chaos)); then
  echo "[test] jest: chaos, alone (it restarts the servers)"
  reports+=(chaos "$results/2.json")
  CXR_CHAOS_ALONE=1 node_modules/.bin/jest --ci --json --outputFile="$results/2.json" --passWithNoTests "${args[@]}" \
    --selectProjects chaos || status=$?
fi
# A plain closing line with the counts of both runs, which CI reads whatever the runner: failed
# tests, and failed suites apart (an afterAll error or a module that does not load fails a suite
# with no failed test), each named; a run that left no readable report ends with a FAILED line.
# A failure seen there fails the command even if jest exited 0; jest's own exit status is kept.
node --import tsx infra/tools/jest-summary.ts "${reports[@]}" || ((status)) || status=1
rm -rf "$results"
exit "$status"
