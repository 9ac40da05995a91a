// Inspection rounds (巡检): the rounds and their status, entering a
// checkpoint (by its scanned QR code on the phone, ?code=…, or from the
// list), printing the checkpoints' codes, and the PM plans' items.
"use strict";

const t = k => U.tr("insp." + k);
let me = null, data = {routes: [], rounds: []}, cur = null; // cur: the checkpoint being entered

const fmtVal = v => v === true ? t("yes") : v === false ? t("no") : v === null || v === undefined ? "—" : String(v);

async function load() {
  try { data = await U.api("GET", "/api/v1/inspections?limit=50"); }
  catch (e) { U.$("err").textContent = e.message; return; }
  const op = me.role === "operator" || me.role === "admin";
  let h = `<tr><th>${t("route")}</th><th>${t("scheduled")}</th><th>${t("due")}</th><th>${t("status")}</th><th>${t("checkpoints")}</th><th></th></tr>`;
  for (const r of data.rounds) {
    const route = data.routes.find(x => x.id === r.route);
    const cps = route ? route.checkpoints.map(cp => {
      const res = (r.results || []).find(x => x.checkpoint === cp.id);
      const marks = res ? res.items.map(i => (i.flagged ? `<span class="overdue" data-flagged="1">⚑ ${U.esc(i.item)}: ${t("flagged")}</span> ` : "") +
        (i.abnormal ? `<span class="overdue">✗ ${U.esc(i.item)} ${i.workorder ? "#" + i.workorder : ""}</span> ` : "")).join("") : "";
      const btn = op && (r.status === "open" || r.status === "missed") ? ` <button data-round="${r.id}" data-route="${U.esc(r.route)}" data-cp="${U.esc(cp.id)}">${t("enter")}</button>` : "";
      return `<div>${res ? "✓" : "○"} ${U.esc(cp.name)} ${res ? `<span class="muted">${U.esc(res.by)} ${U.fmtTime(res.at)} (${t(res.check_in)})</span>` : ""} ${marks}${btn}</div>`;
    }).join("") : "";
    const st = r.status === "missed" ? `<span class="overdue">${t("missed")}</span>` : t(r.status) + (r.late ? ` (${t("late")})` : "");
    const closeBtn = op && r.status === "missed" ? `<button data-close="${r.id}">${t("close")}</button>` : "";
    h += `<tr data-round-row="${r.id}" data-status="${U.esc(r.status)}"><td>${U.esc(r.name)}</td><td>${U.fmtTime(r.scheduled)}</td><td>${U.fmtTime(r.due)}</td>` +
      `<td>${st}${r.note ? `<div class="muted">${U.esc(r.note)}</div>` : ""}</td><td>${cps}</td><td>${closeBtn}</td></tr>`;
  }
  if (!data.rounds.length) h += `<tr><td colspan="6" class="muted">${t("norounds")}</td></tr>`;
  U.$("rounds").innerHTML = h;
  U.$("rounds").querySelectorAll("button[data-cp]").forEach(b => { b.onclick = () => openCheckpoint({route: b.dataset.route, checkpoint: b.dataset.cp}); });
  U.$("rounds").querySelectorAll("button[data-close]").forEach(b => { b.onclick = () => closeRound(b.dataset.close); });
  U.$("routes").innerHTML = `<tr><th>${t("route")}</th><th>${t("schedule")}</th><th></th></tr>` + data.routes.map(r =>
    `<tr><td>${U.esc(r.name)}</td><td><code>${U.esc(r.schedule)}</code></td><td>${op ? `<button data-start="${U.esc(r.id)}">${t("start")}</button>` : ""}</td></tr>`).join("");
  U.$("routes").querySelectorAll("button[data-start]").forEach(b => { b.onclick = async () => { await U.api("POST", "/api/v1/inspections", {route: b.dataset.start}); load(); }; });
}

async function openCheckpoint(q) {
  const qs = q.code ? "code=" + encodeURIComponent(q.code) : "route=" + encodeURIComponent(q.route) + "&checkpoint=" + encodeURIComponent(q.checkpoint);
  let p;
  try { p = await U.api("GET", "/api/v1/inspections/checkpoint?" + qs); }
  catch (e) { U.$("err").textContent = e.message; return; }
  cur = {p, code: q.code || ""};
  U.$("cproute").textContent = p.route_name;
  U.$("cpname").textContent = p.checkpoint.name + (p.checkpoint.location ? " — " + p.checkpoint.location : "");
  U.$("cpround").textContent = p.round ? `${t("scheduled")} ${U.fmtTime(p.round.scheduled)} · ${t("due")} ${U.fmtTime(p.round.due)} · ${t(p.round.status)}` : t("noround");
  U.$("cpform").innerHTML = p.checkpoint.items.map(it => {
    const live = it.id in p.telemetry ? ` <span class="muted" data-live="${U.esc(it.id)}">${t("live")}: ${U.esc(fmtVal(it.id in p.suggested ? p.suggested[it.id] : p.telemetry[it.id]))}${it.unit ? " " + U.esc(it.unit) : ""}</span>` : "";
    let input = "";
    const tv = p.suggested[it.id];
    if (it.kind === "yesno") {
      const pre = typeof tv === "boolean" ? tv : null;
      input = `<select name="${U.esc(it.id)}"><option value=""></option><option value="yes"${pre === true ? " selected" : ""}>${t("yes")}</option><option value="no"${pre === false ? " selected" : ""}>${t("no")}</option></select>`;
    } else if (it.kind === "reading") {
      input = `<input name="${U.esc(it.id)}" type="number" step="any" inputmode="decimal" value="${typeof tv === "number" ? U.esc(tv) : ""}"> ${U.esc(it.unit || "")}`;
    } else if (it.kind === "photo") {
      input = `<input name="${U.esc(it.id)}" type="file" accept="image/*" capture="environment">`;
    }
    const note = `<input name="${U.esc(it.id)}__note" placeholder="${it.kind === "note" ? "" : "…"}" style="width:100%">`;
    return `<div style="margin:.5em 0"><label><b>${U.esc(it.label)}</b>${it.optional ? "" : " *"}${live}</label><div>${input}</div>${note}</div>`;
  }).join("");
  U.$("cpmsg").textContent = "";
  U.$("cpresult").innerHTML = "";
  U.$("entry").classList.remove("hidden");
  U.$("entry").scrollIntoView();
}

