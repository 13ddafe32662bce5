// A child process for tests/integration/broker.test.ts: it connects, says `connected`, and once
// its connection is gone and the third reconnect attempt is scheduled it closes the broker. The
// process must then end by itself: a reconnect timer or socket left behind would keep it alive.
//
//   node --import tsx tests/support/broker-closed-while-reconnecting.ts AMQP_URL CONNECTION_NAME
import { Broker } from '@cxr/broker';
import { testLogger } from './logger';

async function main(): Promise<void> {
  const [url, name] = process.argv.slice(2);
  if (!url || !name) throw new Error('usage: broker-closed-while-reconnecting.ts AMQP_URL CONNECTION_NAME');
  const broker = await Broker.connect(url, {
    name,
    logger: testLogger,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
  });
  broker.on('disconnected', () => console.log('disconnected'));
  broker.on('reconnected', () => console.log('reconnected'));
  broker.on('lost', () => console.log('lost'));
  broker.on('reconnecting', ({ attempt }) => {
    console.log(`reconnecting ${attempt}`);
    if (attempt === 3) {
      void broker.close().then(() => console.log(`closed open=${broker.isOpen}`));
    }
  });
  console.log('connected');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(2);
});
