import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import { HttpError } from '../errors';

export interface RateLimitsOptions {
  /** Requests per window from one client IP, authenticated or not; 0 disables. */
  perIp: number;
  /** Requests per window with one API key (the IP's count when no key is sent); 0 disables. */
  perKey: number;
  windowSeconds: number;
  /** Routes never limited (health checks, operators' counters). */
  exempt: string[];
}

const REMAINING = Symbol('rateLimitRemaining');
declare module 'fastify' {
  interface FastifyRequest {
    [REMAINING]?: number;
  }
}

/**
 * Per-IP and per-API-key request limits, counted in this process's memory (fixed windows, an LRU
 * of at most 5,000 keys per limiter): with N replicas behind a balancer a client gets up to N
 * times the limit. The per-IP limit runs before authentication, so keys are not even looked up
 * past it; the per-key one after it, keyed on the authenticated principal.
 *
 * Answers carry the draft-7 headers RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (of
 * the tighter limit); a refusal is a 429 RATE_LIMITED with Retry-After.
 */
export default fp<RateLimitsOptions>(
  async (app: FastifyInstance, options) => {
    if (options.perIp <= 0 && options.perKey <= 0) return;
    await app.register(rateLimit, { global: false });
    const timeWindow = options.windowSeconds * 1000;
    const exempt = new Set(options.exempt);

    function limiter(max: number, keyGenerator: (request: FastifyRequest) => string) {
      const check = app.createRateLimit({ max, timeWindow, keyGenerator });
      return async (request: FastifyRequest, reply: FastifyReply) => {
        if (exempt.has(request.routeOptions.url ?? '')) return;
        const verdict = await check(request);
        if (verdict.isAllowed) return;
        const remaining = verdict.remaining;
        // Of two limits, the client is shown the one closer to refusing it.
        if (request[REMAINING] === undefined || remaining <= request[REMAINING]) {
          request[REMAINING] = remaining;
          reply.header('ratelimit-limit', verdict.max);
          reply.header('ratelimit-remaining', remaining);
          reply.header('ratelimit-reset', verdict.ttlInSeconds);
        }
        if (verdict.isExceeded) {
          reply.header('retry-after', verdict.ttlInSeconds);
          throw new HttpError(
            429,
            'RATE_LIMITED',
            `too many requests: at most ${verdict.max} per ${options.windowSeconds} s; retry in ${verdict.ttlInSeconds} s`,
          );
        }
      };
    }

    if (options.perIp > 0)
      app.addHook(
        'onRequest',
        limiter(options.perIp, (request) => `ip:${request.ip}`),
      );
    if (options.perKey > 0) {
      const perKey = limiter(options.perKey, (request) => {
        const principal = request.principal;
        if (!principal) return `anon:${request.ip}`;
        return principal.kind === 'user' ? `key:${principal.keyId}` : 'key:bootstrap-admin';
      });
      // After every onRequest hook, authentication's included, and before the body is read.
      app.addHook('preParsing', async (request, reply, payload) => {
        await perKey(request, reply);
        return payload;
      });
    }
  },
  { name: 'rate-limits' },
);
