// Runs in a child process (see model-check.ts): ONNX Runtime loads and runs models
// synchronously, which would stall the gateway's event loop for as long as that takes, and a
// separate process can be killed on a time limit and takes its memory with it. (A worker
// thread cannot be used: the ONNX Runtime addon refuses to load in a second thread.)
import * as ort from 'onnxruntime-node';
import { inputShape, type InputSpec } from '@cxr/contracts';

export interface CheckedModel {
  inputName: string;
  outputName: string;
}

export type CheckOutcome = { ok: true; model: CheckedModel } | { ok: false; code: string; message: string };

class Rejection extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const unprocessable = (message: string, code: string) => new Rejection(code, message);

function describeShape(shape: ReadonlyArray<number | string>): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Loads an uploaded ONNX file the way the inference service will, and runs it once on a blank
 * image of the declared input size. Rejections say what is wrong in terms the uploader can fix.
 */
async function checkModelFile(path: string, labels: string[], spec: InputSpec): Promise<CheckedModel> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path, {
      graphOptimizationLevel: 'basic',
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
  } catch (error) {
    throw unprocessable(`the file is not a model ONNX Runtime can load: ${firstLine(error)}`, 'MODEL_NOT_LOADABLE');
  }
  try {
    if (session.inputNames.length !== 1) {
      throw unprocessable(
        `the model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); an image classifier needs exactly one`,
        'MODEL_INPUTS',
      );
    }
    if (session.outputNames.length !== 1) {
      throw unprocessable(
        `the model has ${session.outputNames.length} outputs (${session.outputNames.join(', ')}); a classifier needs exactly one`,
        'MODEL_OUTPUTS',
      );
    }
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    const meta = session.inputMetadata[0];
    const expected = inputShape(spec, 1);
    if (meta?.isTensor) {
      if (meta.type !== 'float32') {
        throw unprocessable(
          `the model input '${inputName}' is ${meta.type}; only float32 image inputs are supported`,
          'MODEL_INPUT_TYPE',
        );
      }
      if (meta.shape.length > 0) {
        const fits =
          meta.shape.length === 4 &&
          meta.shape.every((dim, i) => typeof dim === 'string' || dim === -1 || dim === expected[i]);
        if (!fits) {
          throw unprocessable(
            `the model input '${inputName}' has shape ${describeShape(meta.shape)} but input_spec describes ` +
              `${describeShape(expected)} (layout ${spec.layout}, ${spec.channels} channel(s), ${spec.height}x${spec.width})`,
            'MODEL_INPUT_SHAPE',
          );
        }
      }
    }

    let output: ort.Tensor;
    try {
      const blank = new ort.Tensor('float32', new Float32Array(expected.reduce((a, b) => a * b, 1)), expected);
      const result = await session.run({ [inputName]: blank });
      output = result[outputName]!;
    } catch (error) {
      throw unprocessable(
        `the model failed on an input of shape ${describeShape(expected)} from input_spec: ${firstLine(error)}`,
        'MODEL_RUN_FAILED',
      );
    }
    if (output.type !== 'float32') {
      throw unprocessable(
        `the model output '${outputName}' is ${output.type}; a float32 score per label is needed`,
        'MODEL_OUTPUT_TYPE',
      );
    }
    if (output.size !== labels.length) {
      throw unprocessable(
        `the model output '${outputName}' has ${output.size} value(s) per image (shape ${describeShape(output.dims)}) ` +
          `but ${labels.length} label(s) were given; give one label per output`,
        'LABELS_MISMATCH',
      );
    }
    return { inputName, outputName };
  } finally {
    await session.release();
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.slice(0, 500);
}

export interface CheckRequest {
  path: string;
  labels: string[];
  spec: InputSpec;
}

if (require.main === module && process.send) {
  process.once('message', (request: CheckRequest) => {
    const reply = (outcome: CheckOutcome) => process.send!(outcome, () => process.exit(0));
    checkModelFile(request.path, request.labels, request.spec).then(
      (model) => reply({ ok: true, model }),
      (error: unknown) =>
        reply({
          ok: false,
          code: error instanceof Rejection ? error.code : 'MODEL_CHECK_FAILED',
          message: error instanceof Error ? error.message : String(error),
        }),
    );
  });
}
