// `cxr`, the command line for users of CXR Classify: classify folders of X-rays with progress,
// and manage datasets and models. Each command takes --json for scripts.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CxrClient, succeed, type ClassifyTarget, type InputSpec, type Schemas } from '../cxr-client';
import { classifyFiles, summarize, type Summary } from './classify';
import { configPath, loadCliConfig, readConfigFile, writeConfigFile, type CliConfig } from './config';
import { CliError, explain } from './errors';
import { discoverImages } from './files';
import { outputFormat, writeResults, type ResultRow } from './output';
import { progressBar } from './progress';
import { readSecret } from './prompt';
import { uploadProgressFetch } from './upload';

/** The exit code of a run stopped by Ctrl-C, as shells report it (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

interface JsonOption {
  json?: boolean;
}

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('a whole number of at least 1');
  return number;
}

function print(options: JsonOption, data: unknown, text: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

/** Rows as an aligned text table. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (value: unknown) =>
    value === null || value === undefined ? '-' : typeof value === 'string' ? value : JSON.stringify(value);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => value.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map((row) => line(columns.map((column) => cell(row[column]))))].join('\n');
}

/** The API this run talks to, for error messages. */
let apiUrl: string | undefined;

async function connect(): Promise<{ client: CxrClient; config: CliConfig }> {
  const config = await loadCliConfig();
  apiUrl = config.url;
  return { client: new CxrClient({ baseUrl: config.url, apiKey: config.apiKey }), config };
}

async function allPages<T>(page: (before?: string) => Promise<{ items: T[]; next: string | null }>): Promise<T[]> {
  const items: T[] = [];
  let before: string | undefined;
  do {
    const answer = await page(before);
    items.push(...answer.items);
    before = answer.next ?? undefined;
  } while (before);
  return items;
}

interface ClassifyOptions extends JsonOption {
  dataset?: string;
  model?: string;
  concurrency: number;
  wait: number;
  out?: string;
  callbackUrl?: string;
}

async function classifyCommand(paths: string[], options: ClassifyOptions): Promise<number> {
  if (Boolean(options.dataset) === Boolean(options.model)) {
    throw new CliError('name one target: --dataset ID (its default model) or --model ID');
  }
  if (options.out) outputFormat(options.out); // refuse a bad name before the work, not after
  const target: ClassifyTarget = options.dataset ? { dataset: options.dataset } : { model: options.model as string };
  const files = await discoverImages(paths);
  if (files.length === 0) throw new CliError(`no .png, .jpg or .jpeg files in ${paths.join(', ')}`);
  const { client } = await connect();

  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C: now
    process.stderr.write(
      '\ninterrupted: sending no more images and writing what is done; run the same command again to finish (nothing is sent twice)\n',
    );
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  const done: ResultRow[] = [];
  const progress = progressBar(files.length);
  let rows: ResultRow[] = done;
  try {
    rows = await classifyFiles({
      client,
      files,
      target,
      concurrency: options.concurrency,
      wait: options.wait,
      ...(options.callbackUrl !== undefined && { callbackUrl: options.callbackUrl }),
      signal: interrupt.signal,
      onRow: (row) => {
        done.push(row);
        progress.tick(summarize(done, files.length));
      },
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    // Even when the run stopped on an error: what was done is written.
    if (options.out) await writeResults(options.out, rows === done ? sortLike(done, files) : rows);
  }
  const summary = summarize(rows, files.length);
  print(options, { summary, out: options.out ?? null, results: rows }, () => summaryTable(summary, options.out));
  if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
  return summary.failed + summary.errors + summary.pending + summary.interrupted > 0 ? 1 : 0;
}

function sortLike(rows: ResultRow[], files: string[]): ResultRow[] {
  const order = new Map(files.map((file, i) => [file, i]));
  return [...rows].sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0));
}

