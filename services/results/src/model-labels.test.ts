import { labelProblem, ModelLabels } from './model-labels';

describe('ModelLabels', () => {
  it('reads a model once, shares concurrent reads and forgets the least recently used past its label budget', async () => {
    const reads: string[] = [];
    // Two labels a model, room for four: two models.
    const labels = new ModelLabels(async (id) => {
      reads.push(id);
      return [`${id}-a`, `${id}-b`];
    }, 4);
    const [a1, a2] = await Promise.all([labels.get('m1'), labels.get('m1')]);
    expect(a1).toBe(a2);
    expect([...a1!]).toEqual(['m1-a', 'm1-b']);
    await labels.get('m2');
    await labels.get('m1');
    await labels.get('m3'); // m2 is the least recently used
    await labels.get('m1');
    await labels.get('m2');
    expect(reads).toEqual(['m1', 'm2', 'm3', 'm2']);
  });

  it('keeps one model larger than the whole budget', async () => {
    let reads = 0;
    const labels = new ModelLabels(async () => {
      reads += 1;
      return ['a', 'b', 'c'];
    }, 2);
    await labels.get('big');
    await labels.get('big');
    expect(reads).toBe(1);
  });

  it('does not remember a missing model or a failed read', async () => {
    let calls = 0;
    const labels = new ModelLabels(async () => {
      calls += 1;
      if (calls === 1) throw new Error('database down');
      if (calls === 2) return null;
      return ['a'];
    });
    await expect(labels.get('m')).rejects.toThrow('database down');
    expect(await labels.get('m')).toBeNull();
    expect(await labels.get('m')).toEqual(new Set(['a']));
    expect(await labels.get('m')).toEqual(new Set(['a']));
    expect(calls).toBe(3);
  });
});

describe('labelProblem', () => {
  const model = new Set(['normal', 'covid', 'pneumonia']);
  const scores = (...names: string[]) => names.map((label) => ({ label, score: 1 / names.length }));
  const even = 1 / 3;

  it('accepts the model labels in any order', () => {
    expect(
      labelProblem(model, { label: 'covid', score: even, scores: scores('pneumonia', 'normal', 'covid') }),
    ).toBeNull();
  });

  it('refuses a score outside 0..1, a top score that is not the label’s own, and a label that is not the top one', () => {
    const with_ = (covid: number, normal: number) => [
      { label: 'normal', score: normal },
      { label: 'covid', score: covid },
      { label: 'pneumonia', score: 0 },
    ];
    expect(labelProblem(model, { label: 'covid', score: 0.7, scores: with_(0.7, 0.3) })).toBeNull();
    expect(labelProblem(model, { label: 'covid', score: 1.5, scores: with_(1.5, 0) })).toMatch(/between 0 and 1/);
    expect(labelProblem(model, { label: 'covid', score: 0.7, scores: with_(0.7, -0.1) })).toMatch(/between 0 and 1/);
    expect(labelProblem(model, { label: 'covid', score: 0.9, scores: with_(0.7, 0.3) })).toMatch(/own score/);
    expect(labelProblem(model, { label: 'covid', score: 0.3, scores: with_(0.3, 0.7) })).toMatch(/top-scored/);
  });

  it('refuses a label or a score that is not the model’s, a missing score and a repeated one', () => {
    const all = scores('normal', 'covid', 'pneumonia');
    expect(labelProblem(model, { label: '<img src=x onerror=alert(1)>', score: even, scores: all })).toMatch(/label/);
    expect(labelProblem(model, { label: 'covid', score: even, scores: scores('normal', 'covid', 'other') })).toMatch(
      /does not have/,
    );
    expect(labelProblem(model, { label: 'covid', score: even, scores: scores('normal', 'covid') })).toMatch(/2 score/);
    expect(labelProblem(model, { label: 'covid', score: even, scores: scores('normal', 'covid', 'covid') })).toMatch(
      /twice/,
    );
  });
});
