// /dashboard/streams/{id}: faces with their 7 probabilities, the rolling-window distribution
// (10 s, 1 min, 5 min, session), the changes and alerts feeds, sessions. History from the API,
// then the live connection; windows and sessions are re-read every 5 s (the API computes them).

import { api, enc, keys } from "./api.js";
import { Live } from "./live.js";
import { DistributionChart } from "./charts.js";
import { alertItem, changeItem, loadFeeds, sessionItem } from "./feeds.js";
import { Model, Redraw } from "./model.js";
import {
  EMOTIONS, badge, duration, emotionTag, h, legend, link, notice, pct, showFailure,
} from "./ui.js";

const WINDOWS = [["10 s", 10], ["1 min", 60], ["5 min", 300]];
const WINDOWS_EVERY_MS = 5000;
const SHOWN = 50;

function faceView(track, ev) {
  const sm = ev.smoothed;
  const probs = sm ? sm.probabilities : ev.emotion.probabilities;
  const el = h("div", null, { cls: "face", testid: "face", children: [
    h("h3", null, { children: [h("span", `${track}: `),
      emotionTag(sm ? sm.label : ev.emotion.label, sm ? ` for ${duration(sm.stable_for_s)}` : " (raw)")] }),
    h("p", `${sm ? "smoothed" : "raw"} probabilities; this frame: ${ev.emotion.label} ${pct(ev.emotion.confidence)}`,
      { cls: "muted" }),
  ] });
  for (const e of EMOTIONS) {
    const fill = h("div", null, { cls: `fill e-${e}` });
    fill.style.width = pct(probs[e]);  // CSSOM, which the CSP allows (no style attribute in markup)
    el.append(h("div", null, { cls: "prob", testid: "prob", children: [
      h("span", e), h("div", null, { cls: "track", attrs: { "aria-hidden": "true" }, children: [fill] }),
      h("span", pct(probs[e]), { cls: "num" })] }));
  }
  return el;
}

function windowTable(names, windows) {
  const rows = names.map((name, i) => {
    const w = windows[i];
    const top = w && w.events ? Object.entries(w.mean_probabilities).sort((a, b) => b[1] - a[1]).slice(0, 3) : [];
    return h("tr", null, { children: [
      h("th", name, { attrs: { scope: "row" } }),
      h("td", w ? `${w.events} events` : "–"),
      h("td", null, { children: [w && w.dominant ? emotionTag(w.dominant) : h("span", "no events")] }),
      h("td", top.map(([e, p]) => `${e} ${pct(p)}`).join(" · ")),
    ] });
  });
  return h("table", null, { children: [h("caption", "mean probability per window", { cls: "muted" }), ...rows] });
}

function panel(title, body, extra = {}) {
  return h("section", null, { cls: "panel", ...extra, children: [h("h2", title), body] });
}

async function loadWindows(id) {
  const q = WINDOWS.map(([, s]) => `window_s=${s}`).join("&");
  const [w, s] = await Promise.all([
    api.get(`/v1/streams/${enc(id)}/windows?${q}`),
    api.get(`/v1/streams/${enc(id)}/sessions?limit=1`),
  ]);
  const cur = s.sessions[0];
  const session = cur ? { window_s: 0, events: cur.events, counts: cur.summary.counts,
    mean_probabilities: cur.summary.mean_probabilities, dominant: cur.summary.dominant } : null;
  return [...w.windows, session];
}

