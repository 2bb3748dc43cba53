// Bar charts of recent samples as inline SVG: one bar per sample, oldest on the left,
// on a scale up to the largest. No script and no style attributes (the page's CSP allows
// neither); each bar's <title> is its tooltip.
import type { Sample } from "../../observability/activity.ts";
import { escapeHtml, millis, when } from "./format.ts";

const WIDTH = 320;
const HEIGHT = 120;
const TOP = 14;
const LEFT = 4;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A figure with its chart and a caption of the median, 95th percentile and maximum; `none` when there are no samples. */
export function sampleChart(title: string, samples: readonly Sample[], [one, many]: [string, string], none: string): string {
  if (samples.length === 0) return `<figure class="chart"><figcaption><strong>${escapeHtml(title)}</strong>: ${escapeHtml(none)}</figcaption></figure>`;
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  const max = sorted.at(-1)!;
  const scale = max > 0 ? (HEIGHT - TOP) / max : 0;
  const step = (WIDTH - LEFT) / Math.max(samples.length, 20);
  const bars = samples
    .map((sample, i) => {
      const h = Math.max(1, sample.ms * scale);
      const x = (LEFT + i * step).toFixed(1);
      return `<rect x="${x}" y="${(HEIGHT - h).toFixed(1)}" width="${Math.max(1, step - 1).toFixed(1)}" height="${h.toFixed(1)}"><title>${when(sample.at)}: ${millis(sample.ms)}</title></rect>`;
    })
    .join("");
  const axis = `<line x1="${LEFT}" y1="${HEIGHT}" x2="${WIDTH}" y2="${HEIGHT}" class="axis"/><line x1="${LEFT}" y1="${TOP}" x2="${WIDTH}" y2="${TOP}" class="grid"/>`;
  const label = `<text x="${WIDTH}" y="${TOP - 3}" text-anchor="end">${millis(max)}</text>`;
  const summary = `${samples.length === 1 ? `the one ${one}` : `last ${samples.length} ${many}`}: median ${millis(quantile(sorted, 0.5))}, 95th percentile ${millis(quantile(sorted, 0.95))}, max ${millis(max)}`;
  const svg = `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(`${title}, ${summary}`)}">${axis}${label}<g class="bars">${bars}</g></svg>`;
  return `<figure class="chart">${svg}<figcaption><strong>${escapeHtml(title)}</strong>: ${escapeHtml(summary)}</figcaption></figure>`;
}
