// The stream view's lists: stable-emotion changes, alerts (with webhook delivery), sessions
// (each opening its own timeline, rebuilt from the changes feed).

import { api, enc, pages } from "./api.js";
import { clock, duration, emotionTag, h, pct, strip } from "./ui.js";

const TIMELINE_CELLS = 60;
const MAX_TRACKS_SHOWN = 6;

export function changeItem(c) {
  const held = c.from_label && c.previous_held_s !== null && c.previous_held_s !== undefined
    ? ` after ${duration(c.previous_held_s)}` : "";
  return h("li", null, { testid: "change", children: [
    h("time", clock(c.captured_at), { cls: "muted" }),
    h("span", c.track_id),
    c.from_label ? emotionTag(c.from_label) : h("span", "(new track)", { cls: "muted" }),
    h("span", "→", { attrs: { "aria-label": "changed to" } }),
    emotionTag(c.to_label, ` ${pct(c.confidence)}`),
    held ? h("span", held, { cls: "muted" }) : null,
  ] });
}

function deliveryText(d) {
  if (!d) return "webhook: checking…";
  if (d.state === "none") return "no webhook";
  if (d.state === "pending") return "webhook pending";
  const code = d.status_code ? ` (HTTP ${d.status_code})` : "";
  return d.state === "delivered" ? `webhook delivered${code}` : `webhook failed after ${d.attempts} attempt(s)${code}`;
}

export function alertItem(a) {
  const s = a.summary;
  let what = "";
  if (a.kind === "probability_above" && s.score !== null && s.score !== undefined) {
    what = `${(s.emotions || []).join("+")} ${pct(s.score)} ≥ ${pct(s.threshold)}` +
      (s.above_for_s ? ` for ${duration(s.above_for_s)}` : "");
  } else if (a.kind === "stable_change" && s.to_label) {
    what = `${s.from_label || "(new)"} → ${s.to_label}`;
  }
  return h("li", null, { testid: "alert", children: [
    h("time", clock(a.fired_at), { cls: "muted" }),
    h("strong", a.rule_name),
    h("span", a.track_id),
    emotionTag(s.label),
    what ? h("span", what) : null,
    h("span", deliveryText(a.delivery), { cls: `badge ${a.delivery ? a.delivery.state : "pending"}` }),
  ] });
}

/** Per track, the stable label at each of ``TIMELINE_CELLS`` instants of [start, end]. */
export function sessionTimeline(changes, startMs, endMs) {
  const byTrack = new Map();
  for (const c of [...changes].sort((a, b) => Date.parse(a.captured_at) - Date.parse(b.captured_at))) {
    const t = Date.parse(c.captured_at);
    if (t > endMs) continue;
    if (!byTrack.has(c.track_id)) byTrack.set(c.track_id, []);
    byTrack.get(c.track_id).push({ t, label: c.to_label });
  }
  const step = Math.max(endMs - startMs, 1) / TIMELINE_CELLS;
  const out = [];
  for (const [track, list] of byTrack) {
    if (list[list.length - 1].t < startMs - 3600e3) continue;
    const cells = [];
    for (let i = 0; i < TIMELINE_CELLS; i++) {
      const t = startMs + (i + 0.5) * step;
      let label = null;
      for (const p of list) if (p.t <= t) label = p.label;
      cells.push(label);
    }
    if (cells.some((c) => c)) out.push({ track, cells });
  }
  return out.slice(0, MAX_TRACKS_SHOWN);
}

async function openTimeline(streamId, sess, box) {
  box.replaceChildren(h("p", "loading the session's timeline…", { cls: "muted" }));
  const changes = await pages(`/v1/streams/${enc(streamId)}/changes?limit=500`, "changes", 1000);
  const start = Date.parse(sess.started_at);
  const end = Date.parse(sess.ended_at || sess.last_event_at);
  const rows = sessionTimeline(changes, start, end);
  if (!rows.length) { box.replaceChildren(h("p", "no stable emotion recorded in this session", { cls: "muted" })); return; }
  box.replaceChildren(...rows.map((r) => h("div", null, { children: [
    h("span", `${r.track}`, { cls: "muted" }),
    strip(r.cells, `${r.track}: stable emotion from ${clock(sess.started_at)} to ${clock(sess.ended_at || sess.last_event_at)}`),
  ] })), h("p", `${clock(sess.started_at)} – ${clock(sess.ended_at || sess.last_event_at)}`, { cls: "muted" }));
}

export function sessionItem(streamId, sess) {
  const top = Object.entries(sess.summary.mean_probabilities).sort((a, b) => b[1] - a[1]).slice(0, 3);
  const box = h("div", null, { cls: "session-timeline" });
  const button = h("button", "Show timeline", { attrs: { type: "button", "aria-expanded": "false" } });
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
    button.textContent = open ? "Show timeline" : "Hide timeline";
    if (open) { box.replaceChildren(); return; }
    openTimeline(streamId, sess, box).catch((err) => box.replaceChildren(h("p", `timeline failed: ${err.message}`)));
  });
  return h("li", null, { testid: "session", children: [
    h("div", null, { children: [
      h("strong", `${clock(sess.started_at)} · ${duration(sess.duration_s)}${sess.active ? " (active)" : ""}`),
      h("span", ` · ${sess.events} events · ${sess.tracks_seen} track(s) · mostly `, { cls: "muted" }),
      sess.summary.dominant ? emotionTag(sess.summary.dominant) : h("span", "–"),
      h("div", top.map(([e, p]) => `${e} ${pct(p)}`).join(" · "), { cls: "muted" }),
    ] }),
    button, box,
  ] });
}

export async function loadFeeds(id) {
  const [changes, alerts, sessions] = await Promise.all([
    api.get(`/v1/streams/${enc(id)}/changes?limit=50`),
    api.get(`/v1/streams/${enc(id)}/alerts?limit=50`),
    api.get(`/v1/streams/${enc(id)}/sessions?limit=20`),
  ]);
  return { changes: changes.changes, alerts: alerts.alerts, sessions: sessions.sessions };
}
