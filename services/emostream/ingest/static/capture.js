// emostream capture page: camera -> ingest WebSocket; aggregator live feed -> boxes and labels.
// Everything from the network is shown with textContent (never as markup).
"use strict";

const $ = (id) => document.getElementById(id);
const BOX_TTL_MS = 2000; // a face not seen again within this is removed
const MAX_BUFFERED_BYTES = 2 * 1024 * 1024; // client-side bound: skip frames, never queue them
const state = { timer: null, ingest: null, live: null, seq: 0, sentAt: new Map(), faces: new Map() };
let config = { aggregator_url: "" };
const canvas = document.createElement("canvas");

function setText(id, value) { $(id).textContent = String(value); }
function bump(id, n) { setText(id, Number($(id).textContent) + n); }

async function loadConfig() {
  const res = await fetch("/capture/config.json", { cache: "no-store" });
  config = await res.json();
}

function wsUrl(base, path) {
  const url = new URL(path, base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

function openIngest(streamId) {
  const ws = new WebSocket(wsUrl(location.href, `/v1/streams/${encodeURIComponent(streamId)}/ingest`));
  ws.onopen = () => {
    const key = $("ingest-key").value;
    if (key) ws.send(JSON.stringify({ api_key: key }));
    setText("status", "sending");
  };
  ws.onmessage = (msg) => {
    let doc;
    try { doc = JSON.parse(msg.data); } catch { return; }
    if (doc.type === "dropped") bump("dropped", doc.count);
    if (doc.type === "refused") bump("refused", 1);
  };
  ws.onclose = (ev) => setText("status", `ingest closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
  return ws;
}

function openLive(streamId) {
  const base = config.aggregator_url || location.origin;
  const url = new URL(wsUrl(base, "/v1/live"));
  url.searchParams.set("stream_id", streamId);
  const ws = new WebSocket(url.toString());
  ws.onopen = () => {
    const key = $("read-key").value;
    if (key) ws.send(JSON.stringify({ api_key: key }));
  };
  ws.onmessage = (msg) => {
    let event;
    try { event = JSON.parse(msg.data); } catch { return; }
    if (event && event.stream_id === streamId && event.face) showEvent(event);
  };
  ws.onclose = (ev) => { if (state.timer) setText("status", `live feed closed (${ev.code})`); };
  return ws;
}

function showEvent(event) {
  bump("events", 1);
  const sent = state.sentAt.get(event.frame_seq);
  if (sent !== undefined) setText("latency", `${Math.round(performance.now() - sent)} ms`);
  const emotion = event.smoothed && event.smoothed.label !== "uncertain" ? event.smoothed : event.emotion;
  const id = event.face.track_id || `face-${event.face.index}`;
  state.faces.set(id, { box: event.face.box, label: emotion.label, confidence: emotion.confidence,
    seen: performance.now() });
  drawFaces();
}

function drawFaces() {
  const boxes = $("boxes");
  const list = $("faces");
  const video = $("video");
  const scale = video.clientWidth / Math.max(1, canvas.width);
  boxes.replaceChildren();
  list.replaceChildren();
  const now = performance.now();
  for (const [id, face] of state.faces) {
    if (now - face.seen > BOX_TTL_MS) { state.faces.delete(id); continue; }
    const text = `${face.label} ${Math.round(face.confidence * 100)}%`;
    const div = document.createElement("div");
    div.className = "box";
    div.style.left = `${face.box.x * scale}px`;
    div.style.top = `${face.box.y * scale}px`;
    div.style.width = `${face.box.w * scale}px`;
    div.style.height = `${face.box.h * scale}px`;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = text;
    div.append(label);
    boxes.append(div);
    const li = document.createElement("li");
    li.textContent = `${id}: ${text}`;
    list.append(li);
  }
}

function sendFrame() {
  const ws = state.ingest;
  const video = $("video");
  if (!ws || ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  if (ws.bufferedAmount > MAX_BUFFERED_BYTES) { bump("dropped", 1); return; }
  const width = Math.min(Number($("width").value), video.videoWidth);
  canvas.width = width;
  canvas.height = Math.round(video.videoHeight * width / video.videoWidth);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const seq = state.seq++;
  const capturedAt = performance.now();
  canvas.toBlob((blob) => {
    if (!blob || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ seq, captured_ms: Date.now() }));
    ws.send(blob);
    state.sentAt.set(seq, capturedAt);
    if (state.sentAt.size > 500) state.sentAt.delete(state.sentAt.keys().next().value);
    bump("sent", 1);
  }, "image/jpeg", 0.8);
}

async function start() {
  const streamId = $("stream-id").value.trim() || "capture";
  $("start").disabled = true;
  try {
    await loadConfig();
    setText("status", "asking for the camera");
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
    $("video").srcObject = media;
  } catch (err) {
    setText("status", `camera refused: ${err && err.message ? err.message : err}`);
    $("start").disabled = false;
    return;
  }
  state.seq = 0;
  state.sentAt.clear();
  state.ingest = openIngest(streamId);
  state.live = openLive(streamId);
  state.timer = setInterval(sendFrame, 1000 / Number($("fps").value));
  state.redraw = setInterval(drawFaces, 500);
  $("stop").disabled = false;
}

function stop() {
  clearInterval(state.timer);
  clearInterval(state.redraw);
  state.timer = null;
  for (const ws of [state.ingest, state.live]) if (ws) ws.close();
  const media = $("video").srcObject;
  if (media) media.getTracks().forEach((t) => t.stop());
  $("video").srcObject = null;
  $("start").disabled = false;
  $("stop").disabled = true;
  setText("status", "stopped");
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
// ?stream=ID&fps=N&width=PX&autostart: a link (or a test) can start the page ready to go.
const params = new URLSearchParams(location.search);
for (const [param, id] of [["stream", "stream-id"], ["fps", "fps"], ["width", "width"]]) {
  if (params.has(param)) $(id).value = params.get(param);
}
if (params.has("autostart")) start();
