import type { Classification } from '@cxr/contracts';

function softmax(values: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]!);
  const exps = Array.from({ length: values.length }, (_, i) => Math.exp(values[i]! - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** Whether an output already is a probability distribution (what `auto` looks for). */
export function looksLikeProbabilities(values: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 1)) return false;
    sum += v;
  }
  return Math.abs(sum - 1) <= 1e-3;
}

/** Turns one image's raw model output into a classification per the model's declared output kind. */
export function classify(
  labels: string[],
  raw: ArrayLike<number>,
  kind: 'auto' | 'probabilities' | 'logits',
): Classification {
  if (raw.length !== labels.length) {
    throw new RangeError(`model produced ${raw.length} scores for ${labels.length} labels`);
  }
  for (let i = 0; i < raw.length; i++) {
    if (!Number.isFinite(raw[i]!)) throw new RangeError('model produced a score that is not a finite number');
  }
  const probabilities =
    kind === 'probabilities' || (kind === 'auto' && looksLikeProbabilities(raw)) ? Array.from(raw) : softmax(raw);
  const scores = labels.map((label, i) => ({ label, score: Math.min(1, Math.max(0, probabilities[i]!)) }));
  let best = scores[0]!;
  for (const s of scores) if (s.score > best.score) best = s;
  return { label: best.label, score: best.score, scores };
}
