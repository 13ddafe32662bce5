import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';

/** The page's files, beside this code in development and beside server.js in the build (infra/build.ts copies them). */
const WEB_DIR = join(__dirname, __filename.endsWith('.ts') ? '../web' : 'web');

const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8'],
} as const;

/** The same on each file: only this origin's script, style and API, and images from the user's own file (blob:). */
const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; " +
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/**
 * The web page: pick a dataset, send an image, see its label and score bars. Static files
 * read once at start; the page calls the API on this origin with the key its user types,
 * under a strict Content-Security-Policy.
 */
export const webRoutes: FastifyPluginAsync = async (app) => {
  for (const [path, [file, type]] of Object.entries(FILES)) {
    const body = readFileSync(join(WEB_DIR, file));
    app.get(path, { schema: { hide: true } }, async (_request, reply) => reply.type(type).headers(HEADERS).send(body));
  }
};
