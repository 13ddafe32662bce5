#!/usr/bin/env bash
# Runs every test of a jest project alone, one jest run per test selected by its full name
# (-t '^name$'), to find tests that rely on one before them. Needs the test stack up and its
# environment set (CONTRIBUTING.md, "The test stack"). Slow: one system start per test.
#   bash infra/tools/each-test-alone.sh e2e [test files…]
# Prints PASS or FAIL per test; the jest output of each failure stays in the folder it names.
set -uo pipefail
project=${1:?usage: each-test-alone.sh PROJECT [test files…]}
shift
out=$(mktemp -d)
# The names, from a run whose -t matches nothing (every test is listed as skipped).
node_modules/.bin/jest "$@" --selectProjects "$project" -t '^$' --json --outputFile="$out/names.json" >/dev/null 2>&1
node -e '
  for (const file of require(process.argv[1]).testResults)
    for (const test of file.assertionResults)
      console.log(`${require("path").relative(process.cwd(), file.name)}\t${test.fullName}`);
' "$out/names.json" >"$out/names.tsv"
failed=0
i=0
while IFS=$'\t' read -r file name; do
  i=$((i + 1))
  pattern="^$(printf '%s' "$name" | sed -e 's/[][\.*^$?+(){}|/]/\\&/g')\$"
  if node_modules/.bin/jest "$file" --selectProjects "$project" -t "$pattern" --json --outputFile="$out/$i.json" \
    >"$out/$i.log" 2>&1 &&
    node -e 'const r = require(process.argv[1]); process.exit(r.numPassedTests === 1 && r.numFailedTests === 0 ? 0 : 1)' "$out/$i.json"; then
    echo "PASS $file :: $name"
  else
    failed=$((failed + 1))
    echo "FAIL $file :: $name (log: $out/$i.log)"
  fi
done <"$out/names.tsv"
echo "$i tests run alone, $failed failed"
((failed == 0))
