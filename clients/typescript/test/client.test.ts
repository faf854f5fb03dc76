// The client against the real local stack (NA_STACK_URL, its demo user NA_DEMO_NPUB), as
// functions/local-stack/tests/clients.rs starts it: with NA_QUERY_MAX_BODY_BYTES small, so
// a job's answer comes in several pages.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Analytics,
  type CompactTimeSeries,
  eventIdToHex,
  eventIdToNote,
  type JobProgress,
  joinPages,
  ProblemError,
  pubkeyToHex,
  pubkeyToNpub,
  type Summary,
  toV1,
  V1_METRICS,
} from "../src/index.js";

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: these tests run against the local stack (functions/local-stack/tests/clients.rs starts it)`);
  return v;
}
const base = required("NA_STACK_URL");
const npub = required("NA_DEMO_NPUB");
const client = new Analytics({ baseUrl: base });
// A window closed in the past, so the demo's live reactions do not move it between reads.
const to = Math.floor(Date.now() / 1000) - 30;
const from = to - 7 * 86_400;
// Instants go as Unix seconds, written as the query string writes them.
const win = { from: String(from), to: String(to) };

describe("ids", () => {
  // NIP-19's own example.
  const hex = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
  const example = "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6";
  test("npub and hex, both ways", () => {
    assert.equal(pubkeyToHex(example), hex);
    assert.equal(pubkeyToHex(hex.toUpperCase()), hex);
    assert.equal(pubkeyToNpub(hex), example);
    assert.equal(eventIdToHex(eventIdToNote(hex)), hex);
  });
  test("what is not a pubkey is refused, saying what it is", () => {
    assert.throws(() => pubkeyToHex("npub1nope"), /not a pubkey/);
    assert.throws(() => pubkeyToHex(eventIdToNote(hex)), /a note, not a pubkey/);
    assert.throws(() => eventIdToHex("abc"), /not a event id/);
  });
});

describe("answers", () => {
  test("a summary is what the route answers, typed", async () => {
    const summary = await client.summary(npub, win);
    const raw = await (
      await fetch(`${base}/api/v2/analytics/users/${pubkeyToHex(npub)}/summary?from=${from}&to=${to}`)
    ).json();
    // Compaction may run between the two reads: the values, not where they were read from.
    const values = (metrics: Summary["metrics"]) => metrics.map((m) => [m.id, m.value, m.exact]);
    assert.deepEqual(values(summary.metrics), values(raw.metrics));
    assert.equal(summary.pubkey, pubkeyToHex(npub));
    assert.ok(summary.metrics.some((m) => (m.value ?? 0) > 0), "the demo week has data");
  });

  test("the v1 adapter reads the summary's values", async () => {
    const summary = await client.summary(npub, { ...win, metrics: V1_METRICS.join(",") });
    const v1 = toV1(summary);
    const value = (m: string) => summary.metrics.find((x) => x.metric === m)?.value;
    assert.equal(v1.pubkey, summary.pubkey);
    assert.equal(v1.days, 7);
    assert.equal(v1.until - v1.since, 7 * 86_400);
    // The server's /api/v1 on the v2 path answers the same fields for the same window.
    await fetch(`${base}/api/v2/admin/flags/analytics-v1-summary`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode: "v2", percent: 100 }),
    });
    const served = await fetch(`${base}/api/v1/analytics/${summary.pubkey}?since=${v1.since}&until=${v1.until}`);
    assert.equal(served.headers.get("x-analytics-path"), "v2");
    assert.deepEqual(await served.json(), v1);
    assert.equal(v1.reactions, value("reactions_received"));
    assert.equal(v1.notes, value("notes_published"));
    assert.equal(v1.followers, value("follower_count"));
    assert.equal(v1.zap_sats, Math.floor((value("zap_msats_received") ?? 0) / 1000));
    assert.ok((v1.reactions ?? 0) > 0);
    assert.throws(() => toV1({ ...summary, metrics: [] } as Summary), /metrics=notes_published/);
  });

  test("top notes, each one's value its drilldown's", async () => {
    const top = await client.topNotes(npub, { ...win, top: 3 });
    assert.equal(top.metric, "reactions_received");
    assert.ok(top.notes.length > 0 && top.notes.length <= 3);
    const first = top.notes[0];
    assert.ok(first !== undefined);
    const drill = await client.note(eventIdToNote(first.event_id), { ...win, metrics: "reactions_received" });
    assert.equal(drill.metrics[0]?.value, first.value);
    const values = top.notes.map((n) => n.value ?? 0);
    assert.deepEqual(values, [...values].sort((a, b) => b - a), "largest first");
  });

  test("a bad request is a ProblemError carrying the problem", async () => {
    await assert.rejects(client.summary(npub, { window: "8d" as never }), (e: unknown) => {
      assert.ok(e instanceof ProblemError);
      assert.equal(e.status, 400);
      assert.equal(e.problem.status, 400);
      assert.match(e.problem.detail ?? "", /window/);
      return true;
    });
    await assert.rejects(client.summary(npub, { ...win, metrics: "no_such_metric" }), /no_such_metric/);
  });
});

describe("jobs", () => {
  test("a week of minutes is a job, followed with progress and read in pages", async () => {
    const seen: JobProgress[] = [];
    const series = (await client.timeseries(
      npub,
      { ...win, granularity: "minute", format: "compact" },
      { onProgress: (p) => seen.push(p), pollIntervalMs: 200 },
    )) as CompactTimeSeries;
    assert.equal(series.t.length, series.window.points);
    // Every minute the window touches: one more when it does not start on a minute.
    assert.equal(series.t.length, 7 * 1440 + (from % 60 === 0 ? 0 : 1));
    const last = seen.at(-1);
    assert.ok(last?.pages !== undefined && last.pages > 1, `read in pages: ${JSON.stringify(last)}`);
    assert.equal(last.pagesRead, last.pages);
    assert.ok(seen.some((p) => p.state === "succeeded"));

    // Its minutes add up to the summary of the same window.
    const summary = await client.summary(npub, win);
    for (const name of ["reactions_received", "notes_published", "zap_msats_received"]) {
      const s = series.series.find((x) => x.metric === name);
      const total = s?.values.reduce<number>((a, v) => a + (v ?? 0), 0);
      assert.equal(total, summary.metrics.find((m) => m.metric === name)?.value, name);
    }
  });

  test("an explicit job answers what the route answers", async () => {
    const answer = (await client.runJob({ route: "summary", pubkey: pubkeyToHex(npub), ...win })) as Summary;
    const direct = await client.summary(npub, win);
    // The same values (how much came from the live delta depends on compaction's progress).
    const values = (s: Summary) => s.metrics.map((m) => [m.id, m.value, m.exact]);
    assert.deepEqual(values(answer), values(direct));
  });

  test("a job followed with an aborted signal stops", async () => {
    const stop = new AbortController();
    stop.abort(new Error("stopped by the caller"));
    await assert.rejects(
      client.timeseries(npub, { ...win, granularity: "minute", format: "compact" }, { signal: stop.signal }),
      /stopped by the caller|aborted/,
    );
  });
});

describe("pages", () => {
  test("joined pages re-index their estimates", () => {
    const page = (t: number[], values: number[], inexact: number[]) =>
      ({ t, series: [{ values, inexact, relative_errors: inexact.map(() => 0.1) }] }) as unknown as CompactTimeSeries;
    const whole = joinPages([page([0, 60], [1, 2], [1]), page([120, 180], [3, 4], [0, 1])]) as CompactTimeSeries;
    assert.deepEqual(whole.t, [0, 60, 120, 180]);
    assert.deepEqual(whole.series[0]?.values, [1, 2, 3, 4]);
    assert.deepEqual(whole.series[0]?.inexact, [1, 2, 3]);
    assert.throws(() => joinPages([]), /no pages/);
  });
});
