import type { Resolvers } from './__generated__/types.js';
import { orderingResolvers } from './ordering.js';
import { requestResolvers } from './requests.js';
import { DateTime, JSONScalar } from './scalars.js';
import { sellerResolvers } from './sellers.js';
import { webhookResolvers } from './webhooks.js';

/** Every resolver map merged, type by type. */
export const resolvers: Resolvers = mergeResolvers([{ DateTime, JSON: JSONScalar }, requestResolvers, sellerResolvers, orderingResolvers, webhookResolvers]);

function mergeResolvers(maps: Resolvers[]): Resolvers {
  const out: Record<string, unknown> = {};
  for (const map of maps) {
    for (const [type, fields] of Object.entries(map)) {
      const existing = out[type];
      out[type] = existing && typeof existing === 'object' && !('serialize' in (existing as object)) ? { ...existing, ...fields } : fields;
    }
  }
  return out as Resolvers;
}
