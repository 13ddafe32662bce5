// docker-compose's mongodb-setup (mongosh, as the root user, on every 'docker compose up'):
// the services' own MongoDB users, each with a role holding only what its service does in the
// service database. Creating or updating each is idempotent, and a changed password takes effect.
// The local stack does the same with PostgreSQL roles behind FerretDB: infra/servers/postgres.sh.
const dbName = process.env.MONGODB_DATABASE || 'cxr';
const admin = db.getSiblingDB('admin');
// Every service opens the database with connectDatabase (libs/db), which makes any missing
// collection and index: create-only rights on the database, never drop.
const startUp = ['listCollections', 'listIndexes', 'createCollection', 'createIndex'];
const documents = ['find', 'insert', 'update', 'remove'];
const roles = {
  cxrGateway: [{ resource: { db: dbName, collection: '' }, actions: [...startUp, ...documents] }],
  cxrResults: [
    { resource: { db: dbName, collection: '' }, actions: startUp },
    { resource: { db: dbName, collection: 'classification_requests' }, actions: ['find', 'insert', 'update'] },
    { resource: { db: dbName, collection: 'classification_results' }, actions: ['find', 'insert', 'update'] },
    { resource: { db: dbName, collection: 'models' }, actions: ['find'] },
  ],
};
for (const [role, privileges] of Object.entries(roles)) {
  if (admin.getRole(role)) admin.updateRole(role, { privileges, roles: [] });
  else admin.createRole({ role, privileges, roles: [] });
}
const users = {
  'cxr-gateway': { role: 'cxrGateway', password: process.env.MONGODB_GATEWAY_PASSWORD },
  'cxr-results': { role: 'cxrResults', password: process.env.MONGODB_RESULTS_PASSWORD },
};
for (const [user, { role, password }] of Object.entries(users)) {
  if (!password) throw new Error(`no password for ${user}`);
  const grant = { pwd: password, roles: [{ role, db: 'admin' }] };
  if (admin.getUser(user)) admin.updateUser(user, grant);
  else admin.createUser({ user, ...grant });
}
print(`[mongodb-setup] users cxr-gateway, cxr-results ready on database ${dbName}`);
