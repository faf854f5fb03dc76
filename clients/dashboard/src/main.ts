// The dashboard: one pubkey's analytics over a window, through the TypeScript client.
// URL state: /u/{npub}?window=7d&granularity=hour (or from=&to=, Unix seconds).
import {
  Analytics,
  type Breakdown,
  type Catalog,
  type CompactTimeSeries,
  eventIdToNote,
  type JobProgress,
  type NoteDrilldown,
  ProblemError,
  pubkeyToHex,
  pubkeyToNpub,
  shortNpub,
  type Summary,
} from "@nostr-analytics/client";
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, Filler, LinearScale, LineController, LineElement, PointElement, Tooltip);
Chart.defaults.color = "#8a90a2";
Chart.defaults.borderColor = "#272b38";

const client = new Analytics({ baseUrl: window.location.origin });
const WINDOWS = ["24h", "7d", "30d", "90d", "365d"];
const GRANULARITIES = ["minute", "hour", "day", "month"] as const;
type Granularity = (typeof GRANULARITIES)[number];
/** The charts drawn, in order: what people ask about first. */
const CHARTED = [
  "reactions_received",
  "replies_received",
  "reposts_received",
  "zaps_received",
  "zap_msats_received",
  "notes_published",
  "followers_gained",
  "followers_lost",
  "unique_engagers",
];

interface View {
  pubkey: string;
  window?: string;
  from?: string;
  to?: string;
  granularity: Granularity;
}

const app = document.getElementById("app") as HTMLElement;
const charts = new Map<string, Chart>();

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function viewOfUrl(): View | null {
  const m = window.location.pathname.match(/^\/u\/([^/]+)\/?$/);
  if (!m?.[1]) return null;
  const q = new URLSearchParams(window.location.search);
  const granularity = (q.get("granularity") ?? "hour") as Granularity;
  const view: View = {
    pubkey: decodeURIComponent(m[1]),
    granularity: GRANULARITIES.includes(granularity) ? granularity : "hour",
  };
  if (q.get("from")) {
    view.from = q.get("from") ?? undefined;
    view.to = q.get("to") ?? undefined;
  } else {
    view.window = q.get("window") ?? "7d";
  }
  return view;
}

function urlOf(view: View): string {
  const q = new URLSearchParams();
  if (view.from) {
    q.set("from", view.from);
    if (view.to) q.set("to", view.to);
  } else q.set("window", view.window ?? "7d");
  q.set("granularity", view.granularity);
  return `/u/${pubkeyToNpub(view.pubkey)}?${q}`;
}

function go(view: View) {
  history.pushState(null, "", urlOf(view));
  void render();
}

function windowQuery(view: View) {
  return view.from ? { from: view.from, ...(view.to ? { to: view.to } : {}) } : { window: view.window as never };
}

const number = new Intl.NumberFormat("en");
function formatValue(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined) return "–";
  return unit === "msats" ? `${number.format(Math.floor(value / 1000))} sats` : number.format(value);
}

/** A metric's name for people: msats are shown as sats. */
function title(metric: string, unit: string): string {
  const name = unit === "msats" ? metric.replace("msats", "sats") : metric;
  return name.replaceAll("_", " ");
}

function exactness(m: { exact: boolean; relative_error?: number | null; error?: string | null }): HTMLElement {
  if (m.error) return el("span", { class: "badge failed", title: m.error }, "failed");
  if (m.exact) return el("span", { class: "badge exact", title: "counted exactly" }, "exact");
  const pct = m.relative_error ? ` ±${(m.relative_error * 100).toFixed(1)}%` : "";
  return el("span", { class: "badge estimate", title: "a HyperLogLog estimate" }, `≈${pct}`);
}

function problemText(e: unknown): string {
  if (e instanceof ProblemError) return `${e.status} ${e.problem.title}: ${e.problem.detail ?? ""}`;
  return e instanceof Error ? e.message : String(e);
}

