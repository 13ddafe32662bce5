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
  connection.on('error', () => undefined); // the failed declare below reports it
  try {
    await declareTopology(await connection.createChannel(), { jobDeliveryLimit });
  } catch (error) {
    const message = (error as Error).message;
    if (message.includes('PRECONDITION_FAILED')) {
      throw new Error(
        `${message}\nA queue or exchange already exists with other settings (from an older version?). ` +
          'Move its messages elsewhere and delete it, then run this again.',
      );
    }
    throw error;
  } finally {
    await connection.close().catch(() => undefined);
  }
  console.log('[topology] exchanges and queues declared');
}

main().catch((error: unknown) => {
  console.error(`[topology] ${(error as Error).message}`);
  process.exit(1);
});
