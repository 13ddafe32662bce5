import { csvField, outputFormat, toCsv, toJsonl, type ResultRow } from './output';

const row = (overrides: Partial<ResultRow>): ResultRow => ({
  path: 'scans/a.png',
  request_id: 'a'.repeat(24),
  state: 'classified',
  label: 'normal',
  score: 0.91,
  error_code: null,
  error_message: null,
  ...overrides,
});

describe('the results file', () => {
  it('quotes CSV fields with commas, quotes and line breaks, and leaves the others bare', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(0.5)).toBe('0.5');
  });

  it('writes a header and one CRLF-ended row per image', () => {
    const csv = toCsv([
      row({}),
      row({
        path: 'scans/b, "odd".png',
        request_id: null,
        state: 'error',
        label: null,
        score: null,
        error_code: 'IMAGE_RULES',
        error_message: 'the image is 32x32; this dataset needs at least 64x64',
      }),
    ]);
    expect(csv).toBe(
      'path,request_id,state,label,score,error_code,error_message\r\n' +
        `scans/a.png,${'a'.repeat(24)},classified,normal,0.91,,\r\n` +
        '"scans/b, ""odd"".png",,error,,,IMAGE_RULES,the image is 32x32; this dataset needs at least 64x64\r\n',
    );
  });

  it('writes JSON Lines that read back as the rows', () => {
    const rows = [row({}), row({ path: 'line\nbreak.png', state: 'failed', label: null, score: null })];
    const lines = toJsonl(rows).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.slice(0, 2).map((line) => JSON.parse(line) as unknown)).toEqual(rows);
  });

  it('picks the format by the extension and refuses others', () => {
    expect(outputFormat('out/results.CSV')).toBe('csv');
    expect(outputFormat('results.jsonl')).toBe('jsonl');
    expect(() => outputFormat('results.xlsx')).toThrow('--out results.xlsx: name a .csv or .jsonl file');
  });
});
