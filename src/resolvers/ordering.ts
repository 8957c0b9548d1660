import { attemptsNeedingAttention } from '../db/queries/attempts.js';
import { paymentCallsForRequest } from '../db/queries/payments.js';
import { isUuid } from '../services/requests.js';
import type { AttemptState, PaymentState } from '../domain/types.js';
import type { AttemptState as GqlAttemptState, PaymentState as GqlPaymentState, Resolvers } from './__generated__/types.js';
import { userError } from '../domain/errors.js';
import { gqlError, payload, requireAdmin } from './errors.js';
import { loadSeller } from './requests.js';

export const orderingResolvers: Resolvers = {
  Query: {
    attemptsNeedingAttention: (_, __, ctx) => {
      requireAdmin(ctx);
      return attemptsNeedingAttention(ctx.services.db);
    },
    paymentLedger: (_, { requestId }, ctx) => {
      requireAdmin(ctx);
      return isUuid(requestId) ? paymentCallsForRequest(ctx.services.db, requestId) : [];
    },
    deadLetters: (_, { includeResolved, first }, ctx) => {
      requireAdmin(ctx);
      const limit = first ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw gqlError('BAD_USER_INPUT', 'first must be from 1 to 500', { field: 'first' });
      return ctx.services.deadLetters.list(includeResolved ?? false, limit);
    },
  },
  Mutation: {
    redriveDeadLetter: async (_, { id }, ctx) => {
      requireAdmin(ctx);
      if (!isUuid(id)) return { deadLetter: null, userErrors: [userError('NOT_FOUND', 'no such dead letter', ['id'])] };
      return payload('deadLetter', await ctx.services.deadLetters.redrive(id));
    },
  },
  PurchaseRequest: {
    attempts: (r, _, ctx) => ctx.loaders.attempts.load(r.id),
  },
  OrderAttempt: {
    seller: (a, _, ctx) => loadSeller(ctx, a.sellerId),
    offer: (a) => a.offer,
    state: (a) => a.state.toUpperCase() as GqlAttemptState satisfies Uppercase<AttemptState>,
    paymentState: (a) => a.paymentState.toUpperCase() as GqlPaymentState satisfies Uppercase<PaymentState>,
  },
};
