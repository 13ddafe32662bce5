import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isDuplicateKeyError, type Database } from '@cxr/db';
import { conflict, forbidden, notFound, unauthorized } from '../errors';
import { generateApiKey } from '../lib/api-keys';
import { userView } from '../lib/views';
import { requireUser } from '../plugins/auth';
import { answer, errorResponses, jsonBodyErrors, noContent } from '../openapi';
import {
  ApiKeyList,
  CreatedUser,
  CreateKeyBody,
  CreateUserBody,
  KeyParams,
  NewApiKey,
  RenameUserBody,
  User as UserSchema,
  WebhookSecret,
} from '../schemas';
import { webhookSecret } from '../webhooks/signing';

export const usersRoutes: FastifyPluginAsyncTypebox<{ db: Database; webhookSigningKey: string }> = async (
  app,
  { db, webhookSigningKey },
) => {
  const { User, ApiKey } = db.models;

  async function issueKey(userId: unknown, name: string) {
    const key = generateApiKey();
    await ApiKey.create({ _id: key.keyId, user: userId, secret_hash: key.secretHash, name });
    return { id: key.keyId, name, key: key.key };
  }

  app.post(
    '/users',
    {
      schema: {
        tags: ['users'],
        operationId: 'createUser',
        summary: 'Create a user (admins only) and return its first API key, shown this once',
        body: CreateUserBody,
        response: {
          201: answer(CreatedUser, 'The user and its first API key'),
          ...jsonBodyErrors('FORBIDDEN', 'CONFLICT'),
        },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      if (!principal) throw unauthorized('send an API key as "Authorization: Bearer <key>"');
      if (!principal.isAdmin) throw forbidden('only an admin can create users');
      let user;
      try {
        user = await User.create({ username: request.body.username, is_admin: request.body.is_admin ?? false });
      } catch (error) {
        if (isDuplicateKeyError(error)) throw conflict(`username '${request.body.username}' is taken`);
        throw error;
      }
      const apiKey = await issueKey(user._id, 'initial');
      return reply.code(201).send({ user: userView(user.toObject()), api_key: apiKey });
    },
  );

  app.get(
    '/users/me',
    {
      schema: {
        tags: ['users'],
        operationId: 'getMe',
        summary: 'The calling user',
        response: { 200: answer(UserSchema, 'The calling user'), ...errorResponses('NOT_FOUND') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const user = await User.findById(userId).lean();
      if (!user) throw notFound('user');
      return userView(user);
    },
  );

  app.patch(
    '/users/me',
    {
      schema: {
        tags: ['users'],
        operationId: 'renameMe',
        summary: 'Rename the calling user',
        body: RenameUserBody,
        response: { 200: answer(UserSchema, 'The renamed user'), ...jsonBodyErrors('NOT_FOUND', 'CONFLICT') },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      try {
        const user = await User.findByIdAndUpdate(
          userId,
          { $set: { username: request.body.username } },
          { new: true },
        ).lean();
        if (!user) throw notFound('user');
        return userView(user);
      } catch (error) {
        if (isDuplicateKeyError(error)) throw conflict(`username '${request.body.username}' is taken`);
        throw error;
      }
    },
  );

  app.post(
    '/users/me/api-keys',
    {
      schema: {
        tags: ['users'],
        operationId: 'createApiKey',
        summary: 'Create another API key; the key is shown this once',
        body: CreateKeyBody,
        response: { 201: answer(NewApiKey, 'The new key'), ...jsonBodyErrors() },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      return reply.code(201).send(await issueKey(userId, request.body.name));
    },
  );

  app.get(
    '/users/me/api-keys',
    {
      schema: {
        tags: ['users'],
        operationId: 'listApiKeys',
        summary: 'List my API keys (never the secrets)',
        response: { 200: answer(ApiKeyList, 'My keys, oldest first'), ...errorResponses() },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const keys = await ApiKey.find({ user: userId }).sort({ _id: 1 }).lean();
      return {
        items: keys.map((k) => ({
          id: k._id,
          name: k.name,
          created_at: k.created_at,
          revoked_at: k.revoked_at ?? null,
        })),
      };
    },
  );

  app.delete(
    '/users/me/api-keys/:keyId',
    {
      schema: {
        tags: ['users'],
        operationId: 'revokeApiKey',
        summary: 'Revoke one of my API keys',
        params: KeyParams,
        response: {
          204: noContent('Revoked: it stops working at once here, within AUTH_CACHE_SECONDS elsewhere'),
          ...errorResponses('VALIDATION', 'NOT_FOUND'),
        },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      const result = await ApiKey.updateOne(
        { _id: request.params.keyId, user: userId, revoked_at: null },
        { $set: { revoked_at: new Date() } },
      );
      if (result.matchedCount === 0) throw notFound('API key');
      app.forgetApiKey(request.params.keyId);
      return reply.code(204).send();
    },
  );

  app.get(
    '/users/me/webhook-secret',
    {
      schema: {
        tags: ['users'],
        operationId: 'getWebhookSecret',
        summary: 'The secret that signs the webhooks of my requests (verify them with it)',
        response: { 200: answer(WebhookSecret, 'My webhook secret'), ...errorResponses() },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      return reply.header('cache-control', 'no-store').send({
        secret: webhookSecret(webhookSigningKey, String(userId)),
        signature_header: 'CXR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>',
        scheme: 'v1',
      });
    },
  );
};
