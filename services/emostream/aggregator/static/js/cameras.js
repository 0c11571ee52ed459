// The overview's camera panel (issue 35): each registered camera's status as its fleet ingest
// reports it (which ingest, state, frames/s, reconnects, last error and since when), refreshed
// every few seconds. Hidden where the aggregator runs no registry or has no camera.

import { api } from "./api.js";
import { badge, h } from "./ui.js";

const REFRESH_MS = 5000;

function row(cam) {
  const st = cam.status;
  const state = st ? st.state : "no ingest";
  const kind = !st ? "stale" : st.state === "running" ? "ok" : st.state === "error" || st.state === "refused" ? "stale" : "fps";
  const error = st && st.last_error ? `${st.last_error}${st.error_since ? ` (since ${st.error_since})` : ""}` : "";
  return h("tr", null, { testid: "camera", children: [
    h("td", cam.stream_id),
    h("td", null, { children: [badge(state, kind)] }),
    h("td", st && st.fps !== undefined ? st.fps.toFixed(1) : "–"),
    h("td", st && st.reconnects !== undefined ? String(st.reconnects) : "–"),
    h("td", st ? st.ingest : "–", { cls: "muted" }),
    h("td", error, { cls: "muted" }),
  ] });
}

export function cameraPanel() {
  const body = h("tbody");
  const el = h("section", null, { cls: "cameras hidden", testid: "cameras", children: [
    h("h2", "Cameras"),
    h("div", null, { cls: "table-wrap", children: [h("table", null, { children: [
      h("thead", null, { children: [h("tr", null, { children:
        ["camera", "state", "frames/s", "reconnects", "ingest", "last error"].map((t) => h("th", t)) })] }),
      body,
    ] })] }),
  ] });
  let timer = null;
  let stopped = false;
  const refresh = async () => {
    try {
      const doc = await api.get("/v1/cameras");
      body.replaceChildren(...doc.cameras.map(row));
      el.classList.toggle("hidden", doc.cameras.length === 0);
    } catch {
      el.classList.add("hidden");  // not allowed, or the API is away: the streams remain
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  };
  refresh();
  return { el, stop() { stopped = true; clearTimeout(timer); } };
}
