import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { RESULT_ROUTING_KEY, Topology } from '@cxr/broker';
import { decodeMessage, encodeMessage, JobMessage, ResultMessage } from '@cxr/contracts';
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { classifiedResult, takeJob as takeJobFrom } from '../support/jobs';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(300_000);

/** Reproduce a failure with the seed its test name shows: SECURITY_FUZZ_SEED=… */
const SEED = Number(process.env.SECURITY_FUZZ_SEED ?? 20_250_801);
const COUNT = Number(process.env.SECURITY_FUZZ_COUNT ?? 1_200);

/** mulberry32: a small seeded generator, so every run of one seed sends the same messages. */
function seeded(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chars = (alphabet: string, length: number) =>
    Array.from({ length }, () => alphabet[int(alphabet.length)]).join('');
  return { next, int, pick, chars };
}
type Rng = ReturnType<typeof seeded>;

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const HOSTILE_LABELS = [
  '<img src=x onerror=alert(1)>',
  "'; DROP TABLE requests; --",
  '{"$gt":""}',
  '\u0000',
  'x'.repeat(128),
];

/** What the results service must do with a message: refuse it for a reason, or send it to the invalid queue. */
type Verdict = 'forged' | 'replayed' | 'mismatched' | 'mislabelled' | 'invalid';
interface Forged {
  kind: string;
  verdict: Verdict;
  body: Buffer;
}

const classified = (job: JobMessage, token: string, label: string) =>
  classifiedResult(job, token, label, 'fuzz-worker');

const json = (message: unknown) => Buffer.from(JSON.stringify(message));
const objectId = (rng: Rng) => rng.chars('0123456789abcdef', 24);

/**
 * One hostile message. `recorded` is a job whose result is recorded (its token can only be
 * replayed); `open` is a job still waiting, whose genuine token is used only with something
 * the results service must refuse; `other` is a second open job.
 */
