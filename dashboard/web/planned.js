// Planned works (计划停水停电 / 维保公告): operators enter a planned water or
// power stop or maintenance, copy the residents' notice for the WeChat
// group, print it for the entrance boards, record when it was posted, and
// follow the work through its window to the recovery check.
"use strict";

const t = k => U.tr("pw." + k);
let me = null;

const iso = v => v ? new Date(v).toISOString() : undefined; // datetime-local is the browser's time zone

async function buildings() {
  try {
    const assets = await U.api("GET", "/api/v1/assets");
    const bs = [...new Set(assets.map(a => a.building).filter(Boolean))].sort();
    U.$("pwbuildings").innerHTML = bs.map(b => `<option value="${U.esc(b)}">${U.esc(b)}</option>`).join("");
  } catch (e) { /* the list still works */ }
}

async function create(e) {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = {kind: f.get("kind"), title: f.get("title").trim(), buildings: f.getAll("buildings"),
    assets: f.get("assets").split(/[,，\s]+/).filter(Boolean), area: f.get("area").trim(), lines: f.get("lines").trim(),
    start: iso(f.get("start")), end: iso(f.get("end")), reason: f.get("reason").trim(), announced_at: iso(f.get("announced_at")),
    elevators: f.get("elevators").trim(), safety: f.get("safety").trim(), contact: f.get("contact").trim()};
  try {
    const w = await U.api("POST", "/api/v1/planned-works", body);
    U.$("pwmsg").textContent = t("created") + " #" + w.id;
    U.$("pwmsg").className = "";
    await load();
    show(w.id);
  } catch (err) { U.$("pwmsg").textContent = err.message; U.$("pwmsg").className = "overdue"; }
}

async function load() {
  let ws;
  try { ws = await U.api("GET", "/api/v1/planned-works"); }
  catch (e) { U.$("err").textContent = e.message; return; }
  const op = me.role === "operator" || me.role === "admin";
  let h = `<tr><th>#</th><th>${t("what")}</th><th>${t("when")}</th><th>${t("status")}</th><th>${t("warnings")}</th><th>${t("actions")}</th></tr>`;
  for (const w of ws) {
    const open = w.status === "scheduled" || w.status === "in_progress";
    h += `<tr data-work="${w.id}" data-status="${U.esc(w.status)}"><td>${w.id}</td><td>${U.esc(w.title)}<div class="muted">${U.esc(w.reason)}</div>` +
      (w.tagged && w.tagged.length ? `<div class="muted">${t("tagged")}: ${w.tagged.map(U.esc).join(", ")}</div>` : "") + `</td>` +
      `<td>${U.fmtTime(w.start)} – ${U.fmtTime(w.end)}</td><td class="${w.status === "not_recovered" ? "overdue" : ""}">${t(w.status)}` +
      (w.recovery && w.recovery.missing && w.recovery.missing.length ? `<div class="muted">${w.recovery.missing.map(U.esc).join("; ")}</div>` : "") + `</td>` +
      `<td class="overdue" data-warnings>${(w.warnings || []).map(U.esc).join("<br>")}</td>` +
      `<td><button data-show="${w.id}">${t("show")}</button>` +
      (op && open ? ` <button data-announce="${w.id}">${t("announce")}</button> <button data-cancel="${w.id}">${t("cancel")}</button>` : "") +
      (op && w.status === "in_progress" ? ` <button data-finish="${w.id}">${t("finish")}</button>` : "") + `</td></tr>`;
  }
  if (!ws.length) h += `<tr><td colspan="6" class="muted">${t("none")}</td></tr>`;
  U.$("works").innerHTML = h;
  const on = (attr, fn) => U.$("works").querySelectorAll(`[data-${attr}]`).forEach(b => { b.onclick = () => fn(b.dataset[attr]); });
  on("show", show);
  on("announce", id => act(id, "announce", {}));
  on("finish", id => act(id, "finish", {}));
  on("cancel", id => { const note = prompt(t("cancelwhy")); if (note) act(id, "cancel", {note}); });
}

async function act(id, what, body) {
  try { await U.api("POST", `/api/v1/planned-works/${id}/${what}`, body); }
  catch (e) { U.$("err").textContent = e.message; }
  load();
}

async function show(id) {
  try {
    const n = await U.api("GET", `/api/v1/planned-works/${id}/notice`);
    U.$("noticetext").value = n.text;
    U.$("noticewarn").textContent = (n.warnings || []).join("；");
    U.$("noticeprint").href = `/api/v1/planned-works/${id}/notice?format=html`;
    U.$("noticemsg").textContent = "";
    U.$("noticebox").classList.remove("hidden");
  } catch (e) { U.$("err").textContent = e.message; }
}

async function copy() {
  const ta = U.$("noticetext");
  try { await navigator.clipboard.writeText(ta.value); }
  catch (e) { ta.select(); document.execCommand("copy"); } // plain http: no clipboard API
  U.$("noticemsg").textContent = t("copied");
}

U.start(m => {
  me = m;
  if (me.role === "operator" || me.role === "admin") {
    U.$("creator").classList.remove("hidden");
    U.$("pwform").onsubmit = create;
    buildings();
  }
  U.$("noticecopy").onclick = copy;
  load();
  setInterval(load, 15000);
});
