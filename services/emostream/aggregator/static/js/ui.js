// Small DOM helpers and the palette. Event fields reach the page only as text (textContent):
// never as HTML, so a label or a stream id can not become markup.

export const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
export const NEGATIVE = new Set(["angry", "disgust", "fear", "sad"]);
// Okabe-Ito, safe for the common colour-vision deficiencies; every colour has its label beside it.
export const COLORS = {
  angry: "#D55E00", disgust: "#009E73", fear: "#CC79A7", happy: "#E69F00",
  sad: "#0072B2", surprise: "#56B4E9", neutral: "#999999", uncertain: "#DDDDDD",
};

/** An element with text content, classes and data attributes (``testid`` -> data-testid). */
export function h(tag, text, opts = {}) {
  const el = document.createElement(tag);
  if (text !== undefined && text !== null) el.textContent = String(text);
  if (opts.cls) el.className = opts.cls;
  if (opts.testid) el.dataset.testid = opts.testid;
  for (const [k, v] of Object.entries(opts.attrs || {})) el.setAttribute(k, String(v));
  for (const child of opts.children || []) if (child) el.append(child);
  return el;
}

/** A colour chip with its label written next to it. */
export function emotionTag(label, suffix = "") {
  const known = label in COLORS ? label : "uncertain";
  return h("span", null, {
    cls: "tag",
    children: [h("i", null, { cls: `chip e-${known}`, attrs: { "aria-hidden": "true" } }),
      h("span", `${label}${suffix}`)],
  });
}

export function legend() {
  return h("div", null, {
    cls: "legend", attrs: { "aria-label": "emotion colours" },
    children: [...EMOTIONS, "uncertain"].map((e) => emotionTag(e)),
  });
}

export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
}

export function pct(p) { return `${Math.round((p || 0) * 100)}%`; }

export function badge(text, kind) { return h("span", text, { cls: `badge ${kind}` }); }

export function link(text, href, opts = {}) {
  const a = h("a", text, opts);
  a.href = href;
  return a;
}

export function streamHref(id) { return `/dashboard/streams/${encodeURIComponent(id)}`; }

/** A notice in the main area: the page is never left blank. */
export function notice(text, kind = "info") {
  return h("p", text, { cls: `notice ${kind}`, attrs: { role: kind === "error" ? "alert" : "status" } });
}

/** A failed load as a visible state: a refused key says so, never a blank page. */
export function showFailure(root, err, setStatus) {
  if (err && (err.status === 401 || err.status === 403)) {
    setStatus("refused", "key refused");
    root.replaceChildren(notice(
      `The API refused the read key (HTTP ${err.status}): ${err.message}. ` +
      "Enter a valid read key above (the aggregator's EMOSTREAM_API__READ_KEYS).", "error"));
    return;
  }
  setStatus("retrying", "API unreachable");
  root.replaceChildren(notice(`Could not load from the API: ${err && err.message}. Reload to retry.`, "error"));
}

/** The last ``n`` seconds as a strip of coloured cells, each with its label in a tooltip. */
export function strip(labels, caption) {
  const el = h("div", null, { cls: "strip", attrs: { role: "img", "aria-label": caption } });
  for (const l of labels) {
    const cell = h("span", null, { cls: `e-${l || "none"}` });
    cell.title = l || "no event";
    el.append(cell);
  }
  return el;
}
