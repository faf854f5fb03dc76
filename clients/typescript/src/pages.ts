// A job's answer is served in pages (no response over the body limit): a time series is cut
// into runs of whole buckets, every page a valid answer of the same shape. This puts them
// back together, as `QueryAnswer::join_pages` does in Rust.
import type { QueryAnswer } from "./types.js";

/** The answer the pages (in page order) were cut from. */
export function joinPages(pages: QueryAnswer[]): QueryAnswer {
  const [first, ...rest] = pages;
  if (first === undefined) throw new RangeError("no pages to join");
  const whole = structuredClone(first);
  for (const page of rest) {
    if ("t" in whole && "t" in page) {
      const offset = whole.t.length;
      whole.t.push(...page.t);
      whole.series.forEach((s, i) => {
        const p = page.series[i];
        if (!p) return;
        s.values.push(...p.values);
        s.inexact.push(...p.inexact.map((j) => j + offset));
        s.relative_errors.push(...p.relative_errors);
      });
    } else if ("series" in whole && "series" in page && !("t" in page)) {
      whole.series.forEach((s, i) => {
        const p = page.series[i];
        if (p && "points" in s && "points" in p) s.points.push(...p.points);
      });
    }
  }
  return whole;
}
