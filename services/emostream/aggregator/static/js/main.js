// The dashboard's entry: the read-key form, the connection status, and which view this URL is
// (/dashboard, /dashboard/streams/{id}, /dashboard/rules): real URLs, so links can be shared.

import { keys } from "./api.js";
import { overview } from "./overview.js";
import { rulesView } from "./rules.js";
import { streamView } from "./stream.js";

const view = document.getElementById("view");
const status = document.getElementById("status");
const keyInput = document.getElementById("key");

// What the benchmark and tests read: how many redraws and live messages this page handled.
export const stats = { redraws: 0, messages: 0 };
window.emostreamStats = stats;

export function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function route() {
  const path = location.pathname.replace(/\/+$/, "");
  const m = path.match(/^\/dashboard\/streams\/([^/]+)$/);
  if (m) return { name: "stream", start: (ctx) => streamView(view, ctx, decodeURIComponent(m[1])) };
  if (path === "/dashboard/rules") return { name: "rules", start: (ctx) => rulesView(view, ctx) };
  return { name: "overview", start: (ctx) => overview(view, ctx) };
}

let current = null;

async function start() {
  if (current && current.stop) current.stop();
  const r = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === (r.name === "stream" ? "overview" : r.name)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    current = await r.start({ setStatus, stats });
  } catch (err) {
    setStatus("retrying", `error: ${err.message}`);
  }
}

keyInput.value = keys.read;
document.getElementById("keyform").addEventListener("submit", (e) => {
  e.preventDefault();
  keys.read = keyInput.value;
  start();
});

function boot() {
  if (!window.uPlot) { setTimeout(boot, 20); return; }  // the deferred chart library
  start();
}
boot();
