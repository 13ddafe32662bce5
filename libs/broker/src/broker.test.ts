// The Broker's behaviour around a lost connection, on a fake amqplib whose connection drops
// exactly when a test says so: the moments that a real server cannot be made to hit on cue
// (a publish waiting for its confirm, a reconnect set-up under way). tests/integration covers
// the same class on a real RabbitMQ.
import { EventEmitter } from 'node:events';
import type { ConsumeMessage } from 'amqplib';
import { createLogger } from '@cxr/logging';
import { Broker } from './broker';
import { BrokerUnavailableError, PublishNotConfirmedError } from './errors';

type ConfirmCallback = (error: unknown) => void;
const turn = () => new Promise((resolve) => setImmediate(resolve));

class FakeChannel extends EventEmitter {
  open = true;
  readonly consumers = new Map<string, { queue: string; onMessage: (m: ConsumeMessage | null) => void }>();
  readonly acks: number[] = [];
  readonly confirms: ConfirmCallback[] = [];
  private nextTag = 0;

  async prefetch(): Promise<void> {}
  /** Runs at the start of the next consume, so a test can act while one is under way. */
  static duringConsume: (() => void) | null = null;

  async consume(queue: string, onMessage: (m: ConsumeMessage | null) => void) {
    const hook = FakeChannel.duringConsume;
    FakeChannel.duringConsume = null;
    hook?.();
    await turn();
    const consumerTag = `ctag-${++this.nextTag}`;
    this.consumers.set(consumerTag, { queue, onMessage });
    return { consumerTag };
  }
  async cancel(tag: string) {
    this.consumers.delete(tag);
    return { consumerTag: tag };
  }
  async assertQueue() {
    return { queue: `amq.gen-${++this.nextTag}`, messageCount: 0, consumerCount: 0 };
  }
  async bindQueue(): Promise<void> {}
  async checkQueue() {
    return { queue: 'q', messageCount: 0, consumerCount: this.consumers.size };
  }
  ack(message: ConsumeMessage): void {
    if (!this.open) throw new Error('Channel closed');
    this.acks.push(message.fields.deliveryTag);
  }
  nack(message: ConsumeMessage): void {
    this.ack(message);
  }
  publish(_e: string, _r: string, _b: Buffer, _o: unknown, callback: ConfirmCallback): boolean {
    if (!this.open) throw new Error('Channel closed');
    this.confirms.push(callback);
    return true;
  }
  async close(): Promise<void> {
    this.die();
  }
  /** As amqplib does: every unconfirmed publish fails first, then `close` is emitted. */
  die(error?: Error): void {
    if (!this.open) return;
    this.open = false;
    for (const callback of this.confirms.splice(0)) callback(new Error('channel closed'));
    if (error) this.emit('error', error);
    this.emit('close');
  }
  deliver(content: string, deliveryTag: number): void {
    const [consumer] = this.consumers.values();
    if (!consumer) throw new Error('nobody consumes on this channel');
    consumer.onMessage({
      content: Buffer.from(content),
      fields: { deliveryTag, redelivered: false, exchange: '', routingKey: '', consumerTag: 'x' },
      properties: { headers: {} },
    } as unknown as ConsumeMessage);
  }
}

class FakeModel extends EventEmitter {
  readonly channels: FakeChannel[] = [];
  closedByClient = false;
  async createChannel() {
    const channel = new FakeChannel();
    this.channels.push(channel);
    return channel;
  }
  async createConfirmChannel() {
    return this.createChannel();
  }
  async close(): Promise<void> {
    this.closedByClient = true;
    this.drop();
  }
  /** The connection dies: channels first, then the connection, as in amqplib. */
  drop(error?: Error): void {
    for (const channel of this.channels) channel.die();
    this.emit('close', error);
  }
  get publisher(): FakeChannel {
    return this.channels[0]!;
  }
  consumerChannel(queue: string): FakeChannel {
    const found = this.channels.find((c) => [...c.consumers.values()].some((x) => x.queue === queue));
    if (!found) throw new Error(`no consumer of ${queue}`);
    return found;
  }
}

/** Stands for amqplib's recovering connection; the test decides when each reconnect happens. */
class FakeRecovering extends EventEmitter {
  readonly models: FakeModel[] = [];
  stopped = false;
  private readonly first: Promise<void>;

  constructor(private readonly setup: (model: FakeModel) => Promise<void>) {
    super();
    this.first = new Promise((resolve) => setImmediate(resolve)).then(() => this.reconnect());
  }
  waitForConnect() {
    return this.first.then(() => this);
  }
  async reconnect(): Promise<void> {
    const model = new FakeModel();
    this.models.push(model);
    model.once('close', (error?: Error) => {
      if (this.stopped || this.model !== model) return;
      this.emit('disconnect', error ?? new Error('Connection closed'));
      this.emit('reconnect-scheduled', { attempt: 1, delay: 1, error });
    });
    await this.setup(model);
    this.emit('connect', model);
  }
  get model(): FakeModel {
    return this.models[this.models.length - 1]!;
  }
  async close(): Promise<void> {
    this.stopped = true;
    const model = this.model;
    if (!model.closedByClient) await model.close();
  }
}

