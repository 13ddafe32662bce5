import { EventEmitter, once } from 'node:events';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
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

export interface BrokerOptions {
  /** Shown in the broker's connection list. */
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

/**
 * One AMQP connection with a confirm channel for publishing and one channel per consumer.
 * Emits `lost` when the connection dies while the service is not closing: the owner decides
 * what to do (the services exit and let their supervisor restart them, since unacked
 * messages are redelivered by the broker anyway).
 */
export class Broker extends EventEmitter {
  private closing: Promise<void> | null = null;
  private readonly consumers: { channel: Channel; tag: string; queue: string }[] = [];
  private inFlight = 0;
  private readonly idle = new EventEmitter();
  private open = true;
  /** Settles publishes still waiting for a confirm when the connection dies. */
  private readonly pendingPublishes = new Set<(error?: Error) => void>();

  private constructor(
    private readonly connection: ChannelModel,
    private readonly publishChannel: ConfirmChannel,
    private readonly logger: Logger,
    private readonly confirmTimeoutMs: number,
    private readonly requeueDelayMs: number,
  ) {
    super();
    this.on('lost', (error: Error) => {
      for (const settle of [...this.pendingPublishes]) settle(error);
    });
    connection.on('error', (error: Error) => logger.error({ err: error }, 'broker connection error'));
    connection.on('close', () => {
      this.open = false;
      if (!this.closing) {
        this.emit('lost', new BrokerUnavailableError('broker connection closed unexpectedly'));
      }
    });
    // A channel error (e.g. a refused publish) closes only that channel; treat it as lost too.
    publishChannel.on('error', (error: Error) => logger.error({ err: error }, 'publish channel error'));
    publishChannel.on('close', () => {
      if (!this.closing && this.open) {
        this.open = false;
        this.emit('lost', new BrokerUnavailableError('publish channel closed unexpectedly'));
      }
    });
  }

  static async connect(url: string, options: BrokerOptions): Promise<Broker> {
    const connection = await amqp.connect(withHeartbeat(url, options.heartbeat ?? 15), {
      clientProperties: { connection_name: options.name },
    });
    try {
      const publishChannel = await connection.createConfirmChannel();
      connection.on('blocked', (reason: string) => options.logger.warn({ reason }, 'broker blocked publishing'));
      connection.on('unblocked', () => options.logger.info('broker unblocked publishing'));
      return new Broker(
        connection,
        publishChannel,
        options.logger,
        options.confirmTimeoutMs ?? 10_000,
        options.requeueDelayMs ?? 1_000,
      );
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  get isOpen(): boolean {
    return this.open && !this.closing;
  }

  /** A health check: throws when the connection is closed or closing. */
  async ping(): Promise<void> {
    if (!this.isOpen) throw new BrokerUnavailableError('connection closed');
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
      const channel = await this.connection.createChannel();
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

  /** Number of ready messages in a queue (what autoscaling watches). */
  async queueDepth(queue: string): Promise<{ messages: number; consumers: number }> {
    const channel = await this.connection.createChannel();
    try {
      const { messageCount, consumerCount } = await channel.checkQueue(queue);
      return { messages: messageCount, consumers: consumerCount };
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Publishes a persistent message and resolves only once the broker has confirmed it. */
  async publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions = {}): Promise<void> {
    // Allowed while closing: in-flight jobs still publish their results before the close.
    if (!this.open) throw new BrokerUnavailableError('broker connection is not open');
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
      const accepted = this.publishChannel.publish(
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
        (error: unknown) =>
          settle(error ? new PublishNotConfirmedError(`broker did not confirm publish to ${exchange}`) : undefined),
      );
      if (!accepted) {
        // Write buffer full: the message is queued locally; the confirm still settles it.
        this.logger.debug('publish channel buffer full; waiting for drain');
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
   * Consumes with manual acks. The handler's answer decides the message's fate; a handler
   * that throws gets its message requeued (the queue's delivery limit bounds the retries).
   */
  async consume(queue: string, prefetch: number, handler: MessageHandler): Promise<void> {
    const channel = await this.connection.createChannel();
    channel.on('error', (error: Error) => this.logger.error({ err: error, queue }, 'consumer channel error'));
    channel.on('close', () => {
      if (!this.closing && this.open) {
        this.open = false;
        this.emit('lost', new BrokerUnavailableError(`consumer channel of ${queue} closed unexpectedly`));
      }
    });
    await channel.prefetch(prefetch);
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (!message) return; // the broker cancelled the consumer (queue deleted)
        this.inFlight += 1;
        handler(message)
          .catch((error: unknown) => {
            this.logger.error({ err: error, queue }, 'message handler failed; requeueing');
            return 'requeue' as const;
          })
          .then(async (disposition) => {
            if (disposition === 'requeue') {
              const deliveries = Number(message.properties.headers?.['x-delivery-count'] ?? 0);
              await new Promise((resolve) => setTimeout(resolve, requeueDelay(deliveries, this.requeueDelayMs)));
            }
            if (!this.open) return; // channel gone: the broker redelivers it
            if (disposition === 'ack') channel.ack(message);
            else channel.nack(message, false, disposition === 'requeue');
          })
          .catch((error: unknown) => this.logger.error({ err: error, queue }, 'ack failed'))
          .finally(() => {
            this.inFlight -= 1;
            if (this.inFlight === 0) this.idle.emit('idle');
          });
      },
      { noAck: false },
    );
    this.consumers.push({ channel, tag: consumerTag, queue });
  }

  /**
   * Receives every message published to a fanout exchange from now on, through a private queue
   * that the broker deletes when this connection ends. For hints only: no acks, no redelivery.
   */
  async subscribe(exchange: string, handler: (content: Buffer) => void): Promise<void> {
    const channel = await this.connection.createChannel();
    channel.on('error', (error: Error) => this.logger.error({ err: error, exchange }, 'subscription channel error'));
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, exchange, '');
    const { consumerTag } = await channel.consume(queue, (message) => message && handler(message.content), {
      noAck: true,
    });
    this.consumers.push({ channel, tag: consumerTag, queue });
  }

  /** Stops consuming, lets in-flight messages finish (up to `graceMs`), then closes. Idempotent. */
  close(graceMs = 10_000): Promise<void> {
    this.closing ??= this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    for (const { channel, tag } of this.consumers) {
      try {
        await channel.cancel(tag);
      } catch (error) {
        this.logger.warn({ err: error }, 'cancel consumer failed');
      }
    }
    if (this.inFlight > 0) {
      const timer = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([once(this.idle, 'idle'), timer]);
    }
    for (const { channel, queue } of this.consumers) {
      try {
        // Acks are asynchronous; closing right after the last one can lose it (seen with quorum
        // queues on RabbitMQ 3.10: the message came back). A round trip on the same channel
        // makes sure the broker has processed every ack sent before it.
        await channel.checkQueue(queue);
        await channel.close();
      } catch {
        // already closed with the connection
      }
    }
    try {
      await this.publishChannel.close();
    } catch {
      // already closed
    }
    try {
      await this.connection.close();
    } catch {
      // already closed
    }
    this.open = false;
  }
}
