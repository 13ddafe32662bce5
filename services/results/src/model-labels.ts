/**
 * Each model's labels as sets, read once per model id: models are immutable once uploaded, so a
 * result's labels are checked against memory, not the database, on the hot path. Concurrent
 * lookups of one model share one read; a failed read or a missing model is not remembered.
 */
export class ModelLabels {
  private readonly known = new Map<string, { labels: Promise<ReadonlySet<string> | null>; size: number }>();
  private held = 0;

  constructor(
    private readonly load: (modelId: string) => Promise<readonly string[] | null>,
    /**
     * Labels held at most, over all models (a model may have 10 000 labels of 128 characters);
     * the least recently used models go first. One model is kept whatever its size.
     */
    private readonly maxLabels = 100_000,
  ) {}

  /** The model's labels, or null when there is no such model. */
  get(modelId: string): Promise<ReadonlySet<string> | null> {
    const cached = this.known.get(modelId);
    if (cached) {
      this.known.delete(modelId);
      this.known.set(modelId, cached);
      return cached.labels;
    }
    const entry = { labels: this.load(modelId).then((labels) => (labels ? new Set(labels) : null)), size: 0 };
    this.known.set(modelId, entry);
    entry.labels.then(
      (labels) => {
        if (this.known.get(modelId) !== entry) return;
        if (!labels) {
          this.known.delete(modelId);
          return;
        }
        entry.size = labels.size;
        this.held += entry.size;
        this.evict();
      },
      () => {
        if (this.known.get(modelId) === entry) this.known.delete(modelId);
      },
    );
    return entry.labels;
  }

  private evict(): void {
    for (const [id, entry] of this.known) {
      if (this.held <= this.maxLabels || this.known.size <= 1) return;
      this.known.delete(id);
      this.held -= entry.size;
    }
  }
}

/**
 * Why a classification does not fit the model's labels, or null when it does: the label is one
 * of the model's, every label is scored once, each score is a probability, and the label is the
 * top-scored one with its own score. (The sum is not checked: a model declared as giving
 * probabilities may give independent ones, e.g. sigmoid outputs.)
 */
export function labelProblem(
  labels: ReadonlySet<string>,
  classification: { label: string; score: number; scores: readonly { label: string; score: number }[] },
): string | null {
  if (!labels.has(classification.label)) return 'the label is not one of the model labels';
  if (classification.scores.length !== labels.size) {
    return `${classification.scores.length} score(s) for a model of ${labels.size} label(s)`;
  }
  const seen = new Set<string>();
  let top = -1;
  for (const { label, score } of classification.scores) {
    if (!labels.has(label)) return 'a score names a label the model does not have';
    if (seen.has(label)) return 'a label is scored twice';
    if (!(score >= 0 && score <= 1)) return 'a score is not between 0 and 1';
    seen.add(label);
    top = Math.max(top, score);
  }
  const own = classification.scores.find((s) => s.label === classification.label)!.score;
  if (classification.score !== own) return "the score is not the label's own score";
  if (own !== top) return 'the label is not the top-scored one';
  return null;
}
