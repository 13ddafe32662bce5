// Creates the per-service RabbitMQ accounts through the management API, each allowed only what
// its service does (used by docker-compose; infra/stack.sh does the same with rabbitmqctl):
//   gateway   publishes jobs
//   inference reads jobs, publishes results and invalid messages
//   results   reads results and dead-lettered jobs, publishes invalid messages and events
// No service may configure (declare or delete) the shared topology; the gateway only makes its
// own private, server-named queue (amq.gen-…) for the events it waits on.
const ACCOUNTS = {
  gateway: { configure: '^amq\\.gen-', write: '^(cxr\\.jobs$|amq\\.gen-)', read: '^(cxr\\.events$|amq\\.gen-)' },
  inference: { configure: '^$', write: '^(cxr\\.results|cxr\\.invalid)$', read: '^cxr\\.jobs$' },
  results: { configure: '^$', write: '^(cxr\\.invalid|cxr\\.events)$', read: '^(cxr\\.results|cxr\\.jobs\\.dead)$' },
} as const;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const base = required('RABBITMQ_MANAGEMENT_URL');
  const auth = Buffer.from(`${required('RABBITMQ_ADMIN_USER')}:${required('RABBITMQ_ADMIN_PASSWORD')}`).toString(
    'base64',
  );
  const vhost = encodeURIComponent(process.env.RABBITMQ_VHOST ?? 'cxr');
  const call = async (method: string, path: string, body: unknown) => {
    const response = await fetch(`${base}/api/${path}`, {
      method,
      headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  };
  await call('PUT', `vhosts/${vhost}`, {});
  for (const [service, permissions] of Object.entries(ACCOUNTS)) {
    const user = `cxr-${service}`;
    await call('PUT', `users/${user}`, { password: required(`RABBITMQ_${service.toUpperCase()}_PASSWORD`), tags: '' });
    await call('PUT', `permissions/${vhost}/${user}`, permissions);
  }
  console.log('[provision] RabbitMQ service accounts ready');
}

main().catch((error: unknown) => {
  console.error(`[provision] ${(error as Error).message}`);
  process.exit(1);
});