function summaryTable(summary: Summary, out: string | undefined): string {
  const rows = (Object.entries(summary) as [string, number][])
    .filter(([state, count]) => count > 0 || ['classified', 'failed', 'errors'].includes(state))
    .map(([state, count]) => ({ outcome: state, images: count }));
  const notes = [
    summary.failed > 0 ? 'failed: the model could not classify the image (see error_code in the results)' : '',
    summary.errors > 0 ? 'errors: the API refused the image (IMAGE_RULES, TOO_LARGE…) or it could not be read' : '',
    summary.pending + summary.interrupted + summary.skipped > 0
      ? 'pending, interrupted or skipped: run the same command again to finish them (nothing is sent twice)'
      : '',
    out ? `results: ${out}` : '',
  ].filter(Boolean);
  return [table(rows, ['outcome', 'images']), ...notes].join('\n');
}

async function loginCommand(options: JsonOption & { url?: string; apiKey?: string }): Promise<number> {
  const path = configPath();
  const saved: Partial<CliConfig> = await readConfigFile(path).catch(() => ({}));
  const url = options.url ?? process.env.CXR_URL ?? saved.url;
  if (!url) throw new CliError('which API? run cxr login --url https://cxr.example.org');
  const apiKey = options.apiKey ?? (await readSecret('API key: '));
  if (!apiKey) throw new CliError('no API key given; paste the key your administrator gave you');
  const client = new CxrClient({ baseUrl: url, apiKey });
  let me: Schemas['User'];
  try {
    me = await succeed(client.api.GET('/v1/users/me'));
  } catch (error) {
    throw new CliError(explain(error, url)?.replace('; run cxr login or set CXR_API_KEY', '') ?? String(error));
  }
  await writeConfigFile(path, { url, apiKey });
  print(options, { url, user: me, config: path }, () => `logged in to ${url} as ${me.username}; settings in ${path}`);
  return 0;
}

const DATASET_COLUMNS = ['id', 'name', 'display_name', 'min_size', 'visibility', 'default_model'];
const datasetRow = (dataset: Schemas['Dataset']) => ({
  ...dataset,
  min_size: `${dataset.img_width}x${dataset.img_height}${dataset.maintain_ratio ? ' (ratio)' : ''}`,
});
const MODEL_COLUMNS = ['id', 'name', 'version', 'status', 'default', 'labels', 'input', 'uploaded_on'];
const modelRow = (model: Schemas['Model']) => ({
  ...model,
  default: model.is_default ? 'yes' : '',
  labels: model.labels.join(','),
  input: `${model.input_spec.channels}x${model.input_spec.width}x${model.input_spec.height} ${model.input_spec.layout}`,
});

function listModels(client: CxrClient, datasetId: string): Promise<Schemas['Model'][]> {
  return allPages((before) =>
    succeed(
      client.api.GET('/v1/datasets/{id}/models', {
        params: { path: { id: datasetId }, query: { limit: 100, ...(before && { before }) } },
      }),
    ),
  );
}