function photoData(file) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => { // shrink on the phone: at most 1280 px, JPEG
      const s = Math.min(1, 1280 / Math.max(img.width, img.height));
      const c = document.createElement("canvas");
      c.width = Math.round(img.width * s); c.height = Math.round(img.height * s);
      c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
      resolve(c.toDataURL("image/jpeg", 0.7));
    };
    img.onerror = reject;
    img.src = URL.createObjectURL(file);
  });
}

async function submit() {
  const p = cur.p, f = new FormData(U.$("cpform")), items = [];
  for (const it of p.checkpoint.items) {
    const e = {item: it.id}, note = (f.get(it.id + "__note") || "").trim();
    if (note) e.text = note;
    if (it.kind === "yesno" && f.get(it.id)) e.yes = f.get(it.id) === "yes";
    if (it.kind === "reading" && f.get(it.id) !== "" && f.get(it.id) !== null) e.reading = Number(f.get(it.id));
    if (it.kind === "photo") { const file = f.get(it.id); if (file && file.size) e.photo = await photoData(file); }
    items.push(e);
  }
  let round = p.round;
  try {
    if (!round) round = await U.api("POST", "/api/v1/inspections", {route: p.route});
    const r = await U.api("POST", `/api/v1/inspections/${round.id}/results`, {checkpoint: p.checkpoint.id, code: cur.code || undefined, items});
    const res = r.results.find(x => x.checkpoint === p.checkpoint.id);
    U.$("cpmsg").textContent = t("saved");
    U.$("cpmsg").className = "";
    U.$("cpresult").innerHTML = res.items.map(i => `<tr data-item="${U.esc(i.item)}"><td>${U.esc(i.item)}</td>` +
      `<td>${U.esc(fmtVal(i.yes !== undefined ? i.yes : i.reading !== undefined ? i.reading : i.text))}</td>` +
      `<td>${i.telemetry !== undefined ? t("live") + ": " + U.esc(fmtVal(i.telemetry)) : ""}</td>` +
      `<td>${i.flagged ? `<span class="overdue" data-flagged="1">⚑ ${t("flagged")}</span>` : ""} ${i.abnormal ? `<span class="overdue">${t("abnormal")}</span>` : ""}` +
      `${i.workorder ? ` ${t("workorder")} #${i.workorder}` : ""}</td></tr>`).join("");
    load();
  } catch (e) { U.$("cpmsg").textContent = e.message; U.$("cpmsg").className = "overdue"; }
}

async function closeRound(id) {
  const note = prompt(t("reason"));
  if (!note) return;
  try { await U.api("POST", `/api/v1/inspections/${id}/close`, {note}); load(); }
  catch (e) { U.$("err").textContent = e.message; }
}

async function codes() {
  try {
    const cs = await U.api("GET", "/api/v1/inspections/codes");
    U.$("codelist").innerHTML = cs.map(c => `<figure style="margin:0;text-align:center;width:14em"><img src="${U.esc(c.png)}" alt="" width="200" height="200">` +
      `<figcaption>${U.esc(c.route_name)}<br><b>${U.esc(c.name)}</b><br><span class="muted">${U.esc(c.location)}</span></figcaption></figure>`).join("");
  } catch (e) { U.$("codelist").textContent = e.message; }
}

async function pm() {
  try {
    const m = await U.api("GET", "/api/v1/maintenance");
    const plan = id => (m.plans.find(p => p.id === id) || {name: id}).name;
    U.$("pm").innerHTML = `<tr><th>${t("plan")}</th><th>${t("asset")}</th><th>${t("duefor")}</th><th>${t("status")}</th></tr>` +
      m.items.slice(0, 30).map(i => `<tr data-status="${U.esc(i.status)}"><td>${U.esc(plan(i.plan))}</td><td>${U.esc(i.asset)}</td>` +
        `<td>${i.due ? U.fmtTime(i.due) : U.esc(i.due_hours) + " h"}</td><td class="${i.status === "overdue" ? "overdue" : ""}">${t(i.status)}${i.workorder ? " #" + i.workorder : ""}</td></tr>`).join("");
  } catch (e) { U.$("pm").textContent = e.message; }
}

U.start(m => {
  me = m;
  if (me.role === "operator" || me.role === "admin") U.$("codes").classList.remove("hidden");
  U.$("cpsubmit").onclick = submit;
  U.$("cpcancel").onclick = () => U.$("entry").classList.add("hidden");
  U.$("showcodes").onclick = codes;
  load();
  pm();
  if (U.params.get("code")) openCheckpoint({code: U.params.get("code")});
});
