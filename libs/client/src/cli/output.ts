// The results file: one row per image, as CSV (RFC 4180 quoting) or JSON Lines, by its extension.
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { CliError } from './errors';

export type Outcome = 'classified' | 'failed' | 'error' | 'pending' | 'interrupted';

export interface ResultRow {
  path: string;
  request_id: string | null;
  /** classified or failed (the request's end), pending (still queued or running when the wait ran out), error (refused or unreachable), interrupted (Ctrl-C). */
  state: Outcome;
  label: string | null;
  score: number | null;
  error_code: string | null;
  error_message: string | null;
}

export const COLUMNS: (keyof ResultRow)[] = [
  'path',
  'request_id',
  'state',
  'label',
  'score',
  'error_code',
  'error_message',
];

export type OutputFormat = 'csv' | 'jsonl';

export function outputFormat(path: string): OutputFormat {
  const extension = extname(path).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  throw new CliError(`--out ${path}: name a .csv or .jsonl file`);
}

/** One CSV field: quoted when it holds a comma, quote, CR or LF; quotes doubled. */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(rows: ResultRow[]): string {
  const lines = [COLUMNS.join(',')];
  for (const row of rows) lines.push(COLUMNS.map((column) => csvField(row[column])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function toJsonl(rows: ResultRow[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

export async function writeResults(path: string, rows: ResultRow[]): Promise<void> {
  await writeFile(path, outputFormat(path) === 'csv' ? toCsv(rows) : toJsonl(rows));
}
