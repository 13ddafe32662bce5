// Creates the collections and indexes of the service database with an account that may (the
// owner's): the services' own accounts may only read and write documents. Run by
// infra/stack.sh; run it again after a release that adds a collection or an index.
//   MONGODB_URI=… MONGODB_DATABASE=cxr node --import tsx infra/tools/migrate-database.ts
import { connectDatabase } from '@cxr/db';

async function main(): Promise<void> {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('MONGODB_URI is required');
  const name = process.env.MONGODB_DATABASE ?? 'cxr';
  // connectDatabase makes every collection and index the models declare.
  const db = await connectDatabase(uri, name);
  await db.close();
  console.log(`[migrate] database ${name}: collections and indexes ready`);
}

main().catch((error: unknown) => {
  console.error(`[migrate] ${(error as Error).message}`);
  process.exit(1);
});
