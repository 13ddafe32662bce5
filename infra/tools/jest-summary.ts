// Prints the closing lines of infra/test.sh and exits 1 unless every jest run passed.
//
//   node --import tsx infra/tools/jest-summary.ts LABEL REPORT.json [LABEL REPORT.json …]
//
// One pair per jest run that was started: a report that is absent means jest died before it
// could write one, which fails like a failed test.
import { existsSync, readFileSync } from 'node:fs';
import { summarize, type Run } from './jest-report';

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) {
  console.error('usage: jest-summary.ts LABEL REPORT.json [LABEL REPORT.json …]');
  process.exit(2);
}
const runs: Run[] = [];
for (let i = 0; i < args.length; i += 2) {
  const [label, file] = [args[i]!, args[i + 1]!];
  runs.push({ label, file, text: existsSync(file) ? readFileSync(file, 'utf8') : null });
}
const { line, problems, ok } = summarize(runs, process.cwd());
for (const problem of problems) console.log(`[test] ${problem}`);
console.log(line);
// The counts alone would read as a pass when a run left no report: the last line says so.
if (problems.length > 0) {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more above)` : '';
  console.log(`[test] FAILED: ${problems[0]}${more}`);
}
if (!ok) process.exit(1);
