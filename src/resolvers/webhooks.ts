import type { Resolvers } from './__generated__/types.js';
import { requireViewer } from './errors.js';

export const webhookResolvers: Resolvers = {
  Query: {
    webhookEndpoints: (_, __, ctx) => ctx.services.webhooks.list(requireViewer(ctx)),
  },
  Mutation: {
    createWebhookEndpoint: async (_, { input }, ctx) => {
      const outcome = await ctx.services.webhooks.create(requireViewer(ctx), input);
      return outcome.ok
        ? { endpoint: outcome.value.endpoint, secret: outcome.value.secret, userErrors: [] }
        : { endpoint: null, secret: null, userErrors: outcome.errors };
    },
    deleteWebhookEndpoint: async (_, { id }, ctx) => {
      const outcome = await ctx.services.webhooks.delete(requireViewer(ctx), id);
      // The secret is never shown again, deleting included.
      return outcome.ok ? { endpoint: outcome.value, secret: null, userErrors: [] } : { endpoint: null, secret: null, userErrors: outcome.errors };
    },
  },
};
