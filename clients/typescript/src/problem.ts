// Every error the API answers is an RFC 9457 problem: this error carries it whole.
import type { components } from "./schema.js";

export type Problem = components["schemas"]["Problem"];

/** A 4xx or 5xx answer: `status` and the problem body (`type`, `title`, `detail`, …). */
export class ProblemError extends Error {
  readonly status: number;
  readonly problem: Problem;
  /** Seconds to wait before asking again (429, 503), from `Retry-After`. */
  readonly retryAfter: number | undefined;

  constructor(status: number, problem: Problem, retryAfter?: number) {
    super(`${status} ${problem.title}: ${problem.detail ?? ""}`.trim());
    this.name = "ProblemError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

/** A body that is not a problem (a proxy's HTML page, say) still becomes a ProblemError. */
export function problemOf(response: Response, body: unknown): ProblemError {
  const retry = Number(response.headers.get("retry-after"));
  const problem =
    body && typeof body === "object" && "title" in body
      ? (body as Problem)
      : ({
          type: "about:blank",
          title: response.statusText || "error",
          status: response.status,
          detail: typeof body === "string" ? body.slice(0, 500) : undefined,
        } as Problem);
  return new ProblemError(response.status, problem, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

/** Thrown when a job ends `failed`: its `error`. */
export class JobFailedError extends Error {
  readonly jobId: string;
  constructor(jobId: string, error: string) {
    super(`job ${jobId} failed: ${error}`);
    this.name = "JobFailedError";
    this.jobId = jobId;
  }
}
