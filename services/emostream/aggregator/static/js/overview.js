// /dashboard: a card per stream, those needing attention first (an active alert, a negative
// emotion held long), each with its faces, the last minute as a strip, frames/s, latency and
// a stale badge. History from the API first, then the live connection.

import { api, enc, keys, pages } from "./api.js";
import { cameraPanel } from "./cameras.js";
import { Live } from "./live.js";
import { Model, Redraw, TIMELINE_S } from "./model.js";
import {
  badge, duration, emotionTag, h, legend, link, showFailure, streamHref, strip,
} from "./ui.js";

const HISTORY_EVENTS = 300;

function emptyState() {
  const code = (t) => h("code", t);
  const p = (...parts) => h("li", null, { children: parts.map((x) => typeof x === "string" ? document.createTextNode(x) : x) });
  return h("div", null, { cls: "notice", testid: "empty", children: [
    h("h2", "No streams yet"),
    h("p", "A stream appears here with its first classified face. To start one:"),
    h("ul", null, { cls: "help", children: [
      p("the demo, everything on this machine: ", code("emostream demo")),
      p("an ingest source (a file, a folder, a webcam, an RTSP URL): ",
        code("emostream ingest --source video.mp4 --stream-id lobby")),
      p("a browser camera: the capture page ", code("/capture"),
        " served by ingest's HTTP server (", code("EMOSTREAM_INGEST__HTTP__PORT"), ")"),
    ] }),
  ] });
}

// A card keeps its elements (and the link keeps keyboard focus); a redraw refills its parts.
class Card {
  constructor(id) {
    this.el = h("article", null, { cls: "card", testid: "stream-card" });
    this.el.dataset.stream = id;
    this.badges = h("span", null, { cls: "badges" });
    this.reasons = h("ul", null, { cls: "reasons", attrs: { "aria-label": "needs attention" } });
    this.faces = h("ul", null, { cls: "faces", attrs: { "aria-label": "faces" } });
    this.strip = h("div");
    this.foot = h("p", null, { cls: "muted" });
    this.el.append(h("header", null, { children: [link(id, streamHref(id)), this.badges] }),
      this.reasons, this.faces, this.strip, this.foot);
  }

  update(s, now) {
    const reasons = s.attention(now);
    this.el.classList.toggle("attention", reasons.length > 0);
    this.badges.replaceChildren(
      badge(`${s.fps().toFixed(1)} frames/s`, "fps"),
      badge(s.latencyMs === null ? "latency –" : `latency ${s.latencyMs} ms`, "latency"),
      s.stale(now) ? badge(`stale: no events for ${duration((now - (s.lastMs ?? now)) / 1000)}`, "stale")
        : badge("live", "ok"));
    this.reasons.replaceChildren(...reasons.map((r) => h("li", r.text)));
    this.reasons.classList.toggle("hidden", !reasons.length);
    const faces = [];
    for (const [track, ev] of s.faces) {
      const sm = ev.smoothed;
      faces.push(h("li", null, { testid: "face", children: [
        h("span", track, { cls: "muted" }),
        emotionTag(sm ? sm.label : ev.emotion.label, sm ? ` for ${duration(sm.stable_for_s)}` : " (raw)"),
      ] }));
    }
    if (!faces.length) faces.push(h("li", "no face right now", { cls: "muted" }));
    this.faces.replaceChildren(...faces);
    this.strip.replaceChildren(strip(s.timeline(now), `${s.id}: one cell per second, last ${TIMELINE_S} s`));
    this.foot.textContent = `last ${TIMELINE_S} s · ${s.total} events seen`;
  }
}

async function loadHistory(model, id) {
  const [events, alerts] = await Promise.all([
    api.get(`/v1/streams/${enc(id)}/events?limit=${HISTORY_EVENTS}`),
    api.get(`/v1/streams/${enc(id)}/alerts?limit=20`),
  ]);
  for (const ev of events.events.reverse()) model.apply("event", ev);
  for (const a of alerts.alerts) model.apply("alert", a);
}

export async function overview(root, { setStatus, stats }) {
  const model = new Model();
  const cards = h("div", null, { cls: "cards" });
  const cameras = cameraPanel();
  root.replaceChildren(h("h1", "Streams"), cameras.el, legend(), cards);
  let streams;
  try {
    streams = await pages("/v1/streams?limit=100", "streams", 200, "cursor");
    await Promise.all(streams.map((s) => loadHistory(model, s.stream_id).catch((err) => {
      if (err.refused) throw err;  // a stream that just expired is not an error
    })));
  } catch (err) {
    cameras.stop();
    showFailure(root, err, setStatus);
    return { stop() {} };
  }
  for (const s of streams) model.stream(s.stream_id);
  const views = new Map();
  const draw = () => {
    stats.redraws += 1;
    const now = Date.now();
    const list = model.ordered(now);
    if (!list.length) { cards.replaceChildren(emptyState()); return; }
    const els = list.map((s) => {
      if (!views.has(s.id)) views.set(s.id, new Card(s.id));
      const v = views.get(s.id);
      v.update(s, now);
      return v.el;
    });
    const same = els.length === cards.children.length && els.every((el, i) => cards.children[i] === el);
    if (!same) cards.replaceChildren(...els);  // only when the order changed
  };
  const redraw = new Redraw(draw, 10);
  draw();
  const live = new Live({
    key: () => keys.read,
    onMessage: (type, doc) => { stats.messages += 1; if (model.apply(type, doc)) redraw.request(); },
    onStatus: setStatus,
  });
  live.connect();
  const tick = setInterval(() => redraw.request(), 1000);  // ages, stale badges
  return { stop() { clearInterval(tick); live.close(); cameras.stop(); } };
}

