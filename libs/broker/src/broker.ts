import { EventEmitter, once } from 'node:events';
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type RecoveringChannelModel,
} from 'amqplib';
import type { Logger } from '@cxr/logging';
import { BrokerUnavailableError, PublishNotConfirmedError, TopologyMissingError } from './errors';
import { Topology } from './topology';

export type Disposition = 'ack' | 'requeue' | 'reject';
export type MessageHandler = (message: ConsumeMessage) => Promise<Disposition>;

export interface PublishOptions {
  /** Default true; a hint that is worthless after a broker restart can skip the disk. */
  persistent?: boolean;
  messageId?: string;
  correlationId?: string;
  headers?: Record<string, string | number | boolean>;
  priority?: number;
}

/** How the broker connection comes back after a loss: exponential back-off, capped and jittered. */
export interface ReconnectOptions {
  /** Wait before the first attempt after a loss. Default 500 ms. */
  initialDelayMs?: number;
  /** Longest wait between two attempts (jitter included). Default 30 000 ms. */
  maxDelayMs?: number;
  /** Each wait is spread by ± this fraction, so replicas do not reconnect in step. Default 0.2. */
  jitter?: number;
  /** Attempts after a loss before giving up and emitting `lost`. Default: never give up. */
  maxAttempts?: number;
  /** Attempts at the very first connect before `Broker.connect` rejects. Default 0: fail at once. */
  firstConnectRetries?: number;
}

export interface BrokerOptions {
  /** Shown in the broker's connection list (client property `connection_name`). */
  name: string;
  logger: Logger;
  /**
   * Seconds between heartbeats; a dead peer is noticed after about two of them. Default 15.
   * Ignored when the URL sets `?heartbeat=` itself.
   */
  heartbeat?: number;
  /** How long a publish may wait for the broker's confirm before it fails. Default 10 000 ms. */
  confirmTimeoutMs?: number;
  /** First wait before a message goes back to its queue; doubles per delivery, at most 30 s. Default 1 000 ms. */
  requeueDelayMs?: number;
  reconnect?: ReconnectOptions;
}

/** What a `Broker` emits; every listener is optional. */
export interface BrokerEvents {
  /** The connection (or one of its channels) died; publishes fail fast until `reconnected`. */
  disconnected: [error: Error];
  /** A reconnect attempt is scheduled after `delayMs` (attempt 1 is the first after a loss). */
  reconnecting: [info: { attempt: number; delayMs: number; error: Error }];
  /** Connected again: publishing works, every consumer and subscription is back (unless paused). */
  reconnected: [];
  /** Gave up reconnecting (only with a finite `reconnect.maxAttempts`): the broker is gone for good. */
  lost: [error: Error];
}

/**
 * Wait before requeueing a message that has been delivered `deliveries` times before: a
 * failing dependency gets time to come back instead of the queue's delivery limit being used
 * up in milliseconds (1 s, 2 s, 4 s, 8 s, 16 s: about half a minute over five deliveries).
 */
export function requeueDelay(deliveries: number, firstMs: number): number {
  return Math.min(30_000, firstMs * 2 ** Math.max(0, deliveries));
}

/** The URL with `heartbeat` set, unless it names one already (amqplib reads it from the URL only). */
export function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has('heartbeat')) return url;
  parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}

/** A channel and whether it is still usable: an ack on a dead channel is skipped, not attempted. */
interface Live<C extends Channel> {
  channel: C;
  open: boolean;
  /** Fully set up; only then is its unexpected close a failure of the connection. */
  ready: boolean;
}

interface QueueConsumer {
  kind: 'queue';
  queue: string;
  prefetch: number;
  handler: MessageHandler;
  live: Live<Channel> | null;
  /** The broker's consumer tag while consuming; null when paused or disconnected. */
  tag: string | null;
}

interface Subscription {
  kind: 'subscription';
  exchange: string;
  handler: (content: Buffer) => void;
  live: Live<Channel> | null;
  /** The current exclusive queue; a new one after each reconnect. */
  queue: string | null;
  tag: string | null;
}

