#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a developer's: installs what is missing, starts
# the test stack (its own ports and state folder, beside any dev stack), runs typecheck, lint,
# the format check and every jest project (unit, integration, e2e together; then chaos alone, as
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
# The pinned AWS SDK runs on Node 20; its notice that later releases need Node 22 is in the README.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
ensure_npm_deps "$ROOT"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  # Services a chaos run started on this stack (it stops them itself, unless it was killed), then the servers.
  bash infra/run.sh stop-services >/dev/null || true
  if [[ "${CXR_TEST_REUSE_STACK:-0}" != 1 ]]; then bash infra/stack.sh down; fi
}
trap cleanup EXIT
bash infra/stack.sh up
set -a
# shellcheck disable=SC1090
source <(bash infra/stack.sh env)
set +a

echo "[test] typecheck"
node_modules/.bin/tsc -p tsconfig.json
echo "[test] lint and format"
node_modules/.bin/eslint .
node_modules/.bin/prettier --check --log-level warn .
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
((${#projects[@]})) || projects=(unit integration e2e chaos)
together=()
chaos=0
for p in "${projects[@]}"; do
  if [[ "$p" == chaos ]]; then chaos=1; else together+=("$p"); fi
done

results="$(mktemp -d)"
status=0
# --passWithNoTests: a test path pattern may match files of one run only; no test at all still fails below.
if ((${#together[@]})); then
  echo "[test] jest: ${together[*]}"
  node_modules/.bin/jest --ci --json --outputFile="$results/1.json" --passWithNoTests "${args[@]}" \
    --selectProjects "${together[@]}" || status=$?
fi
if ((chaos)); then
  echo "[test] jest: chaos, alone (it restarts the servers)"
  CXR_CHAOS_ALONE=1 node_modules/.bin/jest --ci --json --outputFile="$results/2.json" --passWithNoTests "${args[@]}" \
    --selectProjects chaos || status=$?
fi
# A plain closing line with the counts of both runs, which CI reads whatever the runner.
# shellcheck disable=SC2016 # the backticks and ${} belong to the JavaScript
node -e 'const fs = require("fs");
  const t = { passed: 0, failed: 0, skipped: 0 };
  for (const f of process.argv.slice(1).filter((f) => fs.existsSync(f))) {
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    t.passed += r.numPassedTests; t.failed += r.numFailedTests; t.skipped += r.numPendingTests;
  }
  console.log(`tests: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  if (t.passed + t.failed + t.skipped === 0) { console.error("[test] no test ran"); process.exit(1); }' \
  "$results/1.json" "$results/2.json" || ((status)) || status=1
rm -rf "$results"
exit "$status"
