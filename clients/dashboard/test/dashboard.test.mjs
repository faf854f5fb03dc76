// The dashboard in headless Chromium (Debian's, driven by playwright-core) against the
// local stack (NA_STACK_URL, demo user NA_DEMO_NPUB), as
// functions/local-stack/tests/clients.rs starts it: the numbers shown are the API's, the
// granularity switches (a week of minutes through a job), a screenshot is saved
// (NA_SCREENSHOT), and a page on another origin calls the API as CORS allows
// (NA_OTHER_ORIGIN_PORT: http://127.0.0.1:<port> is allowed, http://localhost:<port> not).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { Analytics, pubkeyToHex } from "@nostr-analytics/client";
import { chromium } from "playwright-core";

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: this test runs against the local stack (functions/local-stack/tests/clients.rs starts it)`);
  return v;
}
const base = required("NA_STACK_URL");
const npub = required("NA_DEMO_NPUB");
const screenshot = required("NA_SCREENSHOT");
const otherPort = Number(required("NA_OTHER_ORIGIN_PORT"));
const client = new Analytics({ baseUrl: base });
const hex = pubkeyToHex(npub);
// A closed window, so the demo's live reactions do not move it between the page and us.
const to = Math.floor(Date.now() / 1000) - 30;
const from = to - 7 * 86_400;
const win = { from: String(from), to: String(to) };

let browser;
let page;
const problems = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
});
after(async () => browser?.close());

async function shownSeries(metric) {
  const chart = page.locator(`#charts .chart[data-metric="${metric}"]`);
  return { points: Number(await chart.getAttribute("data-points")), total: Number(await chart.getAttribute("data-total")) };
}

async function seriesFromApi(granularity, metric) {
  const s = await client.timeseries(hex, { ...win, granularity, format: "compact" }, { pollIntervalMs: 200 });
  const values = s.series.find((x) => x.metric === metric).values;
  return { points: s.t.length, total: values.reduce((a, v) => a + (v ?? 0), 0) };
}

describe("the dashboard", () => {
  test("shows the API's numbers for a user and window", async () => {
    await page.goto(`${base}/u/${npub}?from=${from}&to=${to}&granularity=day`);
    await page.locator("#summary .card[data-metric]").first().waitFor();
    const summary = await client.summary(hex, win);
    const shown = await page.locator("#summary .card[data-metric]").evaluateAll((cards) =>
      Object.fromEntries(cards.map((c) => [c.dataset.metric, c.dataset.value])),
    );
    assert.equal(Object.keys(shown).length, summary.metrics.length);
    for (const m of summary.metrics) assert.equal(shown[m.metric], String(m.value ?? ""), m.metric);
    assert.ok(summary.metrics.some((m) => (m.value ?? 0) > 0), "the demo week has data");
    assert.equal(await page.locator("#freshness [data-exact]").getAttribute("data-exact"), String(summary.completeness.exact));

    await page.locator('#charts[data-ready="true"][data-granularity="day"]').waitFor();
    for (const metric of ["reactions_received", "replies_received"]) {
      assert.deepEqual(await shownSeries(metric), await seriesFromApi("day", metric), metric);
    }
    const breakdown = await client.breakdown(hex, { ...win, metric: "reactions_received", dimension: "content", top: 10 });
    await page.locator("#breakdown tr[data-value]").first().waitFor();
    const rows = await page.locator("#breakdown tr[data-value]").evaluateAll((trs) => trs.map((r) => [r.dataset.value, Number(r.dataset.total)]));
    assert.deepEqual(rows, breakdown.rows.map((r) => [r.value ?? "", r.total ?? 0]));

    // Top notes as the API ranks them; the first one drilled into.
    const top = await client.topNotes(hex, { ...win, top: 10 });
    const first = page.locator("#top-notes tr.note").first();
    await first.waitFor();
    const listed = await page.locator("#top-notes tr.note").evaluateAll((trs) => trs.map((r) => [r.dataset.eventId, Number(r.dataset.value)]));
    assert.deepEqual(listed, top.notes.map((n) => [n.event_id, n.value]));
    await first.click();
    await page.locator(`#drilldown[data-event-id="${top.notes[0].event_id}"] .card[data-metric="reactions_received"]`).waitFor();
    const drilled = await page.locator('#drilldown .card[data-metric="reactions_received"]').getAttribute("data-value");
    assert.equal(Number(drilled), top.notes[0].value);
  });

  test("switches granularity, through a job for a week of minutes", async () => {
    for (const granularity of ["hour", "minute"]) {
      await page.locator(`button[data-granularity="${granularity}"]`).click();
      await page.locator(`#charts[data-ready="true"][data-granularity="${granularity}"]`).waitFor({ timeout: 60_000 });
      assert.match(page.url(), new RegExp(`granularity=${granularity}`));
      assert.deepEqual(await shownSeries("reactions_received"), await seriesFromApi(granularity, "reactions_received"), granularity);
    }
    await page.locator(`button[data-granularity="hour"]`).click();
    await page.locator('#charts[data-ready="true"][data-granularity="hour"]').waitFor();
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.deepEqual(problems, [], "no errors in the page (a CSP violation is one)");
  });

  test("a bad pubkey is shown as such", async () => {
    await page.goto(`${base}/u/npub1nope`);
    assert.match(await page.locator("#error").innerText(), /not a pubkey/);
  });
});

describe("another origin", () => {
  let server;
  before(async () => {
    server = createServer((_, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>other origin</title>");
    });
    await new Promise((resolve) => server.listen(otherPort, "127.0.0.1", resolve));
  });
  after(() => server?.close());

  // From the page, a request with a header that needs a preflight.
  const call = (url) =>
    page.evaluate(async (url) => {
      try {
        const r = await fetch(url, { headers: { "x-request-id": "from-another-origin" } });
        return { status: r.status, requestId: r.headers.get("x-request-id"), body: await r.json() };
      } catch (e) {
        return { refused: String(e) };
      }
    }, url);

  test("an allowed origin calls the API from a browser", async () => {
    await page.goto(`http://127.0.0.1:${otherPort}/`);
    const got = await call(`${base}/api/v2/analytics/users/${hex}/summary?from=${from}&to=${to}`);
    assert.equal(got.status, 200, JSON.stringify(got));
    assert.equal(got.requestId, "from-another-origin", "exposed to the page");
    assert.equal(got.body.pubkey, hex);
  });

  test("an origin not allowed is refused by the browser", async () => {
    await page.goto(`http://localhost:${otherPort}/`);
    const got = await call(`${base}/api/v2/analytics/users/${hex}/summary?from=${from}&to=${to}`);
    assert.match(got.refused ?? "", /Failed to fetch/, JSON.stringify(got));
  });
});
