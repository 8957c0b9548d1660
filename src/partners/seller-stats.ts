/**
 * Live statistics per seller, to order calls within a tier: sellers that answer fast, reliably
 * and cheaply are asked first. Exponentially weighted, so recent behaviour counts most.
 */
export interface SellerStat {
  latencyMs: number;
  successRate: number;
  /** How far this seller's total sits above the best total seen in the same round (1 = best). */
  priceRatio: number;
  calls: number;
  failures: number;
  inFlight: number;
}

const ALPHA = 0.2;

export class SellerStats {
  private readonly stats = new Map<string, SellerStat>();

  get(sellerId: string): SellerStat {
    let s = this.stats.get(sellerId);
    if (!s) {
      s = { latencyMs: 100, successRate: 1, priceRatio: 1, calls: 0, failures: 0, inFlight: 0 };
      this.stats.set(sellerId, s);
    }
    return s;
  }

  started(sellerId: string): void {
    this.get(sellerId).inFlight += 1;
  }

  /**
   * Records a finished call. Neutral ones (aborted, never sent, a query the seller cannot answer)
   * say nothing about the seller and are not counted.
   */
  finished(sellerId: string, outcome: { verdict: 'ok' | 'failed' | 'neutral'; latencyMs: number }): void {
    const s = this.get(sellerId);
    s.inFlight = Math.max(0, s.inFlight - 1);
    if (outcome.verdict === 'neutral') return;
    const ok = outcome.verdict === 'ok';
    s.calls += 1;
    if (!ok) s.failures += 1;
    s.latencyMs += ALPHA * (outcome.latencyMs - s.latencyMs);
    s.successRate += ALPHA * ((ok ? 1 : 0) - s.successRate);
  }

  /** Feeds price competitiveness: this seller's best total against the round's best. */
  priced(sellerId: string, ratio: number): void {
    const s = this.get(sellerId);
    s.priceRatio += ALPHA * (ratio - s.priceRatio);
  }

  /** Lower is better: expected wait for a useful, competitive answer. */
  score(sellerId: string): number {
    const s = this.get(sellerId);
    return (s.latencyMs * s.priceRatio) / Math.max(0.05, s.successRate);
  }

  snapshot(): Map<string, SellerStat> {
    return new Map([...this.stats].map(([k, v]) => [k, { ...v }]));
  }
}
