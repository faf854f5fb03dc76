// The typed client: openapi-fetch over the paths generated from the OpenAPI document, with
// the API key as a bearer token, and routes that may answer 202 followed to their answer.
import createClient, { type Client } from "openapi-fetch";
import { eventIdToHex, pubkeyToHex } from "./ids.js";
import { type JobOptions, waitForJob } from "./jobs.js";
import { problemOf } from "./problem.js";
import type { paths } from "./schema.js";
import type {
  Breakdown,
  Catalog,
  CompactTimeSeries,
  Engagers,
  JobAccepted,
  JobRequest,
  NoteDrilldown,
  QueryAnswer,
  Status,
  Summary,
  TimeSeries,
  TopNotes,
} from "./types.js";

type Query<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } }
  ? NonNullable<Q>
  : never;
export type SummaryQuery = Query<"/api/v2/analytics/users/{pubkey}/summary">;
export type TimeSeriesQuery = Query<"/api/v2/analytics/users/{pubkey}/timeseries">;
export type BreakdownQuery = Query<"/api/v2/analytics/users/{pubkey}/breakdown">;
export type EngagersQuery = Query<"/api/v2/analytics/users/{pubkey}/engagers">;
export type NoteQuery = Query<"/api/v2/analytics/notes/{event_id}">;
export type TopNotesQuery = Query<"/api/v2/analytics/users/{pubkey}/notes">;

export interface AnalyticsOptions {
  /** Where the API is: `https://analytics.example` (the routes start with /api/v2). */
  baseUrl: string;
  /** An API key (`na_…`), sent as `Authorization: Bearer …`: personal routes need one. */
  apiKey?: string;
  /** A fetch of your own (tests, a proxy); the global one by default. */
  fetch?: typeof globalThis.fetch;
}

/** One way in: `new Analytics({ baseUrl })`, then a method per route. */
export class Analytics {
  /** The typed openapi-fetch client, for anything the methods do not cover. */
  readonly api: Client<paths>;

  constructor(options: AnalyticsOptions) {
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      fetch: options.fetch,
    });
    const key = options.apiKey;
    if (key !== undefined) {
      this.api.use({
        onRequest({ request }) {
          request.headers.set("authorization", `Bearer ${key}`);
          return request;
        },
      });
    }
  }

  /** One value per metric over a window. `pubkey`: hex, npub or nprofile. */
  async summary(pubkey: string, query: SummaryQuery = {}, job?: JobOptions): Promise<Summary> {
    const r = await this.api.GET("/api/v2/analytics/users/{pubkey}/summary", {
      params: { path: { pubkey: pubkeyToHex(pubkey) }, query },
      signal: job?.signal,
    });
    return (await this.answer(r, job)) as Summary;
  }

  /** Each metric per bucket; `format: "compact"` for the small encoding. */
  async timeseries(
    pubkey: string,
    query: TimeSeriesQuery = {},
    job?: JobOptions,
  ): Promise<TimeSeries | CompactTimeSeries> {
    const r = await this.api.GET("/api/v2/analytics/users/{pubkey}/timeseries", {
      params: { path: { pubkey: pubkeyToHex(pubkey) }, query },
      signal: job?.signal,
    });
    return (await this.answer(r, job)) as TimeSeries | CompactTimeSeries;
  }

  /** One metric split by one of its dimensions. */
  async breakdown(pubkey: string, query: BreakdownQuery, job?: JobOptions): Promise<Breakdown> {
    const r = await this.api.GET("/api/v2/analytics/users/{pubkey}/breakdown", {
      params: { path: { pubkey: pubkeyToHex(pubkey) }, query },
      signal: job?.signal,
    });
    return (await this.answer(r, job)) as Breakdown;
  }

  /** Who engaged with `pubkey` (personal: its own key, a `read` key, or admin). */
  async engagers(pubkey: string, query: EngagersQuery = {}): Promise<Engagers> {
    const { data, error, response } = await this.api.GET("/api/v2/analytics/users/{pubkey}/engagers", {
      params: { path: { pubkey: pubkeyToHex(pubkey) }, query },
    });
    if (data === undefined) throw problemOf(response, error);
    return data;
  }

  /** The pubkey's events ranked by one metric (default `reactions_received`). */
  async topNotes(pubkey: string, query: TopNotesQuery = {}): Promise<TopNotes> {
    const { data, error, response } = await this.api.GET("/api/v2/analytics/users/{pubkey}/notes", {
      params: { path: { pubkey: pubkeyToHex(pubkey) }, query },
    });
    if (data === undefined) throw problemOf(response, error);
    return data;
  }

  /** What others did to one event. `eventId`: hex, note or nevent. */
  async note(eventId: string, query: NoteQuery = {}, job?: JobOptions): Promise<NoteDrilldown> {
    const r = await this.api.GET("/api/v2/analytics/notes/{event_id}", {
      params: { path: { event_id: eventIdToHex(eventId) }, query },
      signal: job?.signal,
    });
    return (await this.answer(r, job)) as NoteDrilldown;
  }

  /** The metric catalog. */
  async metrics(): Promise<Catalog> {
    const { data, error, response } = await this.api.GET("/api/v2/analytics/metrics");
    if (data === undefined) throw problemOf(response, error);
    return data;
  }

  /** Ingest watermarks and compaction lag. */
  async status(): Promise<Status> {
    const { data, error, response } = await this.api.GET("/api/v2/analytics/status");
    if (data === undefined) throw problemOf(response, error);
    return data;
  }

  /** Asks for `request` as a job and returns its answer once done. */
  async runJob(request: JobRequest, job?: JobOptions): Promise<QueryAnswer> {
    const r = await this.api.POST("/api/v2/analytics/jobs", { body: request, signal: job?.signal });
    return this.answer(r, job);
  }

  /** Follows a job already asked for (by id) to its answer. */
  waitForJob(jobId: string, job?: JobOptions): Promise<QueryAnswer> {
    return waitForJob(this.api, jobId, job);
  }

  /** The answer, or the answer of the job a 202 started. */
  private async answer(
    r: { data?: unknown; error?: unknown; response: Response },
    job?: JobOptions,
  ): Promise<QueryAnswer> {
    if (r.data === undefined) throw problemOf(r.response, r.error);
    if (r.response.status !== 202) return r.data as QueryAnswer;
    const accepted = r.data as JobAccepted;
    const retry = Number(r.response.headers.get("retry-after"));
    return waitForJob(this.api, accepted.job_id, job, Number.isFinite(retry) && retry > 0 ? retry : undefined);
  }
}
