// One live connection (WebSocket) for typed messages: events, changes, alerts. It reconnects
// with capped exponential backoff and says so; a refused key stops it until the key changes.

const KINDS = ["event", "change", "alert"];
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15000;

export class Live {
  /** ``onMessage(type, doc)``; ``onStatus(state, text)`` with state live|connecting|retrying|refused. */
  constructor({ streams = null, key, onMessage, onStatus }) {
    this.streams = streams; this.key = key;
    this.onMessage = onMessage; this.onStatus = onStatus;
    this.ws = null; this.retryMs = FIRST_RETRY_MS; this.attempt = 0; this.timer = null;
    this.closed = false; this.received = 0;
  }

  url() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const q = KINDS.map((k) => `kind=${k}`);
    for (const s of this.streams || []) q.push(`stream_id=${encodeURIComponent(s)}`);
    return `${proto}://${location.host}/v1/live?${q.join("&")}`;
  }

  connect() {
    this.closed = false;
    this.attempt += 1;
    this.onStatus("connecting", this.attempt > 1 ? `reconnecting (attempt ${this.attempt})…` : "connecting…");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ api_key: this.key() }));  // in a message: URLs end up in logs
    };
    ws.onmessage = (m) => {
      if (this.received === 0) this.ready();
      this.received += 1;
      let doc;
      try { doc = JSON.parse(m.data); } catch { return; }
      if (doc && typeof doc.type === "string" && doc.data) this.onMessage(doc.type, doc.data);
    };
    ws.onclose = (e) => this.closedWith(ws, e);
    // The server says nothing until there is something to push: an open socket that was not
    // refused within a second has been accepted.
    this.readyTimer = setTimeout(() => { if (this.ws === ws && ws.readyState === 1) this.ready(); }, 1000);
  }

  ready() {
    if (this.isLive) return;
    this.isLive = true; this.attempt = 0; this.retryMs = FIRST_RETRY_MS;
    this.onStatus("live", "live");
  }

  closedWith(ws, e) {
    if (this.ws !== ws) return;
    clearTimeout(this.readyTimer);
    this.isLive = false; this.received = 0;
    if (this.closed) return;
    if (e.code === 4401) { this.onStatus("refused", "live updates refused: missing or invalid API key"); return; }
    if (e.code === 1013) this.retryMs = Math.max(this.retryMs, 5000);
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.onStatus("retrying", `disconnected; reconnecting in ${Math.round(wait / 100) / 10} s`);
    this.timer = setTimeout(() => this.connect(), wait + Math.random() * 250);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer); clearTimeout(this.readyTimer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }
}