function forge(rng: Rng, jobs: { recorded: JobMessage; open: JobMessage; other: JobMessage }): Forged {
  const { recorded, open, other } = jobs;
  const anyJob = rng.pick([recorded, open, other]);
  const label = rng.pick(open.model.labels);
  const valid = classified(open, open.dispatchToken, label);
  const cases: (() => Forged)[] = [
    () => ({
      kind: 'made-up token',
      verdict: 'forged',
      body: json(classified(anyJob, rng.chars(B64URL, 43), rng.pick(anyJob.model.labels))),
    }),
    () => ({
      kind: "another request's token",
      verdict: 'forged',
      body: json({ ...classified(other, open.dispatchToken, label), requestId: other.requestId }),
    }),
    () => ({
      kind: 'an unknown request',
      verdict: 'forged',
      body: json({ ...classified(open, open.dispatchToken, label), requestId: objectId(rng) }),
    }),
    () => {
      const others = recorded.model.labels.filter((l) => l !== recorded.model.labels[0]);
      const failed: ResultMessage = {
        ...classified(recorded, recorded.dispatchToken, recorded.model.labels[0]!),
        outcome: 'failed',
        errors: [{ code: 'IMAGE_CORRUPT', message: 'replayed' }],
      };
      delete failed.classification;
      return {
        kind: 'a replay with another answer',
        verdict: 'replayed',
        body: json(rng.next() < 0.5 ? failed : classified(recorded, recorded.dispatchToken, rng.pick(others))),
      };
    },
    () => ({
      kind: 'a wrong model id',
      verdict: 'mismatched',
      body: json({
        ...valid,
        modelId: objectId(rng),
      }),
    }),
    () => ({
      kind: 'a label not the model’s',
      verdict: 'mislabelled',
      body: json(
        classified(
          open,
          open.dispatchToken,
          rng.next() < 0.5 ? rng.pick(HOSTILE_LABELS) : rng.chars(B64URL, 1 + rng.int(128)),
        ),
      ),
    }),
    () => {
      const message = classified(open, open.dispatchToken, label);
      const scores = message.classification!.scores;
      const mutate = rng.pick(['drop', 'repeat', 'foreign', 'range', 'notTop', 'ownScore'] as const);
      if (mutate === 'drop') scores.splice(rng.int(scores.length), 1);
      if (mutate === 'repeat') scores.push(scores[rng.int(scores.length)]!);
      if (mutate === 'foreign') scores[rng.int(scores.length)]!.label = rng.pick(HOSTILE_LABELS);
      if (mutate === 'range') scores[rng.int(scores.length)]!.score = rng.pick([-1, 1.5, 1e308, -0.0001]);
      if (mutate === 'notTop') {
        // Another label scores higher than the one named.
        scores.find((s) => s.label !== label)!.score = 1;
        scores.find((s) => s.label === label)!.score = 0;
        message.classification!.score = 0;
      }
      if (mutate === 'ownScore') message.classification!.score = 0.25;
      return { kind: `scores: ${mutate}`, verdict: 'mislabelled', body: json(message) };
    },
    () => {
      // Oversize: each string and array of a result has a bound.
      const message: Record<string, unknown> = { ...valid };
      const what = rng.pick(['label', 'worker', 'scores', 'errors', 'message', 'correlationId'] as const);
      if (what === 'label')
        message.classification = { ...valid.classification, label: 'x'.repeat(129 + rng.int(5000)) };
      if (what === 'worker') message.worker = 'w'.repeat(129 + rng.int(100_000));
      if (what === 'scores')
        message.classification = {
          ...valid.classification,
          scores: Array.from({ length: 10_001 }, (_, i) => ({ label: `l${i}`, score: 0 })),
        };
      if (what === 'errors') message.errors = Array.from({ length: 51 }, () => ({ code: 'X1', message: 'm' }));
      if (what === 'message') message.errors = [{ code: 'X1', message: 'm'.repeat(2001) }];
      if (what === 'correlationId') message.correlationId = 'c'.repeat(129);
      return { kind: `oversize ${what}`, verdict: 'invalid', body: json(message) };
    },
    () => {
      const text = JSON.stringify(valid);
      const how = rng.pick(['cut', 'bytes', 'empty', 'array', 'nested'] as const);
      const body =
        how === 'cut'
          ? Buffer.from(text.slice(0, 1 + rng.int(text.length - 2)))
          : how === 'bytes'
            ? Buffer.from(Array.from({ length: 1 + rng.int(512) }, () => rng.int(256)))
            : how === 'empty'
              ? Buffer.alloc(0)
              : how === 'array'
                ? json([valid])
                : Buffer.from(`${'['.repeat(5_000)}${']'.repeat(5_000)}`);
      return { kind: `malformed JSON: ${how}`, verdict: 'invalid', body };
    },
    () => {
      // One field of a genuine message with the wrong type or an unknown value.
      const field = rng.pick([
        'v',
        'type',
        'requestId',
        'outcome',
        'modelId',
        'at',
        'dispatchToken',
        'timings',
        'errors',
        'classification',
      ] as const);
      const wrong = rng.pick([null, 42, true, 'nonsense', [], {}, '../../etc/passwd', { $ne: null }] as const);
      const message: Record<string, unknown> = { ...valid, [field]: wrong };
      // A few values happen to be valid for a field (no errors, empty timings): those get one that is not.
      if (decodeMessage(ResultMessage, json(message)).ok) message[field] = { $ne: null };
      return { kind: `wrong type: ${field}`, verdict: 'invalid', body: json(message) };
    },
  ];
  return rng.pick(cases)();
}

interface ResultsStats {
  recorded: number;
  duplicates: number;
  started: number;
  invalid: number;
  refused: Record<string, number>;
}

