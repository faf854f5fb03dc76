// The response adapter the ADR names: a v2 summary in the legacy v1 shape, so a frontend
// behind a feature flag reads either path the same way. It mirrors the server's
// `AnalyticsV1::from_summary` (shared/api-types/src/v1.rs), which answers /api/v1 on the
// v2 path (docs/rollout.md).
import type { Summary } from "./types.js";

/** The legacy analytics answer: totals over the last `days` days. */
export interface LegacyAnalytics {
  pubkey: string;
  /** The window in days (a rolling window's, else its length, rounded up). */
  days: number;
  /** The window's start, Unix seconds (inclusive). */
  since: number;
  /** The window's end, Unix seconds (exclusive). */
  until: number;
  notes: number | null;
  replies: number | null;
  reactions: number | null;
  reposts: number | null;
  zaps: number | null;
  /** Whole sats: the millisats received, rounded down. */
  zap_sats: number | null;
  /** Followers at the window's end. */
  followers: number | null;
  followers_gained: number | null;
  followers_lost: number | null;
}

/** Each v1 field and the metric it is read from (`null` when the metric failed). */
export const V1_FIELDS = {
  notes: "notes_published",
  replies: "replies_received",
  reactions: "reactions_received",
  reposts: "reposts_received",
  zaps: "zaps_received",
  zap_sats: "zap_msats_received",
  followers: "follower_count",
  followers_gained: "followers_gained",
  followers_lost: "followers_lost",
} as const;

/** The metrics a v2 summary must be asked for to be adapted. */
export const V1_METRICS: string[] = Object.values(V1_FIELDS);

/** `summary` (asked with at least {@link V1_METRICS}) in the v1 shape. */
export function toV1(summary: Summary): LegacyAnalytics {
  const value = (metric: string): number | null => {
    const m = summary.metrics.find((v) => v.metric === metric);
    if (m === undefined) throw new RangeError(`the summary has no ${metric}: ask for metrics=${V1_METRICS.join(",")}`);
    return m.value ?? (m.error ? null : 0);
  };
  const msats = value(V1_FIELDS.zap_sats);
  const rolling = summary.window.rolling?.match(/^(\d+)d$/);
  const since = Date.parse(summary.window.from) / 1000;
  const until = Date.parse(summary.window.to) / 1000;
  return {
    pubkey: summary.pubkey,
    days: rolling?.[1] !== undefined ? Number(rolling[1]) : Math.ceil((until - since) / 86_400),
    since,
    until,
    notes: value(V1_FIELDS.notes),
    replies: value(V1_FIELDS.replies),
    reactions: value(V1_FIELDS.reactions),
    reposts: value(V1_FIELDS.reposts),
    zaps: value(V1_FIELDS.zaps),
    zap_sats: msats === null ? null : Math.floor(msats / 1000),
    followers: value(V1_FIELDS.followers),
    followers_gained: value(V1_FIELDS.followers_gained),
    followers_lost: value(V1_FIELDS.followers_lost),
  };
}
