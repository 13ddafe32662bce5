#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a developer's: installs what is missing, starts
# the test stack (its own ports and state folder, beside any dev stack), runs typecheck, lint,
# the format check and every jest project (unit, integration, e2e), then stops the stack.
#
#   ./cxr test [jest args…]        CXR_TEST_REUSE_STACK=1 keeps the stack up afterwards (and reuses it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/deps.sh
source infra/deps.sh

export CXR_STACK=test
# The pinned AWS SDK runs on Node 20; its notice that later releases need Node 22 is in the README.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
ensure_npm_deps "$ROOT"
if [[ "${CXR_TEST_REUSE_STACK:-0}" != 1 ]]; then
  trap 'bash infra/stack.sh down' EXIT
fi
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
echo "[test] jest"
results="$(mktemp)"
status=0
node_modules/.bin/jest --ci --json --outputFile="$results" "$@" || status=$?
# A plain closing line with the counts, which CI reads whatever the runner.
# shellcheck disable=SC2016 # the backticks and ${} belong to the JavaScript
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$results" || true
rm -f "$results"
exit "$status"
