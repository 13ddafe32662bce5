// Checks that the tests pinning a fix fail without it: for each entry of mutants.json, undoes
// the fix in the source (one exact text replaced), runs the named tests on the test stack, and
// restores the file. A mutant the tests do not catch is a test that passes without what it
// claims to test. Needs the test stack up and its environment set (CONTRIBUTING.md, "The test
// stack"); the services the tests start run the mutated source.
//   npx tsx infra/tools/mutants.ts [infra/tools/mutants.json]
// Prints CAUGHT or MISSED per mutant; exit code 1 when one was missed.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

interface Mutant {
  finding: string;
  file: string;
  from: string;
  to: string;
  test: string;
  /** A -t pattern for the tests that pin the fix; empty: the whole file. */
  name: string;
}

const ROOT = join(__dirname, '../..');
const list = process.argv[2] ?? join(__dirname, 'mutants.json');
const mutants = JSON.parse(readFileSync(list, 'utf8')) as Mutant[];
let missed = 0;
for (const mutant of mutants) {
  const path = join(ROOT, mutant.file);
  const original = readFileSync(path, 'utf8');
  if (original.split(mutant.from).length !== 2) {
    throw new Error(`${mutant.file}: the text to replace is not there exactly once (${mutant.finding})`);
  }
  writeFileSync(path, original.replace(mutant.from, mutant.to));
  try {
    const project = basename(dirname(mutant.test));
    const run = spawnSync(
      'node_modules/.bin/jest',
      [mutant.test, '--selectProjects', project, ...(mutant.name ? ['-t', mutant.name] : [])],
      { cwd: ROOT, encoding: 'utf8', timeout: 600_000 },
    );
    const counts = /^Tests:.*$/m.exec(run.stderr)?.[0] ?? 'no jest summary';
    const failed = (run.stderr.match(/^\s*✕ .*$/gm) ?? []).map((line) => line.trim());
    if (run.status !== 0 && failed.length > 0) {
      console.log(`CAUGHT ${mutant.finding}\n       ${counts}\n       ${failed.join('\n       ')}`);
    } else {
      missed += 1;
      console.log(`MISSED ${mutant.finding}\n       ${counts}`);
    }
  } finally {
    writeFileSync(path, original);
  }
}
console.log(`${mutants.length - missed} of ${mutants.length} mutants caught`);
process.exitCode = missed > 0 ? 1 : 0;
