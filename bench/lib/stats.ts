/** Small statistics helpers and a Prometheus text-format reader. */

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function percentiles(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export const round = (n: number | null | undefined, digits = 1): number | null =>
  n === null || n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** digits) / 10 ** digits;

/** One scrape of a Prometheus text exposition: every sample with its labels. */
export class PromSnapshot {
  private constructor(private readonly samples: ReadonlyArray<{ name: string; labels: Record<string, string>; value: number }>) {}

  static parse(text: string): PromSnapshot {
    const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
      samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
    return new PromSnapshot(samples);
  }

  static empty(): PromSnapshot {
    return new PromSnapshot([]);
  }

  /** Sum of every sample of `name` whose labels include `where`. */
  sum(name: string, where: Record<string, string> = {}): number {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += Number.isFinite(s.value) ? s.value : 0;
    }
    return total;
  }

  /** Sums of `name` grouped by one label's value. */
  by(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) {
      if (s.name !== name) continue;
      const key = s.labels[label] ?? '';
      out[key] = (out[key] ?? 0) + (Number.isFinite(s.value) ? s.value : 0);
    }
    return out;
  }

  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}

/** Counter deltas between two scrapes (after − before), grouped by a label. */
export function deltaBy(before: PromSnapshot, after: PromSnapshot, name: string, label: string): Record<string, number> {
  const a = after.by(name, label);
  const b = before.by(name, label);
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) out[key] = (a[key] ?? 0) - (b[key] ?? 0);
  return out;
}
