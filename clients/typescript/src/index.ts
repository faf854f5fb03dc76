// @nostr-analytics/client: the documented way into the nostr-analytics HTTP API.
export { Analytics, type AnalyticsOptions } from "./client.js";
export type {
  BreakdownQuery,
  EngagersQuery,
  NoteQuery,
  SummaryQuery,
  TimeSeriesQuery,
  TopNotesQuery,
} from "./client.js";
export { eventIdToHex, eventIdToNote, pubkeyToHex, pubkeyToNpub, shortNpub } from "./ids.js";
export { type JobOptions, type JobProgress, waitForJob } from "./jobs.js";
export { type LegacyAnalytics, toV1, V1_FIELDS, V1_METRICS } from "./legacy.js";
export { joinPages } from "./pages.js";
export { JobFailedError, type Problem, ProblemError } from "./problem.js";
export type { paths, components } from "./schema.js";
export * from "./types.js";
