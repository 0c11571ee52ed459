// The API, same origin only. The read key is kept in localStorage (the page's own origin), the
// admin key only for this tab (sessionStorage); both travel in the X-API-Key header, never in
// a URL.

const READ = "emostream-key";
const ADMIN = "emostream-admin-key";

export const keys = {
  get read() { return localStorage.getItem(READ) || ""; },
  set read(v) { localStorage.setItem(READ, v); },
  get admin() { return sessionStorage.getItem(ADMIN) || ""; },
  set admin(v) { sessionStorage.setItem(ADMIN, v); },
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `API answered ${status}`);
    this.status = status;
    this.detail = detail;
  }
  get refused() { return this.status === 401 || this.status === 403; }
}

async function call(method, path, { body, admin = false } = {}) {
  const key = admin ? keys.admin || keys.read : keys.read;
  const headers = key ? { "X-API-Key": key } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  if (r.status === 204) return null;
  let doc = null;
  try { doc = await r.json(); } catch { doc = null; }
  if (!r.ok) throw new ApiError(r.status, doc && doc.detail !== undefined ? doc.detail : null);
  return doc;
}

export const api = {
  get: (path, opts) => call("GET", path, opts),
  post: (path, body, opts) => call("POST", path, { ...opts, body }),
  del: (path, opts) => call("DELETE", path, opts),
};

export const enc = encodeURIComponent;

/** Every page of a cursor-paged list, up to ``max`` items. */
export async function pages(path, field, max, param = "before") {
  const out = [];
  let cursor = null;
  while (out.length < max) {
    const sep = path.includes("?") ? "&" : "?";
    const url = cursor ? `${path}${sep}${param}=${enc(cursor)}` : path;
    const doc = await api.get(url);
    out.push(...doc[field]);
    cursor = doc.next_cursor;
    if (!cursor) break;
  }
  return out.slice(0, max);
}
