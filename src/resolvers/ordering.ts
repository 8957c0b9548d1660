import { attemptsNeedingAttention } from '../db/queries/attempts.js';
import { paymentCallsForRequest } from '../db/queries/payments.js';
import { isUuid } from '../engine/requests.js';
import type { AttemptState, PaymentState } from '../engine/types.js';
import type { AttemptState as GqlAttemptState, PaymentState as GqlPaymentState, Resolvers } from './__generated__/types.js';
import { requireAdmin } from './errors.js';
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