describe(`forged results: ${COUNT} random and mutated messages (seed ${SEED}) are each refused and counted, and no request changes`, () => {
  let system: System;
  let carol: Client;
  let connection: amqp.ChannelModel;
  let channel: amqp.ConfirmChannel;
  const jobs = {} as Record<'recorded' | 'open' | 'other', JobMessage>;

  const takeJob = () => takeJobFrom(channel);

  const publish = (body: Buffer) =>
    channel.publish(Topology.resultsExchange, RESULT_ROUTING_KEY, body, { persistent: true, messageId: randomUUID() });

  beforeAll(async () => {
    system = await startSystem(['gateway', 'results']);
    carol = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'carol')).client;
    const { datasetId } = await datasetWithDemoModel(carol, 'fuzz', 'Fuzz');
    connection = await amqp.connect(system.vhost.amqpUrl);
    channel = await connection.createConfirmChannel();
    for (const name of ['recorded', 'open', 'other'] as const) {
      const submitted = await carol.post(
        `/v1/datasets/${datasetId}/classifications`,
        imageForm(await renderSample('dark')),
      );
      expect(submitted.status).toBe(202);
      jobs[name] = await takeJob();
    }
    publish(encodeMessage(classified(jobs.recorded, jobs.recorded.dispatchToken, jobs.recorded.model.labels[0]!)));
    await channel.waitForConfirms();
    const view = await carol.get(`/v1/classifications/${jobs.recorded.requestId}?wait=15`);
    expect(view.body.state).toBe('classified');
  });
  afterAll(async () => {
    await connection?.close();
    await system?.stop();
  });

  it('refuses every one, for the reason it was made to fail, and records nothing', async () => {
    const { ClassificationRequest, ClassificationResult } = system.db.models;
    const snapshot = async () =>
      JSON.stringify({
        requests: await ClassificationRequest.find({}).sort({ _id: 1 }).lean(),
        results: await ClassificationResult.find({}).sort({ _id: 1 }).lean(),
      });
    const before = await snapshot();
    const start = await system.stats<ResultsStats>('results');
    const rng = seeded(SEED);
    const expected: Record<Verdict, number> = { forged: 0, replayed: 0, mismatched: 0, mislabelled: 0, invalid: 0 };
    const kinds = new Map<string, number>();
    for (let i = 0; i < COUNT; i++) {
      const forged = forge(rng, jobs);
      expected[forged.verdict] += 1;
      kinds.set(forged.kind, (kinds.get(forged.kind) ?? 0) + 1);
      publish(forged.body);
      if (i % 100 === 99) await channel.waitForConfirms();
    }
    await channel.waitForConfirms();

    const handled = (s: ResultsStats) =>
      s.invalid + Object.values(s.refused).reduce((a, b) => a + b, 0) + s.recorded + s.duplicates + s.started;
    const end = await waitFor(
      `all ${COUNT} messages handled`,
      () => system.stats<ResultsStats>('results'),
      (s) => handled(s) - handled(start) >= COUNT,
      120_000,
    );
    const delta = (reason: Exclude<Verdict, 'invalid'>) => end.refused[reason]! - start.refused[reason]!;
    expect({
      forged: delta('forged'),
      replayed: delta('replayed'),
      mismatched: delta('mismatched'),
      mislabelled: delta('mislabelled'),
      invalid: end.invalid - start.invalid,
    }).toEqual(expected);
    expect([end.recorded - start.recorded, end.duplicates - start.duplicates, end.started - start.started]).toEqual([
      0, 0, 0,
    ]);
    // Each of the 33 kinds was sent (the generator reaches all of them at this count).
    expect(kinds.size).toBe(33);
    expect(await snapshot()).toBe(before);
    for (const name of ['open', 'other'] as const) {
      expect((await carol.get(`/v1/classifications/${jobs[name].requestId}`)).body.state).toBe('queued');
    }
    const recorded = await carol.get<{ result: { label: string } }>(`/v1/classifications/${jobs.recorded.requestId}`);
    expect(recorded.body.result.label).toBe(jobs.recorded.model.labels[0]);
    process.stdout.write(`forged-result fuzz: ${COUNT} messages, seed ${SEED}: ${JSON.stringify(expected)}\n`);
  });
});
