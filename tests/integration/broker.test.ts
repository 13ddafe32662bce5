import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import amqp from 'amqplib';
import { Broker, BrokerUnavailableError, Topology, declareTopology, JOB_ROUTING_KEY } from '@cxr/broker';
import { closeConnectionsNamed, createVhost, randomName, setVhostAccess, type TestVhost } from '../support/stack';
import { testLogger } from '../support/logger';
import { waitFor } from '../support/wait';

describe('RabbitMQ through the broker', () => {
  let vhost: TestVhost;
  beforeAll(async () => {
    vhost = await createVhost();
    const connection = await amqp.connect(vhost.amqpUrl);
    const channel = await connection.createChannel();
    await declareTopology(channel, { jobDeliveryLimit: 2 });
    await connection.close();
  });
  afterAll(async () => {
    await vhost?.destroy();
  });

  it('publishes with confirms, consumes and acks', async () => {
    const broker = await Broker.connect(vhost.amqpUrl, { name: 'test', logger: testLogger });
    await broker.checkTopology([Topology.jobsQueue], [Topology.jobsExchange]);
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, Buffer.from('{"n":1}'), { messageId: 'm1' });
    const got = new Promise<string>((resolve) => {
      void broker.consume(Topology.jobsQueue, 1, async (message) => {
        resolve(message.content.toString());
        return 'ack';
      });
    });
    expect(await got).toBe('{"n":1}');
    await broker.close();
    const check = await Broker.connect(vhost.amqpUrl, { name: 'check', logger: testLogger });
    expect((await check.queueDepth(Topology.jobsQueue)).messages).toBe(0);
    await check.close();
  });

  it('redelivers a message left unacked when its channel closes', async () => {
    const broker = await Broker.connect(vhost.amqpUrl, { name: 'test', logger: testLogger });
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, Buffer.from('unacked'));
    await broker.close();

    // A raw consumer takes the message and closes its channel without acking (a dead worker).
    const connection = await amqp.connect(vhost.amqpUrl);
    const channel = await connection.createChannel();
    const first = await new Promise<amqp.ConsumeMessage>((resolve) => {
      void channel.consume(Topology.jobsQueue, (m) => m && resolve(m), { noAck: false });
    });
    expect(first.fields.redelivered).toBe(false);
    await channel.close();

    const again = await connection.createChannel();
    const second = await new Promise<amqp.ConsumeMessage>((resolve) => {
      void again.consume(Topology.jobsQueue, (m) => m && resolve(m), { noAck: false });
    });
    expect(second.content.toString()).toBe('unacked');
    expect(second.fields.redelivered).toBe(true);
    again.ack(second);
    // A round trip so the broker has processed the ack before the connection closes.
    await again.checkQueue(Topology.jobsQueue);
    await connection.close();
  });

  it('dead-letters a job after its delivery limit instead of looping, waiting longer before each requeue', async () => {
    const broker = await Broker.connect(vhost.amqpUrl, { name: 'test', logger: testLogger });
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, Buffer.from('poison'));
    let deliveries = 0;
    const dead = new Promise<string>((resolve) => {
      void broker.consume(Topology.jobsDeadQueue, 1, async (message) => {
        resolve(message.content.toString());
        return 'ack';
      });
    });
    await broker.consume(Topology.jobsQueue, 1, async () => {
      deliveries += 1;
      return 'requeue';
    });
    const started = Date.now();
    expect(await dead).toBe('poison');
    // Requeued after 1 s, then after 2 s: the limit is not used up in milliseconds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
    // The limit is 2: the third delivery attempt is the dead-lettering.
    expect(deliveries).toBeGreaterThanOrEqual(2);
    expect(deliveries).toBeLessThanOrEqual(3);
    await broker.close();
  }, 30_000);
});

