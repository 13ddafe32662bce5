// Declares the exchanges and queues (idempotent). Run with administrative AMQP credentials:
//   AMQP_ADMIN_URL=amqp://admin:…@host/cxr npx tsx infra/tools/declare-topology.ts
// Services only check the topology, so their accounts need no `configure` permission.
import amqp from 'amqplib';
import { declareTopology } from '@cxr/broker';

async function main(): Promise<void> {
  const url = process.env.AMQP_ADMIN_URL;
  if (!url) throw new Error('AMQP_ADMIN_URL is required (an amqp:// URL of a user allowed to configure the vhost)');
  const jobDeliveryLimit = Number(process.env.JOB_DELIVERY_LIMIT ?? 5);
  if (!Number.isInteger(jobDeliveryLimit) || jobDeliveryLimit < 1)
    throw new Error('JOB_DELIVERY_LIMIT must be a positive integer');
  const connection = await amqp.connect(url);
  try {
    await declareTopology(await connection.createChannel(), { jobDeliveryLimit });
  } finally {
    await connection.close();
  }
  console.log('[topology] exchanges and queues declared');
}

main().catch((error: unknown) => {
  console.error(`[topology] ${(error as Error).message}`);
  process.exit(1);
});
