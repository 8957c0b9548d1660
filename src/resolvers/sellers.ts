import { sellerConfigView } from '../services/sellers.js';
import type { Resolvers } from './__generated__/types.js';
import { userError } from '../domain/errors.js';
import { payload, requireAdmin, requireViewer } from './errors.js';

export const sellerResolvers: Resolvers = {
  Query: {
    sellers: (_, __, ctx) => {
      requireViewer(ctx);
      return ctx.services.sellers.list();
    },
    sellerHealth: async (_, __, ctx) => {
      requireAdmin(ctx);
      const gates = ctx.services.gates;
      if (!gates) return [];
      // The fleet's view: a breaker another instance opened, or a pause it was asked for, shows here too.
      return Promise.all((await ctx.services.sellers.list()).map(async (seller) => ({ seller, health: await gates.fleetHealth(seller) })));
    },
  },
  SellerHealth: {
    breaker: (v) => v.health.breaker,
    concurrencyLimit: (v) => v.health.concurrencyLimit,
    inFlight: (v) => v.health.inFlight,
    queued: (v) => v.health.queued,
    latencyP50Ms: (v) => v.health.latencyMs.p50,
    latencyP90Ms: (v) => v.health.latencyMs.p90,
    latencyP99Ms: (v) => v.health.latencyMs.p99,
    errorRate: (v) => v.health.errorRate,
    recentCalls: (v) => v.health.recentCalls,
    pausedUntil: (v) => v.health.pausedUntil,
  },
  Mutation: {
    upsertSeller: async (_, { input }, ctx) => {
      requireAdmin(ctx);
      return payload('seller', await ctx.services.sellers.upsert(input));
    },
    resetSellerBreaker: async (_, { sellerId }, ctx) => {
      requireAdmin(ctx);
      const [seller] = await ctx.services.sellers.byIds([sellerId]);
      if (!seller) return { health: null, userErrors: [userError('NOT_FOUND', 'no such seller', ['sellerId'])] };
      const gate = ctx.services.gates?.reset(seller);
      return { health: gate ? { seller, health: gate.health() } : null, userErrors: [] };
    },
  },
  Seller: {
    config: (s, _, ctx) => (ctx.viewer !== null && ctx.viewer !== 'invalid' && ctx.viewer.role === 'admin' ? sellerConfigView(s) : null),
  },
};
