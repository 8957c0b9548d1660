import { sellerConfigView } from '../engine/sellers.js';
import type { Resolvers } from './__generated__/types.js';
import { payload, requireAdmin, requireViewer } from './errors.js';

export const sellerResolvers: Resolvers = {
  Query: {
    sellers: (_, __, ctx) => {
      requireViewer(ctx);
      return ctx.services.sellers.list();
    },
  },
  Mutation: {
    upsertSeller: async (_, { input }, ctx) => {
      requireAdmin(ctx);
      return payload('seller', await ctx.services.sellers.upsert(input));
    },
  },
  Seller: {
    config: (s, _, ctx) => (ctx.viewer !== null && ctx.viewer !== 'invalid' && ctx.viewer.role === 'admin' ? sellerConfigView(s) : null),
  },
};
