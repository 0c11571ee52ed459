// What the pages know, without any DOM: per-stream faces, timeline, frames/s, latency, alerts,
// ordered by what needs attention. Every collection here is bounded (by time and by count), so
// memory stays flat however long the page is open. Node runs these in the unit tests.

import { NEGATIVE } from "./ui.js";

export const TIMELINE_S = 60;        // the recent timeline's span
export const FACE_TTL_S = 5;         // a face unseen this long (capture time) leaves the card
export const STALE_S = 10;           // no event for this long: the stream is shown stale
export const LONG_NEGATIVE_S = 30;   // a negative emotion held this long needs attention
export const ALERT_ACTIVE_S = 300;   // an alert this recent counts as active
const MAX_POINTS = 4000;             // per stream timeline (4 faces x 15 fps x 60 s fits)
const MAX_FEED = 200;                // changes and alerts kept per stream
const FPS_WINDOW_S = 5;

const ms = (iso) => Date.parse(iso);

/** Remembers the last ``max`` ids: history and live push overlap when the page connects. */
export class Dedupe {
  constructor(max = 5000) { this.max = max; this.ids = new Set(); }
  fresh(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

export class StreamModel {
  constructor(id) {
    this.id = id;
    this.faces = new Map();   // track id (or "face N") -> latest event
    this.points = [];         // {t, label}, oldest first
    this.frames = [];         // {t, seq}, the last few seconds
    this.latencyMs = null;
    this.lastMs = null;       // capture time of the newest event
    this.total = 0;
    this.changes = [];        // newest first
    this.alerts = [];         // newest first
  }

  addEvent(ev) {
    const t = ms(ev.captured_at);
    const key = ev.face.track_id || `face ${ev.face.index}`;
    const prev = this.faces.get(key);
    if (!prev || ms(prev.captured_at) <= t) this.faces.set(key, ev);
    this.points.push({ t, label: ev.smoothed ? ev.smoothed.label : ev.emotion.label });
    const lastFrame = this.frames[this.frames.length - 1];
    if (!lastFrame || lastFrame.seq !== ev.frame_seq) this.frames.push({ t, seq: ev.frame_seq });
    if (ev.latency_ms !== null && ev.latency_ms !== undefined) this.latencyMs = ev.latency_ms;
    this.lastMs = Math.max(this.lastMs ?? t, t);
    this.total += 1;
    this.prune();
  }

  prune() {
    const newest = this.lastMs ?? 0;
    const cut = newest - TIMELINE_S * 1000;
    let i = 0;
    while (i < this.points.length && (this.points[i].t < cut || this.points.length - i > MAX_POINTS)) i++;
    if (i) this.points.splice(0, i);
    const fcut = newest - FPS_WINDOW_S * 1000;
    let j = 0;
    while (j < this.frames.length && (this.frames[j].t < fcut || this.frames.length - j > 1000)) j++;
    if (j) this.frames.splice(0, j);
    for (const [k, ev] of this.faces) {
      if (newest - ms(ev.captured_at) > FACE_TTL_S * 1000) this.faces.delete(k);
    }
  }

  addFeed(kind, doc) {
    const list = kind === "change" ? this.changes : this.alerts;
    const id = kind === "change" ? doc.event_id : doc.alert_id;
    if (list.some((d) => (kind === "change" ? d.event_id : d.alert_id) === id)) return false;
    list.unshift(doc);
    const at = (d) => ms(kind === "change" ? d.captured_at : d.fired_at);
    list.sort((a, b) => at(b) - at(a));
    if (list.length > MAX_FEED) list.length = MAX_FEED;
    return true;
  }

  fps() {
    if (this.frames.length < 2) return 0;
    const span = (this.frames[this.frames.length - 1].t - this.frames[0].t) / 1000;
    return span > 0 ? (this.frames.length - 1) / span : 0;
  }

  stale(nowMs) { return this.lastMs === null || nowMs - this.lastMs > STALE_S * 1000; }

  /** One label per second over the last ``TIMELINE_S``: the most frequent (null: no event). */
  timeline(nowMs, span = TIMELINE_S) {
    const end = Math.floor((this.stale(nowMs) ? this.lastMs ?? nowMs : nowMs) / 1000);
    const counts = Array.from({ length: span }, () => ({}));
    for (const p of this.points) {
      const slot = span - 1 - (end - Math.floor(p.t / 1000));
      if (slot >= 0 && slot < span) counts[slot][p.label] = (counts[slot][p.label] || 0) + 1;
    }
    return counts.map((c) => {
      const best = Object.entries(c).sort((a, b) => b[1] - a[1])[0];
      return best ? best[0] : null;
    });
  }

  /** Why the stream needs attention (empty: it does not), most urgent first. */
  attention(nowMs) {
    const reasons = [];
    const active = this.alerts.filter((a) => nowMs - ms(a.fired_at) < ALERT_ACTIVE_S * 1000);
    if (active.length) reasons.push({ score: 2, text: `${active.length} active alert(s)` });
    for (const [track, ev] of this.faces) {
      const s = ev.smoothed;
      if (s && NEGATIVE.has(s.label) && s.stable_for_s >= LONG_NEGATIVE_S) {
        reasons.push({ score: 1 + Math.min(s.stable_for_s / 3600, 0.9),
                       text: `${track}: ${s.label} for ${Math.round(s.stable_for_s)} s` });
      }
    }
    return reasons.sort((a, b) => b.score - a.score);
  }
}

export class Model {
  constructor() { this.streams = new Map(); this.dedupe = new Dedupe(); }

  stream(id) {
    if (!this.streams.has(id)) this.streams.set(id, new StreamModel(id));
    return this.streams.get(id);
  }

  /** A typed live message or a history item; true when it changed what is shown. */
  apply(type, doc) {
    if (type === "event") {
      if (!this.dedupe.fresh(doc.event_id)) return false;
      this.stream(doc.stream_id).addEvent(doc);
      return true;
    }
    if (type === "change" || type === "alert") return this.stream(doc.stream_id).addFeed(type, doc);
    return false;
  }

  /** Streams, those needing attention first, then the most recently active. */
  ordered(nowMs) {
    const score = (s) => (s.attention(nowMs)[0] || { score: 0 }).score;
    return [...this.streams.values()].sort(
      (a, b) => score(b) - score(a) || (b.lastMs ?? 0) - (a.lastMs ?? 0) || a.id.localeCompare(b.id));
  }
}

/** Runs ``draw`` at most ``maxPerS`` times a second however often ``request`` is called. */
export class Redraw {
  constructor(draw, maxPerS = 10, timers = globalThis) {
    this.draw = draw; this.gapMs = 1000 / maxPerS; this.timers = timers;
    this.last = -Infinity; this.pending = false; this.count = 0;
  }
  request() {
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, this.last + this.gapMs - Date.now());
    this.timers.setTimeout(() => {
      this.pending = false; this.last = Date.now(); this.count += 1; this.draw();
    }, wait);
  }
}