async function render() {
  for (const c of charts.values()) c.destroy();
  charts.clear();
  const view = viewOfUrl();
  const input = document.getElementById("who-input") as HTMLInputElement;
  if (!view) {
    app.replaceChildren(
      el("p", { class: "hint" }, "Enter a pubkey (npub or hex) to see its notes, replies, reactions, reposts, zaps and followers over any window."),
    );
    return;
  }
  try {
    view.pubkey = pubkeyToHex(view.pubkey);
  } catch (e) {
    app.replaceChildren(el("p", { class: "error", id: "error" }, problemText(e)));
    return;
  }
  input.value = pubkeyToNpub(view.pubkey);
  document.title = `${shortNpub(view.pubkey)} · nostr-analytics`;

  const controls = el("div", { class: "controls" });
  const windows = el("div", { class: "group", role: "group", "aria-label": "window" });
  for (const w of WINDOWS) {
    const b = el("button", { type: "button", "data-window": w, "aria-pressed": String(!view.from && view.window === w) }, w);
    b.addEventListener("click", () => go({ pubkey: view.pubkey, window: w, granularity: view.granularity }));
    windows.append(b);
  }
  const grains = el("div", { class: "group", role: "group", "aria-label": "granularity" });
  for (const g of GRANULARITIES) {
    const b = el("button", { type: "button", "data-granularity": g, "aria-pressed": String(view.granularity === g) }, g);
    b.addEventListener("click", () => go({ ...view, granularity: g }));
    grains.append(b);
  }
  controls.append(windows, grains);
  if (view.from) {
    const at = (t: string) => new Date(/^\d+$/.test(t) ? Number(t) * 1000 : t).toLocaleString();
    controls.append(el("span", { class: "muted" }, `custom window ${at(view.from)} → ${view.to ? at(view.to) : "now"}`));
  }

  const freshness = el("div", { class: "freshness", id: "freshness" }, "loading…");
  const cards = el("div", { class: "cards", id: "summary" });
  const chartGrid = el("div", { class: "charts", id: "charts" });
  const progress = el("div", { class: "progress", id: "series-progress" });
  const breakdown = el("div", { class: "panel", id: "breakdown" }, "loading…");
  const notes = el("div", { class: "panel", id: "top-notes" }, "loading…");
  const drilldown = el("div", { class: "panel", id: "drilldown" }, el("p", { class: "muted" }, "Pick a note to see what others did to it."));
  app.replaceChildren(
    el("h1", {}, shortNpub(view.pubkey)),
    el("code", {}, pubkeyToNpub(view.pubkey)),
    controls,
    freshness,
    el("h2", {}, "Summary"),
    cards,
    el("h2", {}, "Over time"),
    progress,
    chartGrid,
    el(
      "div",
      { class: "split" },
      el("div", {}, el("h2", {}, "Reactions by content"), breakdown),
      el("div", {}, el("h2", {}, "Top notes by reactions"), notes),
    ),
    el("h2", {}, "Note drilldown"),
    drilldown,
  );

  const win = windowQuery(view);
  const [catalog, summary] = await Promise.all([
    client.metrics().catch(() => null as Catalog | null),
    client.summary(view.pubkey, win).catch((e: unknown) => e as Error),
  ]);
  if (summary instanceof Error) {
    freshness.replaceWith(el("p", { class: "error", id: "error" }, problemText(summary)));
    cards.remove();
    return;
  }
  showFreshness(freshness, summary);
  showSummary(cards, summary, catalog);
  void showSeries(chartGrid, progress, view, win);
  void showBreakdown(breakdown, view, win);
  void showTopNotes(notes, drilldown, view, win);
}