/** A JSON value given inline or as @file. */
async function jsonArgument(name: string, value: string): Promise<unknown> {
  const text = value.startsWith('@') ? await readFile(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${name} is not valid JSON: give it inline ('{"layout":"NCHW",…}') or as @file.json`);
  }
}

async function labelsArgument(value: string): Promise<string[]> {
  if (value.startsWith('[') || value.startsWith('@')) {
    const labels = await jsonArgument('--labels', value);
    if (!Array.isArray(labels) || !labels.every((label) => typeof label === 'string')) {
      throw new CliError('--labels: give a JSON array of strings, or a comma-separated list (normal,pneumonia)');
    }
    return labels;
  }
  return value
    .split(',')
    .map((label) => label.trim())
    .filter(Boolean);
}

export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('cxr')
    .description(
      'CXR Classify from the command line. Settings: CXR_URL and CXR_API_KEY, or the file cxr login writes (the environment wins).',
    )
    .showHelpAfterError('(cxr --help lists the commands)');
  const run =
    <A extends unknown[]>(action: (...args: A) => Promise<number>) =>
    async (...args: A) =>
      setExitCode(await action(...args));
  const json = new Option('--json', 'print JSON on stdout, for scripts');

  program
    .command('classify')
    .description('classify images: files, and folders searched recursively for .png, .jpg and .jpeg')
    .argument('<paths...>', 'image files and folders')
    .option('--dataset <id>', "the dataset's default model classifies them")
    .option('--model <id>', 'this model classifies them')
    .option('--concurrency <n>', 'images in flight at once', positiveInteger, 8)
    .option('--wait <seconds>', "how long to wait for each image's outcome", positiveInteger, 600)
    .option('--out <file>', 'write one row per image to a .csv or .jsonl file')
    .option('--callback-url <url>', "a webhook that gets each request's outcome, signed (README: Webhooks)")
    .addOption(json)
    .addHelpText(
      'after',
      '\nResumable: each image is sent with an Idempotency-Key made of its SHA-256, so running the same command again after Ctrl-C picks up the requests made before instead of sending them twice.\nExit code: 0 when every image was classified, 1 when any failed or errored, 130 after Ctrl-C.',
    )
    .action(run(classifyCommand));

  program
    .command('login')
    .description(`check an API key and save it with the API's address in ${configPath()} (mode 600)`)
    .option('--url <url>', 'the API, e.g. https://cxr.example.org (default: CXR_URL or the saved one)')
    .option(
      '--api-key <key>',
      'the key (default: asked for, or read from stdin; a key on the command line stays in your shell history)',
    )
    .addOption(json)
    .action(run(loginCommand));

  const datasets = program.command('datasets').description('list, create and show datasets');
  datasets
    .command('list')
    .description('my datasets and public ones, newest first')
    .addOption(json)
    .action(
      run(async (options: JsonOption) => {
        const { client } = await connect();
        const items = await allPages((before) =>
          succeed(client.api.GET('/v1/datasets', { params: { query: { limit: 100, ...(before && { before }) } } })),
        );
        print(options, items, () => table(items.map(datasetRow), DATASET_COLUMNS));
        return 0;
      }),
    );
  datasets
    .command('create')
    .description('create a dataset; images sent to it must be at least WIDTHxHEIGHT')
    .argument('<name>', 'short name: lowercase letters, digits and -')
    .requiredOption('--width <pixels>', 'minimum image width', positiveInteger)
    .requiredOption('--height <pixels>', 'minimum image height', positiveInteger)
    .option('--display-name <text>', 'a name for people (default: the name)')
    .option('--description <text>', 'what it is for')
    .option('--maintain-ratio', 'images must have the ratio width:height')
    .option('--public', 'every user can read it and classify against it')
    .addOption(json)
    .action(
      run(
        async (
          name: string,
          options: JsonOption & {
            width: number;
            height: number;
            displayName?: string;
            description?: string;
            maintainRatio?: boolean;
            public?: boolean;
          },
        ) => {
          const { client } = await connect();
          const dataset = await succeed(
            client.api.POST('/v1/datasets', {
              body: {
                name,
                display_name: options.displayName ?? name,
                img_width: options.width,
                img_height: options.height,
                maintain_ratio: options.maintainRatio === true,
                visibility: options.public ? 'public' : 'private',
                ...(options.description !== undefined && { description: options.description }),
              },
            }),
          );
          print(options, dataset, () => `created dataset ${dataset.name}: ${dataset.id}`);
          return 0;
        },
      ),
    );
  datasets
    .command('show')
    .description('a dataset and its models')
    .argument('<id>', 'the dataset id')
    .addOption(json)
    .action(
      run(async (id: string, options: JsonOption) => {
        const { client } = await connect();
        const dataset = await succeed(client.api.GET('/v1/datasets/{id}', { params: { path: { id } } }));
        const models = await listModels(client, id);
        print(options, { ...dataset, models }, () =>
          [
            table([datasetRow(dataset)], DATASET_COLUMNS),
            dataset.description ? `\n${dataset.description}` : '',
            `\nmodels:\n${models.length ? table(models.map(modelRow), MODEL_COLUMNS) : '(none: cxr models upload)'}`,
          ].join(''),
        );
        return 0;
      }),
    );

  const models = program.command('models').description('upload, list, choose the default and retire models');
  models
    .command('upload')
    .description(
      "upload an ONNX model to a dataset, with a progress bar (the gateway runs it once before it answers); the dataset's first model becomes its default",
    )
    .argument('<file>', 'the .onnx file')
    .requiredOption('--dataset <id>', 'the dataset')
    .requiredOption('--labels <labels>', 'its output labels in order: a,b,c or a JSON array or @labels.json')
    .requiredOption(
      '--input-spec <json>',
      'the input: {"layout":"NCHW","channels":1,"width":224,"height":224,"mean":[0.5],"std":[0.5]} or @spec.json',
    )
    .option('--name <name>', 'a name (default: the file name)')
    .addOption(json)
    .action(
      run(
        async (
          file: string,
          options: JsonOption & { dataset: string; labels: string; inputSpec: string; name?: string },
        ) => {
          const labels = await labelsArgument(options.labels);
          const inputSpec = (await jsonArgument('--input-spec', options.inputSpec)) as InputSpec;
          const bytes = await readFile(file).catch(() => {
            throw new CliError(`${file}: cannot read it`);
          });
          const { config } = await connect();
          const client = new CxrClient({ baseUrl: config.url, apiKey: config.apiKey, fetch: uploadProgressFetch() });
          const model = await client.uploadModel(options.dataset, {
            file: bytes,
            labels,
            inputSpec,
            name: options.name ?? basename(file).replace(/\.onnx$/i, ''),
          });
          print(
            options,
            model,
            () => `uploaded model ${model.name} v${model.version}: ${model.id}${model.is_default ? ' (default)' : ''}`,
          );
          return 0;
        },
      ),
    );
  models
    .command('list')
    .description("a dataset's models, newest first")
    .requiredOption('--dataset <id>', 'the dataset')
    .addOption(json)
    .action(
      run(async (options: JsonOption & { dataset: string }) => {
        const { client } = await connect();
        const items = await listModels(client, options.dataset);
        print(options, items, () => table(items.map(modelRow), MODEL_COLUMNS));
        return 0;
      }),
    );
  models
    .command('default')
    .description("make a model its dataset's default")
    .argument('<model-id>', 'the model')
    .addOption(json)
    .action(
      run(async (id: string, options: JsonOption) => {
        const { client } = await connect();
        const model = await succeed(client.api.GET('/v1/models/{id}', { params: { path: { id } } }));
        const chosen = await succeed(
          client.api.PUT('/v1/datasets/{id}/default-model', {
            params: { path: { id: model.dataset } },
            body: { model_id: id },
          }),
        );
        print(
          options,
          chosen,
          () => `${chosen.name} v${chosen.version} (${chosen.id}) is the default of dataset ${chosen.dataset}`,
        );
        return 0;
      }),
    );
  models
    .command('retire')
    .description('retire a model: no new classifications go to it')
    .argument('<model-id>', 'the model')
    .addOption(json)
    .action(
      run(async (id: string, options: JsonOption) => {
        const { client } = await connect();
        const model = await succeed(client.api.POST('/v1/models/{id}/retire', { params: { path: { id } } }));
        print(options, model, () => `retired ${model.name} v${model.version} (${model.id})`);
        return 0;
      }),
    );
  return program;
}

/** Runs the command line; resolves to the exit code. Expected errors are one line on stderr, no stack. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  }).exitOverride();
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode; // commander printed it (or the help)
    const message = explain(error, apiUrl);
    if (message === undefined) throw error;
    process.stderr.write(`cxr: ${message}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}
