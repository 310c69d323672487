// Printing and statistics shared by the benchmarks.

/** Median of a list of numbers (mean of the two middle ones for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The p-quantile (0..1) by nearest rank. */
export function quantile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

/** Prints `rows` (arrays of cells) under `head` as an aligned text table. */
export function printTable(title, head, rows, notes = []) {
  const cells = [head, ...rows].map((r) => r.map((c) => String(c ?? "")));
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(`\n${title}`);
  console.log(line(cells[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) console.log(line(r));
  for (const n of notes) console.log(`  ${n}`);
}

export const kb = (bytes) => (bytes / 1000).toFixed(1);
