/**
 * Writes the synthetic demo model and sample images:
 *   npx tsx libs/demo-model/src/cli.ts --out DIR [--samples 3] [--output probabilities|logits] [--fixed-batch]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildDemoModel, DEMO_LABELS } from './demo-classifier';
import { renderSample } from './samples';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      samples: { type: 'string', default: '3' },
      output: { type: 'string', default: 'probabilities' },
      'fixed-batch': { type: 'boolean', default: false },
    },
  });
  const count = Number(values.samples);
  if (!values.out || !Number.isInteger(count) || count < 0) {
    throw new Error('usage: cli.ts --out DIR [--samples N] [--output probabilities|logits] [--fixed-batch]');
  }
  if (values.output !== 'probabilities' && values.output !== 'logits') {
    throw new Error(`--output must be probabilities or logits, got ${values.output}`);
  }

  const model = buildDemoModel({ output: values.output, fixedBatch: values['fixed-batch'] });
  await mkdir(join(values.out, 'samples'), { recursive: true });
  await writeFile(join(values.out, 'demo-model.onnx'), model.onnx);
  const manifest = { labels: model.labels, inputSpec: model.inputSpec };
  await writeFile(join(values.out, 'demo-model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const kind of DEMO_LABELS) {
    for (let i = 1; i <= count; i++) {
      await writeFile(join(values.out, 'samples', `${kind}-${i}.png`), await renderSample(kind, { seed: i }));
    }
  }
  process.stdout.write(`wrote demo model and ${count * DEMO_LABELS.length} samples to ${values.out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
