// Async queries: a heavy request is answered 202 with a job; this follows the job (polling
// with backoff from the server's Retry-After), reports progress, then reads the answer's
// pages and joins them.
import type { Client } from "openapi-fetch";
import { joinPages } from "./pages.js";
import { JobFailedError, problemOf } from "./problem.js";
import type { paths } from "./schema.js";
import type { Job, QueryAnswer } from "./types.js";

/** How a job is followed. */
export interface JobOptions {
  /** Called after every look at the job, and for every page of its answer read. */
  onProgress?: (progress: JobProgress) => void;
  /** Stops following (the job itself runs on). */
  signal?: AbortSignal;
  /** The first wait, unless the 202's Retry-After says otherwise (default 1,000 ms). */
  pollIntervalMs?: number;
  /** Waits grow by half each look, up to this (default 10,000 ms). */
  maxPollIntervalMs?: number;
  /** Give up after this long (default 15 minutes). */
  timeoutMs?: number;
}

export interface JobProgress {
  jobId: string;
  state: Job["state"];
  /** The job's own progress report. */
  progress: Job["progress"];
  attempts: number;
  /** While the answer is read: pages read so far, of `pages`. */
  pagesRead?: number;
  pages?: number;
}

/** Follows job `jobId` until it succeeds, then returns its whole answer. */
export async function waitForJob(
  api: Client<paths>,
  jobId: string,
  options: JobOptions = {},
  firstWaitSeconds?: number,
): Promise<QueryAnswer> {
  const started = Date.now();
  const timeout = options.timeoutMs ?? 15 * 60_000;
  const maxWait = options.maxPollIntervalMs ?? 10_000;
  let wait = firstWaitSeconds !== undefined ? firstWaitSeconds * 1000 : (options.pollIntervalMs ?? 1_000);
  for (;;) {
    const job = await look(api, jobId, options.signal);
    const report: JobProgress = { jobId, state: job.state, progress: job.progress, attempts: job.attempts };
    options.onProgress?.(report);
    if (job.state === "succeeded") return readAnswer(api, job, report, options);
    if (job.state === "failed") throw new JobFailedError(jobId, job.error ?? "no reason given");
    if (Date.now() - started + wait > timeout) {
      throw new Error(`job ${jobId} is still ${job.state} after ${Math.round((Date.now() - started) / 1000)} s`);
    }
    await sleep(wait, options.signal);
    wait = Math.min(wait * 1.5, maxWait);
  }
}

async function look(api: Client<paths>, id: string, signal?: AbortSignal): Promise<Job> {
  const { data, error, response } = await api.GET("/api/v2/analytics/jobs/{id}", {
    params: { path: { id } },
    signal,
  });
  if (data === undefined) throw problemOf(response, error);
  return data;
}

async function readAnswer(
  api: Client<paths>,
  job: Job,
  report: JobProgress,
  options: JobOptions,
): Promise<QueryAnswer> {
  const pages = job.result_pages ?? 1;
  if (job.result != null && pages === 1) return job.result as QueryAnswer;
  const answers: QueryAnswer[] = [];
  for (let page = 1; page <= pages; page++) {
    const { data, error, response } = await api.GET("/api/v2/analytics/jobs/{id}/result", {
      params: { path: { id: job.job_id }, query: { page } },
      signal: options.signal,
    });
    if (data === undefined) throw problemOf(response, error);
    answers.push(data.result as QueryAnswer);
    options.onProgress?.({ ...report, pagesRead: page, pages });
  }
  return joinPages(answers);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}
