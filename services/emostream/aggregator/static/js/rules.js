// /dashboard/rules: list, create, delete rules and see their webhook deliveries. Reading needs
// a read key; creating and deleting an admin key, asked for here (kept for this tab only).
// A rejected rule keeps the form as typed and shows the API's message at its field.

import { api, enc, keys } from "./api.js";
import { EMOTIONS, clock, h, notice, showFailure } from "./ui.js";

const FIELDS = ["name", "kind", "emotions", "threshold", "for_seconds", "to", "stream_id",
  "cooldown_seconds", "webhook_url"];

function field(name, label, input, help) {
  input.id = `f-${name}`; input.name = name;
  const err = h("span", null, { cls: "field-error", attrs: { id: `err-${name}`, role: "alert" } });
  input.setAttribute("aria-describedby", `err-${name}`);
  const lab = h("label", label, { attrs: { for: input.id } });
  return [lab, h("div", null, { children: [input, help ? h("span", help, { cls: "muted" }) : null, err] })];
}

function input(type, attrs = {}) { return h("input", null, { attrs: { type, ...attrs } }); }

function checks(name, labels) {
  const box = h("fieldset", null, { attrs: { "aria-label": name } });
  for (const l of labels) {
    const c = input("checkbox", { value: l, name });
    box.append(h("label", null, { children: [c, document.createTextNode(` ${l}`)] }));
  }
  return box;
}

function buildForm() {
  const kind = h("select", null, { children: [
    h("option", "a probability stays above a threshold", { attrs: { value: "probability_above" } }),
    h("option", "the stable emotion changes", { attrs: { value: "stable_change" } })] });
  const form = h("form", null, { cls: "rules-form", attrs: { novalidate: "", "aria-label": "new rule" } });
  form.append(
    ...field("name", "Name", input("text", { maxlength: 100 })),
    ...field("kind", "Fires when", kind),
    ...field("emotions", "Emotions (summed)", checks("emotions", EMOTIONS)),
    ...field("threshold", "Threshold (0–1)", input("number", { step: "0.01", min: 0, max: 1 })),
    ...field("for_seconds", "For (seconds)", input("number", { step: "0.1", min: 0 })),
    ...field("to", "Only changes to", checks("to", [...EMOTIONS, "uncertain"]), "none ticked: any"),
    ...field("stream_id", "Stream", input("text"), "empty: every stream"),
    ...field("cooldown_seconds", "Cooldown (seconds)", input("number", { step: "1", min: 0, value: 60 })),
    ...field("webhook_url", "Webhook URL", input("url"), "optional"),
    h("span"), h("div", null, { children: [h("button", "Create rule", { attrs: { type: "submit" } }),
      h("p", null, { cls: "field-error", attrs: { id: "form-error", role: "alert" } })] }));
  const sync = () => {
    const above = kind.value === "probability_above";
    for (const n of ["emotions", "threshold", "for_seconds"]) form.querySelector(`#f-${n}`).closest("div").previousSibling.classList.toggle("hidden", !above);
    for (const n of ["emotions", "threshold", "for_seconds"]) form.querySelector(`#f-${n}`).closest("div").classList.toggle("hidden", !above);
    form.querySelector("#f-to").closest("div").classList.toggle("hidden", above);
    form.querySelector("#f-to").closest("div").previousSibling.classList.toggle("hidden", above);
  };
  kind.addEventListener("change", sync);
  sync();
  return form;
}

function spec(form) {
  const v = (n) => form.querySelector(`#f-${n}`).value.trim();
  const ticked = (n) => [...form.querySelectorAll(`input[name=${n}]:checked`)].map((c) => c.value);
  const num = (n) => (v(n) === "" ? undefined : Number(v(n)));
  const body = { name: v("name"), kind: v("kind"), cooldown_seconds: num("cooldown_seconds") ?? 60 };
  if (v("stream_id")) body.stream_id = v("stream_id");
  if (v("webhook_url")) body.webhook_url = v("webhook_url");
  if (body.kind === "probability_above") {
    Object.assign(body, { emotions: ticked("emotions"), threshold: num("threshold"), for_seconds: num("for_seconds") });
  } else if (ticked("to").length) body.to = ticked("to");
  return body;
}

/** Each validation message at its field (the last known field name in its ``loc``). */
export function fieldErrors(detail) {
  const out = {};
  if (!Array.isArray(detail)) return { "": typeof detail === "string" ? detail : "rejected" };
  for (const d of detail) {
    const name = [...(d.loc || [])].reverse().find((p) => FIELDS.includes(p)) || "";
    out[name] = out[name] ? `${out[name]}; ${d.msg}` : d.msg;
  }
  return out;
}