export async function streamView(root, { setStatus, stats }, id) {
  const model = new Model();
  const s = model.stream(id);
  let windows, feeds;
  try {
    const [events] = await Promise.all([api.get(`/v1/streams/${enc(id)}/events?limit=300`)]);
    for (const ev of events.events.reverse()) model.apply("event", ev);
    [windows, feeds] = await Promise.all([loadWindows(id), loadFeeds(id)]);
  } catch (err) {
    if (err.status === 404) {
      setStatus("connecting", "unknown stream");
      root.replaceChildren(h("h1", id), notice(`No stream ${id} (it may have expired).`, "error"),
        link("All streams", "/dashboard"));
      return { stop() {} };
    }
    showFailure(root, err, setStatus);
    return { stop() {} };
  }
  for (const c of feeds.changes) model.apply("change", c);
  for (const a of feeds.alerts) model.apply("alert", a);
  const names = [...WINDOWS.map(([n]) => n), "session"];
  const badges = h("p", null, { cls: "badges" });
  const faces = h("div", null, { attrs: { "aria-live": "off" } });
  const chartBox = h("div", null, { cls: "chart" });
  const table = h("div");
  const changes = h("ul", null, { cls: "feed", attrs: { "aria-label": "stable-emotion changes" } });
  const alerts = h("ul", null, { cls: "feed", attrs: { "aria-label": "alerts" } });
  const sessions = h("ul", null, { cls: "feed", attrs: { "aria-label": "sessions" } });
  root.replaceChildren(
    h("p", null, { children: [link("← all streams", "/dashboard")] }),
    h("h1", id), badges, legend(),
    h("div", null, { cls: "stream-grid", children: [
      panel("Faces", faces),
      panel("Rolling windows", h("div", null, { testid: "window-distribution", children: [chartBox, table] })),
      panel("Stable-emotion changes", changes),
      panel("Alerts", alerts),
      panel("Sessions", sessions),
    ] }));
  const chart = new DistributionChart(chartBox, names);
  const drawWindows = () => { chart.update(windows); table.replaceChildren(windowTable(names, windows)); };
  drawWindows();
  sessions.replaceChildren(...feeds.sessions.map((x) => sessionItem(id, x)));
  const draw = () => {
    stats.redraws += 1;
    const now = Date.now();
    badges.replaceChildren(badge(`${s.fps().toFixed(1)} frames/s`, "fps"),
      badge(s.latencyMs === null ? "latency –" : `latency ${s.latencyMs} ms`, "latency"),
      s.stale(now) ? badge("stale", "stale") : badge("live", "ok"), badge(`${s.total} events seen`, "count"));
    const fs = [...s.faces].map(([t, ev]) => faceView(t, ev));
    faces.replaceChildren(...(fs.length ? fs : [h("p", "no face right now", { cls: "muted" })]));
    changes.replaceChildren(...s.changes.slice(0, SHOWN).map(changeItem));
    if (!s.changes.length) changes.append(h("li", "no change yet", { cls: "muted" }));
    alerts.replaceChildren(...s.alerts.slice(0, SHOWN).map(alertItem));
    if (!s.alerts.length) alerts.append(h("li", "no alert (rules: see Rules)", { cls: "muted" }));
  };
  const redraw = new Redraw(draw, 10);
  draw();
  let alertsTimer = null;
  const refreshAlerts = () => {  // a live alert has no delivery yet: read it from the API soon
    clearTimeout(alertsTimer);
    alertsTimer = setTimeout(async () => {
      try {
        const doc = await api.get(`/v1/streams/${enc(id)}/alerts?limit=${SHOWN}`);
        s.alerts = doc.alerts; redraw.request();
      } catch { /* the next alert retries */ }
    }, 3000);
  };
  const live = new Live({
    streams: [id], key: () => keys.read, onStatus: setStatus,
    onMessage: (type, doc) => {
      stats.messages += 1;
      if (model.apply(type, doc)) redraw.request();
      if (type === "alert") refreshAlerts();
    },
  });
  live.connect();
  const tick = setInterval(() => redraw.request(), 1000);
  const poll = setInterval(async () => {
    try {
      windows = await loadWindows(id); drawWindows();
      // An open timeline, or a focused button, stays as it is.
      if (!sessions.querySelector("[aria-expanded=true]") && !sessions.contains(document.activeElement)) {
        const doc = await api.get(`/v1/streams/${enc(id)}/sessions?limit=20`);
        sessions.replaceChildren(...doc.sessions.map((x) => sessionItem(id, x)));
      }
    } catch { /* shown by the live status */ }
  }, WINDOWS_EVERY_MS);
  return { stop() { clearInterval(tick); clearInterval(poll); clearTimeout(alertsTimer); live.close(); chart.destroy(); } };
}
