/**
 * Share of registered sellers per tier in a large marketplace: a few trusted stores, many more in
 * the lower tiers. The lowest tier present takes whatever the others leave.
 */
export const TIER_SHARES: Readonly<Record<number, number>> = { 1: 0.05, 2: 0.25, 3: 0.7 };

interface Tiered {
  name: string;
  tier: number;
}

export interface ScaledFleet<S extends Tiered> {
  /** Sellers to register beyond the sandbox's own, each a copy of a sandbox seller of the same tier. */
  extras: S[];
  /** Registered sellers per tier once the extras are in (sandbox sellers included). */
  byTier: Record<number, number>;
}

/**
 * `total` broker sellers spread over the sandbox's tiers by TIER_SHARES. A copy keeps its original's
 * tier, so it has that tier's latencies and prices (the price table and the floor stay right);
 * it differs only in name, as the fan-out-heavy phase's copies do.
 */
export function scaledFleet<S extends Tiered>(base: readonly S[], total: number): ScaledFleet<S> {
  if (!Number.isInteger(total) || total <= base.length) {
    throw new Error(`--sellers must be a whole number above the sandbox's ${base.length} sellers, not ${total}`);
  }
  const byTierBase = new Map<number, S[]>();
  for (const s of base) (byTierBase.get(s.tier) ?? byTierBase.set(s.tier, []).get(s.tier)!).push(s);
  const tiers = [...byTierBase.keys()].sort((a, b) => a - b);
  const lowest = tiers.at(-1)!;
  const target = new Map<number, number>();
  for (const t of tiers) {
    if (t === lowest) continue;
    target.set(t, Math.max(byTierBase.get(t)!.length, Math.round((TIER_SHARES[t] ?? 0) * total)));
  }
  const rest = total - [...target.values()].reduce((a, b) => a + b, 0);
  if (rest < byTierBase.get(lowest)!.length) throw new Error(`--sellers ${total}: too few to keep every sandbox seller and spread the rest over the tiers`);
  target.set(lowest, rest);

  const extras: S[] = [];
  for (const t of tiers) {
    const originals = byTierBase.get(t)!;
    const wanted = target.get(t)! - originals.length;
    for (let i = 0; i < wanted; i++) {
      const original = originals[i % originals.length]!;
      extras.push({ ...original, name: `${original.name} · store ${Math.floor(i / originals.length) + 1}` });
    }
  }
  return { extras, byTier: Object.fromEntries(tiers.map((t) => [t, target.get(t)!])) };
}
