import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';

/** The page's files, beside this code in development and beside server.js in the build (infra/build.ts copies them). */
const WEB_DIR = join(__dirname, __filename.endsWith('.ts') ? '../web' : 'web');

/** The page's files by extension: index.html is served at `/`, the others (its modules, its style) by name. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

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
 * The web page: pick a dataset and model, drop images, follow each to its label and score bars,
 * page through the history. Its static files are read once at start; the page calls the API on
 * this origin with the key its user types, under a strict Content-Security-Policy.
 */
export const webRoutes: FastifyPluginAsync = async (app) => {
  for (const file of readdirSync(WEB_DIR)) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const body = readFileSync(join(WEB_DIR, file));
    const path = file === 'index.html' ? '/' : `/${file}`;
    app.get(path, { schema: { hide: true } }, async (_request, reply) => reply.type(type).headers(HEADERS).send(body));
  }
};