let recovering: FakeRecovering;
jest.mock('amqplib', () => ({
  __esModule: true,
  default: {
    connect: jest.fn(async (_url: string, options: { recovery: { setup: (m: FakeModel) => Promise<void> } }) => {
      recovering = new FakeRecovering(options.recovery.setup);
      return recovering;
    }),
  },
}));

const logger = createLogger({ service: 'test', level: 'silent', pretty: false });

async function connect() {
  const broker = await Broker.connect('amqp://localhost/test', { name: 'unit', logger });
  const seen = { disconnected: [] as Error[], reconnected: 0 };
  broker.on('disconnected', (error) => seen.disconnected.push(error));
  broker.on('reconnected', () => (seen.reconnected += 1));
  return { broker, seen };
}

describe('Broker on a connection that drops', () => {
  it('rejects a publish still waiting for its confirm as BrokerUnavailableError', async () => {
    const { broker, seen } = await connect();
    const pending = broker.publish('x', 'k', Buffer.from('a'));
    recovering.model.drop(new Error('CONNECTION_FORCED'));
    await expect(pending).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(seen.disconnected.map((e) => e.message)).toEqual(['CONNECTION_FORCED']);
    await broker.close();
  });

  it('fails a publish at once while disconnected, and publishes on the new channel after', async () => {
    const { broker, seen } = await connect();
    recovering.model.drop();
    expect(broker.isOpen).toBe(false);
    await expect(broker.ping()).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(broker.publish('x', 'k', Buffer.from('a'))).rejects.toBeInstanceOf(BrokerUnavailableError);

    await recovering.reconnect();
    expect(seen.reconnected).toBe(1);
    expect(broker.isOpen).toBe(true);
    const published = broker.publish('x', 'k', Buffer.from('b'));
    recovering.model.publisher.confirms[0]!(null);
    await expect(published).resolves.toBeUndefined();
    await broker.close();
  });

  it('reports a broker nack as PublishNotConfirmedError', async () => {
    const { broker } = await connect();
    const published = broker.publish('x', 'k', Buffer.from('a'));
    recovering.model.publisher.confirms[0]!(new Error('message nacked'));
    await expect(published).rejects.toBeInstanceOf(PublishNotConfirmedError);
    await broker.close();
  });

  it('skips the ack of a message whose channel died, on the old channel and the new one', async () => {
    const { broker } = await connect();
    let release = () => {};
    const answered = new Promise<void>((resolve) => (release = resolve));
    let handled = 0;
    await broker.consume('jobs', 1, async () => {
      await answered;
      handled += 1;
      return 'ack';
    });
    const old = recovering.model.consumerChannel('jobs');
    old.deliver('job', 7);
    recovering.model.drop();
    await recovering.reconnect();
    const fresh = recovering.model.consumerChannel('jobs');
    release();
    await broker.close(); // waits for the handler
    expect(handled).toBe(1);
    expect(old.acks).toEqual([]);
    expect(fresh.acks).toEqual([]);
  });

  it('re-establishes consumers after a reconnect, but not while paused', async () => {
    const { broker } = await connect();
    await broker.consume('jobs', 1, async () => 'ack');
    await broker.pauseConsumers();
    recovering.model.drop();
    await recovering.reconnect();
    expect(broker.isConsuming).toBe(false);
    expect(recovering.model.channels.some((c) => c.consumers.size > 0)).toBe(false);
    await broker.resumeConsumers();
    expect(broker.isConsuming).toBe(true);
    expect(recovering.model.consumerChannel('jobs').consumers.size).toBe(1);
    await broker.close();
  });

  it('stays paused when the pause comes while a reconnect is setting up', async () => {
    const { broker } = await connect();
    await broker.consume('jobs', 1, async () => 'ack');
    recovering.model.drop();
    let pausing: Promise<void> | undefined;
    // The set-up has decided to consume (it was not paused) and waits for the broker's answer.
    FakeChannel.duringConsume = () => {
      pausing = broker.pauseConsumers();
    };
    await recovering.reconnect();
    expect(pausing).toBeDefined();
    await pausing;
    expect(broker.isOpen).toBe(true);
    expect(broker.isConsuming).toBe(false);
    expect(recovering.model.channels.some((c) => c.consumers.size > 0)).toBe(false);
    await broker.close();
  });

  it('recycles the connection when one of its channels dies on its own', async () => {
    const { broker, seen } = await connect();
    await broker.consume('jobs', 1, async () => 'ack');
    const model = recovering.model;
    model.consumerChannel('jobs').die(new Error('PRECONDITION_FAILED - consumer ack timed out'));
    await turn();
    expect(model.closedByClient).toBe(true);
    expect(seen.disconnected).toHaveLength(1);
    expect(seen.disconnected[0]!.message).toMatch(/consumer channel of jobs closed unexpectedly: PRECONDITION_FAILED/);
    await recovering.reconnect();
    expect(broker.isConsuming).toBe(true);
    await broker.close();
  });

  it('reports a lost connection once, not also as the failure of each of its channels', async () => {
    const { broker, seen } = await connect();
    await broker.consume('jobs', 1, async () => 'ack');
    const model = recovering.model;
    model.drop(new Error('CONNECTION_FORCED'));
    await turn();
    expect(model.closedByClient).toBe(false);
    expect(seen.disconnected.map((e) => e.message)).toEqual(['CONNECTION_FORCED']);
    await broker.close();
  });
});