/** Counts what a broker reports about its connection. */
function watch(broker: Broker) {
  const seen = { disconnected: [] as Error[], reconnecting: 0, reconnected: 0, lost: 0 };
  broker.on('disconnected', (error) => seen.disconnected.push(error));
  broker.on('reconnecting', () => (seen.reconnecting += 1));
  broker.on('reconnected', () => (seen.reconnected += 1));
  broker.on('lost', () => (seen.lost += 1));
  return seen;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const job = (text: string) => Buffer.from(text);

describe('the broker survives losing its connection', () => {
  jest.setTimeout(60_000);
  let vhost: TestVhost;
  let name: string;
  let broker: Broker;
  const fast = { initialDelayMs: 50, maxDelayMs: 500 };

  beforeAll(async () => {
    vhost = await createVhost();
    const connection = await amqp.connect(vhost.amqpUrl);
    await declareTopology(await connection.createChannel());
    await connection.close();
  });
  afterAll(async () => {
    await vhost?.destroy();
  });
  beforeEach(async () => {
    name = randomName('broker');
    broker = await Broker.connect(vhost.amqpUrl, { name, logger: testLogger, reconnect: fast });
  });
  afterEach(async () => {
    await broker.close();
  });

  async function depth() {
    return broker.queueDepth(Topology.jobsQueue);
  }

  it('reconnects after the server closes it: consumers, subscriptions and publishing work again', async () => {
    const seen = watch(broker);
    const received: string[] = [];
    const hold = deferred();
    await broker.consume(Topology.jobsQueue, 2, async (message) => {
      const text = message.content.toString();
      received.push(message.fields.redelivered ? `${text} again` : text);
      if (text === 'held' && !message.fields.redelivered) await hold.promise;
      return 'ack';
    });
    const hints: string[] = [];
    await broker.subscribe(Topology.eventsExchange, (content) => hints.push(content.toString()));

    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('before'));
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('held'));
    await waitFor(
      'both jobs delivered',
      () => received,
      (r) => r.includes('before') && r.includes('held'),
    );

    // While disconnected a publish fails at once; the caller decides whether to retry.
    let publishWhileDown: unknown;
    broker.once('disconnected', () => {
      broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('lost')).catch((e: unknown) => {
        publishWhileDown = e;
      });
    });
    expect(await closeConnectionsNamed(name)).toBe(1);
    await waitFor(
      'the reconnect',
      () => seen.reconnected,
      (n) => n === 1,
    );
    expect(seen.disconnected).toHaveLength(1);
    expect(seen.reconnecting).toBeGreaterThanOrEqual(1);
    expect(publishWhileDown).toBeInstanceOf(BrokerUnavailableError);
    expect(broker.isOpen).toBe(true);
    await expect(broker.ping()).resolves.toBeUndefined();

    // The held job's handler answers after its channel died: the ack is skipped, and the
    // broker redelivers the job to the re-established consumer.
    hold.resolve();
    await waitFor(
      'the held job redelivered',
      () => received,
      (r) => r.includes('held again'),
    );

    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('after'));
    await waitFor(
      'a job published after the reconnect',
      () => received,
      (r) => r.includes('after'),
    );
    await broker.publish(Topology.eventsExchange, '', job('hint'), { persistent: false });
    await waitFor(
      'a hint through the fresh subscription queue',
      () => hints,
      (h) => h.includes('hint'),
    );

    expect(received.filter((r) => r === 'lost')).toEqual([]);
    expect(seen.lost).toBe(0);
    expect(await depth()).toEqual({ messages: 0, consumers: 1 });
  });

  it('recovers from several losses in a row, reporting each one', async () => {
    const seen = watch(broker);
    const received: string[] = [];
    await broker.consume(Topology.jobsQueue, 1, async (message) => {
      received.push(message.content.toString());
      return 'ack';
    });
    for (const round of [1, 2, 3]) {
      await closeConnectionsNamed(name);
      await waitFor(
        `reconnect ${round}`,
        () => seen.reconnected,
        (n) => n === round,
      );
      await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job(`round ${round}`));
      await waitFor(
        `job of round ${round}`,
        () => received,
        (r) => r.includes(`round ${round}`),
      );
    }
    expect(seen.disconnected).toHaveLength(3);
    expect(received).toEqual(['round 1', 'round 2', 'round 3']);
  });

  it('pausing stops deliveries (a new job stays ready in the queue) and resuming delivers it', async () => {
    const received: string[] = [];
    await broker.consume(Topology.jobsQueue, 1, async (message) => {
      received.push(message.content.toString());
      return 'ack';
    });
    expect(broker.isConsuming).toBe(true);

    await broker.pauseConsumers();
    await broker.pauseConsumers(); // idempotent
    expect(broker.consumersPaused).toBe(true);
    expect(broker.isConsuming).toBe(false);
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('while paused'));
    expect(await waitFor('the job ready in the queue', depth, (d) => d.messages === 1)).toEqual({
      messages: 1,
      consumers: 0,
    });
    expect(received).toEqual([]);

    await broker.resumeConsumers();
    await broker.resumeConsumers(); // idempotent
    expect(broker.isConsuming).toBe(true);
    await waitFor(
      'the job delivered after resuming',
      () => received,
      (r) => r.length === 1,
    );
    expect(received).toEqual(['while paused']);
    expect(await waitFor('the queue drained', depth, (d) => d.messages === 0)).toEqual({ messages: 0, consumers: 1 });
  });

  it('a job delivered before the pause stays with its handler, which still acks it', async () => {
    const hold = deferred();
    const received: string[] = [];
    let acked = 0;
    await broker.consume(Topology.jobsQueue, 1, async (message) => {
      received.push(message.content.toString());
      await hold.promise;
      acked += 1;
      return 'ack';
    });
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('in hand'));
    await waitFor(
      'the job delivered',
      () => received,
      (r) => r.length === 1,
    );
    await broker.pauseConsumers();
    hold.resolve();
    await waitFor(
      'the handler done',
      () => acked,
      (n) => n === 1,
    );
    await broker.close();

    // Had the ack been lost, closing would have put the job back in the queue.
    const check = await Broker.connect(vhost.amqpUrl, { name: 'check', logger: testLogger });
    expect(await check.queueDepth(Topology.jobsQueue)).toEqual({ messages: 0, consumers: 0 });
    await check.close();
    expect(received).toEqual(['in hand']);
  });

  it('a reconnect while paused stays paused', async () => {
    const seen = watch(broker);
    const received: string[] = [];
    await broker.consume(Topology.jobsQueue, 1, async (message) => {
      received.push(message.content.toString());
      return 'ack';
    });
    await broker.pauseConsumers();
    await closeConnectionsNamed(name);
    await waitFor(
      'the reconnect',
      () => seen.reconnected,
      (n) => n === 1,
    );
    expect(broker.isOpen).toBe(true);
    expect(broker.isConsuming).toBe(false);

    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('paused across the reconnect'));
    expect(await waitFor('the job ready in the queue', depth, (d) => d.messages === 1)).toEqual({
      messages: 1,
      consumers: 0,
    });
    expect(received).toEqual([]);

    await broker.resumeConsumers();
    await waitFor(
      'the job delivered after resuming',
      () => received,
      (r) => r.length === 1,
    );
    expect(received).toEqual(['paused across the reconnect']);
  });

  it('a consumer registered while paused waits for the resume', async () => {
    const received: string[] = [];
    await broker.pauseConsumers();
    await broker.consume(Topology.jobsQueue, 1, async (message) => {
      received.push(message.content.toString());
      return 'ack';
    });
    await broker.publish(Topology.jobsExchange, JOB_ROUTING_KEY, job('early'));
    expect(await waitFor('the job ready', depth, (d) => d.messages === 1)).toEqual({ messages: 1, consumers: 0 });
    await broker.resumeConsumers();
    await waitFor(
      'the job delivered',
      () => received,
      (r) => r.length === 1,
    );
  });

  it('close during the reconnect loop stops it, and the process then ends by itself', async () => {
    // Its own vhost: access to it is taken away, so every reconnect attempt fails.
    const own = await createVhost();
    try {
      const childName = randomName('closing');
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          resolve(__dirname, '../support/broker-closed-while-reconnecting.ts'),
          own.amqpUrl,
          childName,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      let exitCode: number | null | undefined;
      child.on('exit', (code) => (exitCode = code));
      try {
        await waitFor(
          'the child connected',
          () => out,
          (o) => o.includes('connected\n'),
        );
        await setVhostAccess(own.name, false);
        await closeConnectionsNamed(childName);
        // A reconnect timer or socket left alive would keep the child running past this.
        await waitFor(
          'the child to exit by itself',
          () => exitCode,
          (c) => c !== undefined,
        );
      } finally {
        if (exitCode === undefined) child.kill('SIGKILL');
      }
      expect({ exitCode, err }).toEqual({ exitCode: 0, err: '' });
      const lines = out.trim().split('\n');
      expect(lines).toEqual([
        'connected',
        'disconnected',
        'reconnecting 1',
        'reconnecting 2',
        'reconnecting 3',
        'closed open=false',
      ]);
    } finally {
      await own.destroy();
    }
  });
});
