export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

/** A Prometheus histogram read from `/metrics` text: cumulative counts by upper bound, summed over the texts given (one per host). */
export function histogramOf(texts: readonly string[], name: string): { le: number; count: number }[] {
  const counts = new Map<number, number>();
  const line = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)$`, "gm");
  for (const text of texts) {
    for (const [, le, count] of text.matchAll(line)) counts.set(Number(le), (counts.get(Number(le)) ?? 0) + Number(count));
  }
  return [...counts].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** The upper bound of the bucket the `p`th percentile falls in (Infinity past the last bound). */
export function histogramPercentile(buckets: readonly { le: number; count: number }[], p: number): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  return buckets.find((bucket) => bucket.count >= (p / 100) * total)!.le;
}
