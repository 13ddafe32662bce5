import { modelForm, type Client } from '@cxr/client';
import { buildDemoModel } from '@cxr/demo-model';

/** A 64×64 dataset of the user's with the demo model uploaded (and so its default). */
export async function datasetWithDemoModel(
  user: Client,
  name: string,
  displayName: string,
): Promise<{ datasetId: string; modelId: string }> {
  const dataset = await user.post('/v1/datasets', { name, display_name: displayName, img_width: 64, img_height: 64 });
  if (dataset.status !== 201)
    throw new Error(`creating dataset ${name}: ${dataset.status} ${JSON.stringify(dataset.body)}`);
  const demo = buildDemoModel();
  const datasetId = dataset.body.id as string;
  const model = await user.post(`/v1/datasets/${datasetId}/models`, modelForm(demo.onnx, demo.labels, demo.inputSpec));
  if (model.status !== 201) throw new Error(`uploading the demo model: ${model.status} ${JSON.stringify(model.body)}`);
  return { datasetId, modelId: model.body.id as string };
}