function showFreshness(node: HTMLElement, a: Summary) {
  const items: (Node | string)[] = [];
  const item = (label: string, value: string, attrs: Record<string, string> = {}) =>
    items.push(el("span", attrs, `${label} `, el("b", {}, value)));
  item("as of", new Date(a.as_of).toLocaleString(), { "data-as-of": a.as_of });
  item("window", `${new Date(a.window.from).toLocaleString()} → ${new Date(a.window.to).toLocaleString()}`);
  for (const w of a.watermarks) item(`${w.plugin} compacted`, new Date(w.compacted_at).toLocaleTimeString());
  item("backfill", a.completeness.backfill);
  item("every value", a.completeness.exact ? "exact" : "not all exact", { "data-exact": String(a.completeness.exact) });
  if (a.completeness.missing_before) item("no data before", new Date(a.completeness.missing_before).toLocaleString());
  node.replaceChildren(...items);
}

function showSummary(node: HTMLElement, s: Summary, catalog: Catalog | null) {
  const described = new Map(catalog?.metrics.map((m) => [m.id, m.description]) ?? []);
  node.replaceChildren(
    ...s.metrics.map((m) =>
      el(
        "div",
        { class: "card", "data-metric": m.metric, "data-value": String(m.value ?? ""), title: described.get(m.id) ?? m.id },
        el("div", { class: "name" }, title(m.metric, m.unit)),
        el("div", { class: "value" }, formatValue(m.value, m.unit)),
        exactness(m),
      ),
    ),
  );
}

function label(t: number, g: Granularity): string {
  const d = new Date(t * 1000);
  if (g === "month") return d.toISOString().slice(0, 7);
  if (g === "day") return d.toISOString().slice(0, 10);
  return d.toISOString().slice(5, 16).replace("T", " ");
}

async function showSeries(grid: HTMLElement, progress: HTMLElement, view: View, win: object) {
  const onProgress = (p: JobProgress) => {
    progress.textContent = p.pages
      ? `reading the answer: page ${p.pagesRead} of ${p.pages}`
      : `a job is computing this series (${p.state}, attempt ${p.attempts})`;
  };
  let series: CompactTimeSeries;
  try {
    progress.textContent = "loading…";
    series = (await client.timeseries(
      view.pubkey,
      { ...win, granularity: view.granularity, format: "compact" },
      { onProgress },
    )) as CompactTimeSeries;
  } catch (e) {
    progress.replaceChildren(el("p", { class: "error", id: "series-error" }, problemText(e)));
    return;
  }
  progress.textContent = "";
  const labels = series.t.map((t) => label(t, view.granularity));
  for (const name of CHARTED) {
    const s = series.series.find((x) => x.metric === name);
    if (!s) continue;
    const values = s.values.map((v) => (v === null ? null : s.unit === "msats" ? Math.floor(v / 1000) : v));
    const total = values.reduce<number>((a, v) => a + (v ?? 0), 0);
    const canvas = el("canvas", {});
    const card = el(
      "div",
      { class: "chart", "data-metric": name, "data-points": String(values.length), "data-total": String(total) },
      el("div", { class: "title" }, el("span", {}, title(name, s.unit)), el("span", { class: "muted" }, s.error ?? `${labels.length} ${view.granularity}s`)),
      canvas,
    );
    grid.append(card);
    charts.set(
      name,
      new Chart(canvas, {
        type: values.length > 60 ? "line" : "bar",
        data: {
          labels,
          datasets: [
            {
              data: values,
              borderColor: "#a78bfa",
              backgroundColor: "rgba(167,139,250,.35)",
              fill: true,
              pointRadius: 0,
              borderWidth: 1.5,
              tension: 0.2,
            },
          ],
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: "index", intersect: false },
          scales: { x: { ticks: { maxTicksLimit: 6, maxRotation: 0 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      }),
    );
  }
  grid.setAttribute("data-granularity", view.granularity);
  grid.setAttribute("data-ready", "true");
}

async function showBreakdown(node: HTMLElement, view: View, win: object) {
  let b: Breakdown;
  try {
    b = await client.breakdown(view.pubkey, { ...win, metric: "reactions_received", dimension: "content", top: 10 });
  } catch (e) {
    node.replaceChildren(el("p", { class: "error" }, problemText(e)));
    return;
  }
  const canvas = el("canvas", {});
  const rows = b.rows.map((r) =>
    el("tr", { "data-value": r.value ?? "", "data-total": String(r.total ?? "") }, el("td", {}, r.value ?? "(none)"), el("td", { class: "num" }, number.format(r.total ?? 0))),
  );
  node.replaceChildren(
    el("div", { class: "bars" }, canvas),
    el("table", {}, el("tbody", {}, ...rows)),
    el("p", { class: "muted" }, b.others ? `and ${b.others} other values` : ""),
  );
  charts.set(
    "breakdown",
    new Chart(canvas, {
      type: "bar",
      data: { labels: b.rows.map((r) => r.value ?? "(none)"), datasets: [{ data: b.rows.map((r) => r.total ?? 0), backgroundColor: "#a78bfa" }] },
      options: { animation: false, indexAxis: "y", maintainAspectRatio: false, scales: { x: { beginAtZero: true } } },
    }),
  );
}

async function showTopNotes(node: HTMLElement, drilldown: HTMLElement, view: View, win: object) {
  try {
    const top = await client.topNotes(view.pubkey, { ...win, top: 10 });
    if (top.notes.length === 0) {
      node.replaceChildren(el("p", { class: "muted" }, "No reactions to any note in this window."));
      return;
    }
    const rows = top.notes.map((n) => {
      const row = el(
        "tr",
        { class: "note", "data-event-id": n.event_id, "data-value": String(n.value ?? ""), tabindex: "0" },
        el("td", {}, el("code", {}, `${eventIdToNote(n.event_id).slice(0, 16)}…`)),
        el("td", { class: "muted" }, n.created_at ? new Date(n.created_at).toLocaleDateString() : "not stored"),
        el("td", { class: "num" }, number.format(n.value ?? 0)),
      );
      const open = () => {
        node.querySelectorAll("tr.note").forEach((r) => r.setAttribute("aria-selected", "false"));
        row.setAttribute("aria-selected", "true");
        void showDrilldown(drilldown, n.event_id, win);
      };
      row.addEventListener("click", open);
      row.addEventListener("keydown", (e) => e.key === "Enter" && open());
      return row;
    });
    node.replaceChildren(
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "note"), el("th", {}, "published"), el("th", { class: "num" }, "reactions"))), el("tbody", {}, ...rows)),
      el("p", { class: "muted" }, top.others ? `and ${top.others} more notes with reactions` : ""),
    );
  } catch (e) {
    node.replaceChildren(el("p", { class: "error" }, problemText(e)));
  }
}