type Registration = QueueConsumer | Subscription;

/**
 * One AMQP connection with a confirm channel for publishing and one channel per consumer.
 *
 * The connection survives broker restarts: amqplib's connection recovery reconnects with
 * exponential, capped, jittered back-off, and after each reconnect this class re-opens the
 * confirm channel and every consumer and subscription it had. Meanwhile `publish` fails fast
 * with `BrokerUnavailableError`, publishes waiting for a confirm at the moment of loss reject,
 * and messages being handled when their channel died are neither acked nor nacked (the broker
 * redelivers them). A channel that dies on its own (a refused publish, a consumer the broker
 * cancelled) recycles the whole connection through the same path.
 *
 * Consumers can be paused (while a dependency of the handlers is down) and resumed; a
 * reconnect while paused stays paused. Subscriptions are hints and are never paused.
 */
export class Broker extends EventEmitter<BrokerEvents> {
  private recovering: RecoveringChannelModel | null = null;
  /** The live connection, set once every channel has been re-opened; null while disconnected. */
  private model: ChannelModel | null = null;
  private publisher: Live<ConfirmChannel> | null = null;
  private everConnected = false;
  private stopping = false;
  private closing: Promise<void> | null = null;
  private paused = false;
  private readonly registrations: Registration[] = [];
  private inFlight = 0;
  private readonly idle = new EventEmitter();
  /** Settles publishes still waiting for a confirm when the connection dies. */
  private readonly pendingPublishes = new Set<(error?: Error) => void>();
  /** Serialises (re)establishing, pausing and resuming consumers. */
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly logger: Logger,
    private readonly confirmTimeoutMs: number,
    private readonly requeueDelayMs: number,
  ) {
    super();
  }

  /**
   * Connects and resolves once the connection and its confirm channel are open. Rejects if the
   * first connection fails (after `reconnect.firstConnectRetries` retries); every later loss is
   * recovered from.
   */
  static async connect(url: string, options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options.logger, options.confirmTimeoutMs ?? 10_000, options.requeueDelayMs ?? 1_000);
    const reconnect = options.reconnect ?? {};
    const recovering = await amqp.connect(withHeartbeat(url, options.heartbeat ?? 15), {
      clientProperties: { connection_name: options.name },
      recovery: {
        initialDelay: reconnect.initialDelayMs ?? 500,
        maxDelay: reconnect.maxDelayMs ?? 30_000,
        factor: 2,
        jitter: reconnect.jitter ?? 0.2,
        maxRetries: reconnect.maxAttempts ?? Infinity,
        initialMaxRetries: reconnect.firstConnectRetries ?? 0,
        waitForConnect: false,
        setup: (model: ChannelModel) => broker.setUp(model),
      },
    });
    broker.attach(recovering);
    try {
      await recovering.waitForConnect();
    } catch (error) {
      await recovering.close().catch(() => undefined);
      throw error;
    }
    return broker;
  }

  private attach(recovering: RecoveringChannelModel): void {
    this.recovering = recovering;
    const logger = this.logger;
    recovering.on('error', (error: Error) => logger.error({ err: error }, 'broker connection error'));
    recovering.on('blocked', (reason: string) => logger.warn({ reason }, 'broker blocked publishing'));
    recovering.on('unblocked', () => logger.info('broker unblocked publishing'));
    recovering.on('connect-failed', (error: Error) => logger.warn({ err: error }, 'broker connect attempt failed'));
    recovering.on('reconnect-scheduled', ({ attempt, delay, error }) => {
      if (this.stopping || !this.everConnected) return;
      logger.info({ attempt, delayMs: delay }, 'reconnecting to the broker');
      this.emit('reconnecting', { attempt, delayMs: delay, error });
    });
    recovering.on('connect', () => {
      if (!this.everConnected) {
        this.everConnected = true;
        return;
      }
      logger.info('reconnected to the broker');
      this.emit('reconnected');
    });
    recovering.on('reconnect-failed', (error: Error) => {
      if (this.stopping || !this.everConnected) return;
      logger.error({ err: error }, 'gave up reconnecting to the broker');
      this.emit('lost', error);
    });
  }

  /** Connected now, and not closing. */
  get isOpen(): boolean {
    return this.model !== null && !this.stopping;
  }

  /** A health check: throws when not connected now (reconnecting, closing or closed). */
  async ping(): Promise<void> {
    if (!this.isOpen) throw new BrokerUnavailableError(this.stopping ? 'broker connection closed' : 'reconnecting');
  }

  /** Whether consumers are paused (by `pauseConsumers`), connected or not. */
  get consumersPaused(): boolean {
    return this.paused;
  }

  /** Whether messages are being taken now: connected, not paused, and every queue consumer active. */
  get isConsuming(): boolean {
    const consumers = this.registrations.filter((r): r is QueueConsumer => r.kind === 'queue');
    return (
      this.isOpen &&
      !this.paused &&
      consumers.length > 0 &&
      consumers.every((c) => c.tag !== null && c.live !== null && c.live.open)
    );
  }

  /**
   * Checks passively (no permission needed) that the named queues and exchanges exist.
   * Each check runs on a throwaway channel, because a failed passive declare closes it.
   */
  async checkTopology(queues: string[], exchanges: string[]): Promise<void> {
    for (const [kind, name] of [
      ...queues.map((q) => ['queue', q] as const),
      ...exchanges.map((e) => ['exchange', e] as const),
    ]) {
      const channel = await this.connected().createChannel();
      channel.on('error', () => undefined);
      try {
        if (kind === 'queue') await channel.checkQueue(name);
        else await channel.checkExchange(name);
        await channel.close();
      } catch {
        throw new TopologyMissingError(
          `${kind} '${name}' does not exist in this vhost; declare the topology first (npm run topology)`,
        );
      }
    }
  }

  /** Number of ready messages in a queue (what autoscaling watches), and its consumers. */
  async queueDepth(queue: string): Promise<{ messages: number; consumers: number }> {
    const channel = await this.connected().createChannel();
    channel.on('error', () => undefined);
    try {
      const { messageCount, consumerCount } = await channel.checkQueue(queue);
      return { messages: messageCount, consumers: consumerCount };
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /**
   * Publishes a persistent message and resolves only once the broker has confirmed it. Fails at
   * once with `BrokerUnavailableError` while disconnected, and with it too when the connection
   * dies before the confirm; the caller decides whether to retry.
   */
  async publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions = {}): Promise<void> {
    // Allowed while closing: in-flight jobs still publish their results before the close.
    const publisher = this.publisher;
    if (!publisher || !publisher.open || !this.model) {
      throw new BrokerUnavailableError(
        this.stopping ? 'broker connection is closed' : 'not connected to the broker (reconnecting)',
      );
    }
    await new Promise<void>((resolve, reject) => {
      // A broker that blocks publishers (memory or disk alarm) never confirms: give up in time.
      const timer = setTimeout(
        () => settle(new PublishNotConfirmedError(`no confirm from the broker within ${this.confirmTimeoutMs} ms`)),
        this.confirmTimeoutMs,
      );
      const settle = (error?: Error) => {
        clearTimeout(timer);
        this.pendingPublishes.delete(settle);
        if (error) reject(error);
        else resolve();
      };
      this.pendingPublishes.add(settle);
      try {
        const accepted = publisher.channel.publish(
          exchange,
          routingKey,
          body,
          {
            persistent: options.persistent ?? true,
            contentType: 'application/json',
            messageId: options.messageId,
            correlationId: options.correlationId,
            headers: options.headers,
            priority: options.priority,
            timestamp: Math.floor(Date.now() / 1000),
          },
          (error: unknown) => {
            if (!error) return settle();
            // amqplib fails every unconfirmed publish when the channel closes, before this class
            // hears of the close; wait a turn so a lost channel rejects as BrokerUnavailableError.
            setImmediate(() => settle(new PublishNotConfirmedError(`broker did not confirm publish to ${exchange}`)));
          },
        );
        if (!accepted) {
          // Write buffer full: the message is queued locally; the confirm still settles it.
          this.logger.debug('publish channel buffer full; waiting for drain');
        }
      } catch (error) {
        // The channel closed under us, or the message cannot be encoded (e.g. headers too large).
        settle(publisher.open ? (error as Error) : new BrokerUnavailableError('publish channel closed'));
      }
    });
  }

  /** Sends a message that failed validation to the invalid queue, with the reason in a header. */
  async publishInvalid(message: ConsumeMessage, sourceQueue: string, reason: string): Promise<void> {
    await this.publish(Topology.invalidExchange, '', message.content, {
      messageId: typeof message.properties.messageId === 'string' ? message.properties.messageId : undefined,
      headers: { 'x-cxr-reason': reason.slice(0, 1000), 'x-cxr-source-queue': sourceQueue },
    });
  }

  /**
   * Consumes with manual acks, now and after every reconnect. The handler's answer decides the
   * message's fate; a handler that throws gets its message requeued (the queue's delivery limit
   * bounds the retries). Fails with `BrokerUnavailableError` while disconnected. When consumers
   * are paused, the consumer is registered but takes nothing until `resumeConsumers`.
   */
  async consume(queue: string, prefetch: number, handler: MessageHandler): Promise<void> {
    await this.register({ kind: 'queue', queue, prefetch, handler, live: null, tag: null });
  }

  /**
   * Receives every message published to a fanout exchange from now on, through a private queue
   * that the broker deletes when this connection ends (a fresh one after each reconnect, so
   * hints published while disconnected are lost). For hints only: no acks, no redelivery.
   */
  async subscribe(exchange: string, handler: (content: Buffer) => void): Promise<void> {
    await this.register({ kind: 'subscription', exchange, handler, live: null, queue: null, tag: null });
  }

  /**
   * Stops taking messages: cancels every queue consumer (not subscriptions). Messages already
   * delivered stay with their handlers, which still ack them. Idempotent; stays paused across
   * reconnects. Never rejects: a consumer that cannot be cancelled is on a dying connection.
   */
  async pauseConsumers(): Promise<void> {
    this.paused = true;
    await this.exclusive(() => this.reconcile());
  }

  /** Consumes again after `pauseConsumers` (at once if connected, else on reconnect). Idempotent. */
  async resumeConsumers(): Promise<void> {
    this.paused = false;
    await this.exclusive(() => this.reconcile());
  }

  /**
   * Stops consuming, lets in-flight messages finish (up to `graceMs`), makes sure the broker has
   * their acks, then closes. Stops a reconnect loop under way. Idempotent.
   */
  close(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.closing ??= this.doClose(graceMs);
    return this.closing;
  }

  // --- internals ---

  private connected(): ChannelModel {
    if (!this.model || this.stopping) {
      throw new BrokerUnavailableError(this.stopping ? 'broker connection closed' : 'not connected (reconnecting)');
    }
    return this.model;
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.lock.then(task, task);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async register(registration: Registration): Promise<void> {
    if (this.stopping) throw new BrokerUnavailableError('broker connection closed');
    await this.exclusive(async () => {
      const model = this.connected();
      try {
        await this.establish(model, registration);
      } catch (error) {
        await registration.live?.channel.close().catch(() => undefined);
        registration.live = null;
        throw error;
      }
      this.registrations.push(registration);
    });
  }

  /**
   * amqplib's recovery calls this after each (re)connect, before announcing it: re-open the
   * publisher and every registration. A failure closes the connection and schedules another
   * attempt with back-off.
   */
  private setUp(model: ChannelModel): Promise<void> {
    return this.exclusive(async () => {
      let modelClosed = false;
      model.once('close', (error?: Error) => {
        modelClosed = true;
        this.onConnectionClosed(model, error);
      });
      if (this.stopping) throw new BrokerUnavailableError('closing');
      const publisher = await this.openChannel(model, 'publish channel', (m) => m.createConfirmChannel());
      publisher.channel.on('close', () => this.failPendingPublishes('publish channel closed'));
      for (const registration of this.registrations) await this.establish(model, registration);
      if (modelClosed || this.stopping) throw new BrokerUnavailableError('connection closed during set-up');
      publisher.ready = true;
      this.publisher = publisher;
      this.model = model;
    });
  }

  /** Opens a channel whose unexpected close, once it is ready, recycles the connection. */
  private async openChannel<C extends Channel>(
    model: ChannelModel,
    what: string,
    create: (model: ChannelModel) => Promise<C>,
  ): Promise<Live<C>> {
    const channel = await create(model);
    const live: Live<C> = { channel, open: true, ready: false };
    let reason: Error | undefined;
    channel.on('error', (error: Error) => {
      reason = error;
      this.logger.error({ err: error }, `${what} error`);
    });
    channel.on('close', () => {
      live.open = false;
      if (!live.ready) return;
      // The connection closes its channels before itself: wait a turn so a lost connection is
      // reported as such rather than as a channel failure.
      setImmediate(() =>
        this.channelFailed(
          model,
          new BrokerUnavailableError(`${what} closed unexpectedly${reason ? `: ${reason.message}` : ''}`),
        ),
      );
    });
    return live;
  }

  private async establish(model: ChannelModel, registration: Registration): Promise<void> {
    registration.tag = null;
    if (registration.kind === 'queue') {
      const live = await this.openChannel(model, `consumer channel of ${registration.queue}`, (m) => m.createChannel());
      registration.live = live;
      await live.channel.prefetch(registration.prefetch);
      if (!this.paused) await this.startConsumer(model, registration, live);
      live.ready = true;
    } else {
      const live = await this.openChannel(model, `subscription channel of ${registration.exchange}`, (m) =>
        m.createChannel(),
      );
      registration.live = live;
      const { queue } = await live.channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await live.channel.bindQueue(queue, registration.exchange, '');
      const { consumerTag } = await live.channel.consume(
        queue,
        (message) => {
          if (!message) return;
          try {
            registration.handler(message.content);
          } catch (error) {
            // A throw here would reach amqplib's dispatch and could close the channel.
            this.logger.error({ err: error, exchange: registration.exchange }, 'subscription handler failed');
          }
        },
        { noAck: true },
      );
      registration.queue = queue;
      registration.tag = consumerTag;
      live.ready = true;
    }
  }

  private async startConsumer(model: ChannelModel, consumer: QueueConsumer, live: Live<Channel>): Promise<void> {
    const { consumerTag } = await live.channel.consume(
      consumer.queue,
      (message) => {
        if (message) return this.handle(consumer, live, message);
        // The broker cancelled the consumer (queue deleted): set everything up again, with
        // back-off, rather than sit connected and idle.
        consumer.tag = null;
        this.channelFailed(model, new BrokerUnavailableError(`the broker cancelled the consumer of ${consumer.queue}`));
      },
      { noAck: false },
    );
    consumer.tag = consumerTag;
  }

  private handle(consumer: QueueConsumer, live: Live<Channel>, message: ConsumeMessage): void {
    const { queue } = consumer;
    this.inFlight += 1;
    consumer
      .handler(message)
      .catch((error: unknown) => {
        this.logger.error({ err: error, queue }, 'message handler failed; requeueing');
        return 'requeue' as const;
      })
      .then(async (disposition) => {
        if (disposition === 'requeue') {
          const deliveries = Number(message.properties.headers?.['x-delivery-count'] ?? 0);
          await new Promise((resolve) => setTimeout(resolve, requeueDelay(deliveries, this.requeueDelayMs)));
        }
        if (!live.open) {
          // Its delivery tag means nothing on any other channel; the broker redelivers it.
          this.logger.info({ queue, disposition }, 'channel gone before the answer; the broker will redeliver');
          return;
        }
        if (disposition === 'ack') live.channel.ack(message);
        else live.channel.nack(message, false, disposition === 'requeue');
      })
      .catch((error: unknown) => this.logger.error({ err: error, queue }, 'ack failed'))
      .finally(() => {
        this.inFlight -= 1;
        if (this.inFlight === 0) this.idle.emit('idle');
      });
  }

  /** Makes every queue consumer match `paused`. Runs under the lock. */
  private async reconcile(): Promise<void> {
    const model = this.model;
    if (!model || this.stopping) return; // set-up after the reconnect reads `paused` itself
    for (const consumer of this.registrations) {
      if (consumer.kind !== 'queue' || !consumer.live?.open) continue;
      try {
        if (this.paused && consumer.tag !== null) {
          const tag = consumer.tag;
          await consumer.live.channel.cancel(tag);
          consumer.tag = null;
        } else if (!this.paused && consumer.tag === null) {
          await this.startConsumer(model, consumer, consumer.live);
        }
      } catch (error) {
        this.logger.warn({ err: error, queue: consumer.queue }, this.paused ? 'pause failed' : 'resume failed');
      }
    }
  }

  /** A ready channel of the current connection died on its own: recycle the connection. */
  private channelFailed(model: ChannelModel, error: Error): void {
    if (this.stopping || this.model !== model) return;
    this.logger.warn({ err: error }, 'broker channel failed; reconnecting');
    this.onConnectionClosed(model, error);
    model.close().catch(() => undefined);
  }

  private onConnectionClosed(model: ChannelModel, error: Error | undefined): void {
    if (this.model !== model) return;
    const reason = error ?? new BrokerUnavailableError('broker connection closed');
    this.model = null;
    this.publisher = null;
    for (const registration of this.registrations) registration.tag = null;
    this.failPendingPublishes(`connection lost: ${reason.message}`);
    if (this.stopping) return;
    this.logger.warn({ err: reason }, 'lost the broker connection; reconnecting');
    this.emit('disconnected', reason);
  }

  private failPendingPublishes(why: string): void {
    for (const settle of [...this.pendingPublishes]) {
      settle(new BrokerUnavailableError(`publish not confirmed: ${why}`));
    }
  }

  private async doClose(graceMs: number): Promise<void> {
    const recovering = this.recovering;
    // Disconnected: stop the reconnect loop at once (nothing to cancel or ack meanwhile).
    if (!this.model) await recovering?.close();
    await this.exclusive(async () => {
      for (const registration of this.registrations) {
        if (registration.tag === null || !registration.live?.open) continue;
        try {
          await registration.live.channel.cancel(registration.tag);
          registration.tag = null;
        } catch (error) {
          this.logger.warn({ err: error }, 'cancel consumer failed');
        }
      }
    });
    if (this.inFlight > 0) {
      const timer = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([once(this.idle, 'idle'), timer]);
    }
    for (const registration of this.registrations) {
      const live = registration.live;
      if (!live?.open) continue;
      live.ready = false;
      try {
        // Acks are asynchronous; closing right after the last one can lose it (seen with quorum
        // queues on RabbitMQ 3.10: the message came back). A round trip on the same channel
        // makes sure the broker has processed every ack sent before it.
        if (registration.kind === 'queue') await live.channel.checkQueue(registration.queue);
        await live.channel.close();
      } catch {
        // already closed with the connection
      }
    }
    const publisher = this.publisher;
    if (publisher?.open) {
      publisher.ready = false;
      await publisher.channel.close().catch(() => undefined);
    }
    await recovering?.close().catch(() => undefined);
    this.model = null;
    this.publisher = null;
  }
}
