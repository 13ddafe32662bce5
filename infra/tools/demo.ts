// The README's end-to-end demo against a running gateway: creates (once) a user, a dataset and
// the demo model, classifies the sample images and prints what came back.
//   GATEWAY_URL=http://127.0.0.1:8080 ADMIN_API_KEY=… DEMO_STATE=.state/dev/demo.json npx tsx infra/tools/demo.ts
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { buildDemoModel, renderSample, type SampleKind } from '@cxr/demo-model';
import { Client, createUser, imageForm, modelForm } from '@cxr/client';

interface DemoState {
  apiKey: string;
  datasetId: string;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function ensureSetUp(admin: Client, statePath: string): Promise<{ client: Client; datasetId: string }> {
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as DemoState;
    const client = admin.withKey(state.apiKey);
    if ((await client.get(`/v1/datasets/${state.datasetId}`)).status === 200)
      return { client, datasetId: state.datasetId };
  }
  const { client } = await createUser(admin, `demo-${Date.now().toString(36)}`);
  const dataset = await client.post('/v1/datasets', {
    name: 'synthetic-cxr',
    display_name: 'Synthetic chest X-rays (demo)',
    description: 'Synthetic images from the demo model script; not medical data.',
    img_width: 128,
    img_height: 128,
    maintain_ratio: true,
  });
  if (dataset.status !== 201)
    throw new Error(`creating the dataset: ${dataset.status} ${JSON.stringify(dataset.body)}`);
  const demo = buildDemoModel();
  const model = await client.post(
    `/v1/datasets/${dataset.body.id as string}/models`,
    modelForm(demo.onnx, demo.labels, demo.inputSpec, 'demo-cnn'),
  );
  if (model.status !== 201) throw new Error(`uploading the demo model: ${model.status} ${JSON.stringify(model.body)}`);
  console.log(`[demo] user, dataset ${dataset.body.id as string} and demo model ${model.body.id as string} created`);
  writeFileSync(statePath, JSON.stringify({ apiKey: client.apiKey, datasetId: dataset.body.id }), { mode: 0o600 });
  return { client, datasetId: dataset.body.id as string };
}

async function main(): Promise<void> {
  const admin = new Client(required('GATEWAY_URL'), required('ADMIN_API_KEY'));
  const { client, datasetId } = await ensureSetUp(admin, required('DEMO_STATE'));
  const samples: { kind: SampleKind; seed: number; format: 'png' | 'jpeg' }[] = [
    { kind: 'dark', seed: 1, format: 'png' },
    { kind: 'bright', seed: 2, format: 'png' },
    { kind: 'striped', seed: 3, format: 'jpeg' },
  ];
  console.log('[demo] sample                 → label     score   state       latency');
  for (const sample of samples) {
    const image = await renderSample(sample.kind, {
      width: 512,
      height: 512,
      seed: sample.seed,
      format: sample.format,
    });
    const started = performance.now();
    const submitted = await client.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(image, `${sample.kind}.${sample.format}`),
    );
    if (submitted.status !== 202)
      throw new Error(`submitting ${sample.kind}: ${submitted.status} ${JSON.stringify(submitted.body)}`);
    const view = await client.get<{
      state: string;
      result: { label: string; score: number } | null;
      errors: { message: string }[];
    }>(`/v1/classifications/${submitted.body.id as string}?wait=30`);
    const ms = performance.now() - started;
    const name = `${sample.kind}-${sample.seed}.${sample.format}`.padEnd(22);
    const label = (view.body.result?.label ?? '-').padEnd(9);
    const score = view.body.result ? view.body.result.score.toFixed(3) : '-    ';
    console.log(`[demo] ${name} → ${label} ${score}   ${view.body.state.padEnd(10)}  ${ms.toFixed(0)} ms`);
    if (view.body.state !== 'classified')
      throw new Error(`sample ${name} ended ${view.body.state}: ${JSON.stringify(view.body.errors)}`);
  }
}

main().catch((error: unknown) => {
  console.error(`[demo] ${(error as Error).message}`);
  process.exit(1);
});