async function showDrilldown(node: HTMLElement, eventId: string, win: object) {
  node.replaceChildren("loading…");
  let d: NoteDrilldown;
  try {
    d = (await client.note(eventId, win)) as NoteDrilldown;
  } catch (e) {
    node.replaceChildren(el("p", { class: "error" }, problemText(e)));
    return;
  }
  node.setAttribute("data-event-id", d.event_id);
  node.replaceChildren(
    el("p", {}, el("code", {}, eventIdToNote(d.event_id)), el("span", { class: "muted" }, ` · kind ${d.kind} · published ${new Date(d.created_at).toLocaleString()}`)),
    el(
      "div",
      { class: "cards" },
      ...d.metrics.map((m) =>
        el(
          "div",
          { class: "card", "data-metric": m.metric, "data-value": String(m.value ?? "") },
          el("div", { class: "name" }, title(m.metric, m.unit)),
          el("div", { class: "value" }, formatValue(m.value, m.unit)),
          exactness(m),
        ),
      ),
    ),
  );
}

document.getElementById("who")?.addEventListener("submit", (e) => {
  e.preventDefault();
  const value = (document.getElementById("who-input") as HTMLInputElement).value;
  try {
    const view = viewOfUrl();
    go({ pubkey: pubkeyToHex(value), window: view?.from ? "7d" : (view?.window ?? "7d"), granularity: view?.granularity ?? "hour" });
  } catch (e) {
    app.replaceChildren(el("p", { class: "error", id: "error" }, problemText(e)));
  }
});
window.addEventListener("popstate", () => void render());
void render();
