import amqp from 'amqplib';
import { Broker, Topology, declareTopology, JOB_ROUTING_KEY } from '@cxr/broker';
import { createVhost, type TestVhost } from '../support/stack';
import { testLogger } from '../support/logger';

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