function showErrors(form, errors) {
  for (const n of [...FIELDS, ""]) {
    const el = form.querySelector(n ? `#err-${n}` : "#form-error");
    el.textContent = errors[n] || "";
    const inp = n && form.querySelector(`#f-${n}`);
    if (inp) inp.setAttribute("aria-invalid", errors[n] ? "true" : "false");
  }
  const first = FIELDS.find((n) => errors[n]);
  if (first) form.querySelector(`#f-${first}`).focus();
}

function ruleRow(rule, reload, say) {
  const cond = rule.kind === "probability_above"
    ? `${rule.emotions.join("+")} ≥ ${rule.threshold} for ${rule.for_seconds} s`
    : `stable emotion changes${rule.to ? ` to ${rule.to.join(", ")}` : ""}`;
  const log = h("div");
  const del = h("button", "Delete", { attrs: { type: "button", "aria-label": `delete rule ${rule.name}` } });
  del.addEventListener("click", async () => {
    try { await api.del(`/v1/rules/${enc(rule.id)}`, { admin: true }); reload(); }
    catch (err) { say(err.refused ? `deleting needs an admin key (HTTP ${err.status})` : err.message); }
  });
  const show = h("button", "Deliveries", { attrs: { type: "button" } });
  show.addEventListener("click", async () => {
    try {
      const doc = await api.get(`/v1/rules/${enc(rule.id)}/deliveries?limit=20`);
      log.replaceChildren(doc.deliveries.length ? h("ul", null, { children: doc.deliveries.map((d) =>
        h("li", `${d.alert_id.slice(0, 8)} · ${d.delivered ? "delivered" : "failed"} · ${d.attempts} attempt(s)` +
          `${d.status_code ? ` · HTTP ${d.status_code}` : ""}${d.error ? ` · ${d.error}` : ""}` +
          `${d.delivered_at ? ` · ${clock(d.delivered_at)}` : ""}`)) }) : h("p", "no delivery logged", { cls: "muted" }));
    } catch (err) { log.replaceChildren(h("p", err.message)); }
  });
  return h("tr", null, { testid: "rule", children: [
    h("td", rule.name), h("td", cond), h("td", rule.stream_id || "every stream"),
    h("td", `${rule.cooldown_seconds} s`), h("td", rule.webhook_url || "–"),
    h("td", null, { children: [show, del, log] })] });
}

export async function rulesView(root, { setStatus }) {
  const list = h("tbody");
  const say = (t) => { msg.textContent = t; };
  const msg = h("p", null, { attrs: { role: "status" } });
  const adminInput = input("password", { id: "admin-key", size: 18 });
  adminInput.value = keys.admin;
  const adminForm = h("form", null, { cls: "keyform", children: [
    h("label", "Admin key", { attrs: { for: "admin-key" } }), adminInput,
    h("button", "Use admin key", { attrs: { type: "submit" } })] });
  const adminNote = notice("");
  const noteAdmin = () => { adminNote.textContent = keys.admin ? "Admin key set for this tab: you can create and delete rules."
    : "Creating and deleting rules needs an admin key (EMOSTREAM_API__ADMIN_KEYS); enter it here. Without one you can only read."; };
  adminForm.addEventListener("submit", (e) => { e.preventDefault(); keys.admin = adminInput.value; noteAdmin(); });
  noteAdmin();
  const form = buildForm();
  const reload = async () => {
    const doc = await api.get("/v1/rules");
    list.replaceChildren(...doc.rules.map((r) => ruleRow(r, () => reload().catch(() => {}), say)));
    if (!doc.rules.length) list.append(h("tr", null, { children: [h("td", "no rules yet", { attrs: { colspan: 6 } })] }));
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const rule = await api.post("/v1/rules", spec(form), { admin: true });
      showErrors(form, {}); form.reset(); form.querySelector("#f-kind").dispatchEvent(new Event("change"));
      say(`created rule ${rule.name}`); await reload();
    } catch (err) {
      if (err.refused && !keys.admin) showErrors(form, { "": "Creating a rule needs an admin key: enter it above." });
      else if (err.refused) showErrors(form, { "": `The API refused the admin key (HTTP ${err.status}): ${err.message}` });
      else if (err.status === 400 && /webhook/.test(err.message)) showErrors(form, { webhook_url: err.message });
      else showErrors(form, fieldErrors(err.detail ?? err.message));
    }
  });
  root.replaceChildren(h("h1", "Rules"), adminNote, adminForm,
    h("section", null, { cls: "panel", testid: "rules", children: [h("h2", "Rules"), msg,
      h("div", null, { cls: "table-wrap", children: [h("table", null, { children: [h("thead", null, { children: [
        h("tr", null, { children: ["Name", "Condition", "Stream", "Cooldown", "Webhook", ""].map((t) => h("th", t)) })] }),
      list] })] })] }),
    h("section", null, { cls: "panel", children: [h("h2", "New rule"), form] }));
  try { await reload(); setStatus("live", "rules loaded"); } catch (err) { showFailure(root, err, setStatus); }
  return { stop() {} };
}
