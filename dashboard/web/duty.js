// 值班 / 交接班 / 值班表: the duty-room console page (GET /console/duty).
// Shift handover (交班人 signs the generated summary, 接班人 accepts), the
// duty log (值班记录), the duty roster (值班表; admins edit it).
"use strict";

const qs = new URLSearchParams(location.search);
let lng = (qs.get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
// The words are the catalogue's (/static/i18n.js, loaded first): duty.<key>,
// and the shared ones (states, statuses, categories, roles) by their keys.
const tr = k => { const m = CATALOG[k]; if (m) return m[lng] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
const t = k => tr("duty." + k);
const label = (prefix, id) => id ? tr(prefix + "." + id) : "";
const h = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const el = id => document.getElementById(id);
const fmtT = s => { if (!s || s.startsWith("0001")) return "—"; const d = new Date(s); return d.toLocaleString(lng === "zh" ? "zh-CN" : "en-GB", {hour12: false}); };
const localInput = s => { if (!s || s.startsWith("0001")) return ""; const d = new Date(s); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 16); };
const iso = v => v ? new Date(v).toISOString() : null;
let me = null, rosterData = null, draft = null;

async function call(method, path, body) {
  const r = await fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin"});
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

function say(text, err) {
  const m = el("msg");
  m.textContent = text; m.className = "msg" + (err ? " err" : "");
}

function i18n() {
  document.documentElement.lang = lng;
  document.title = tr("title.duty");
  document.querySelectorAll("[data-i18n]").forEach(e => { e.textContent = tr(e.dataset.i18n); });
  document.querySelectorAll("[data-ph]").forEach(e => { e.placeholder = tr(e.dataset.ph); });
}

function tab(name) {
  for (const n of ["handover", "log", "roster"]) el(n).classList.toggle("hidden", n !== name);
  document.querySelectorAll("#tabs button").forEach(b => b.classList.toggle("on", b.dataset.tab === name));
  localStorage.setItem("dutyTab", name);
  if (name === "handover") { loadPending(); searchHandovers(); }
  if (name === "log") searchLog();
  if (name === "roster") loadRoster();
}

// ---- handover -----------------------------------------------------------------

const alarmName = a => h(lng === "zh" && a.name_zh ? a.name_zh : a.name || a.rule);
function summaryHTML(s) {
  const sec = (key, items, row) => `<h3>${t(key)}（${items.length}）</h3>` + (items.length ? `<ul>${items.map(row).join("")}</ul>` : `<div class="muted">${t("none")}</div>`);
  return `<div class="sum">` +
    sec("alarms", s.alarms, a => `<li data-alarm="${h(a.id)}"><span class="p-${h(a.priority)}">${alarmName(a)}</span> ${h(a.asset)} · ${h(label("state", a.state))} · ${fmtT(a.since)}</li>`) +
    sec("masked", s.masked, a => `<li data-alarm="${h(a.id)}">${alarmName(a)} ${h(a.asset)} · ${h(label("state", a.state))} · ${t("by")} ${h(a.by)} ${h(a.note)}${a.until && !a.until.startsWith("0001") ? " · " + t("until") + " " + fmtT(a.until) : ""}</li>`) +
    sec("incidents", s.incidents, i => `<li>#${i.id} ${h(i.name)} ${h(i.asset)} (${i.done}/${i.total}) — ${t("current")}: ${i.current.map(c => h(lng === "zh" && c.title_zh ? c.title_zh : c.title) + (c.overdue ? ` <span class="overdue">${t("overdue")}</span>` : "")).join("；")}</li>`) +
    sec("workorders", s.workorders, w => `<li data-workorder="${w.id}">#${w.id} ${h(label("cat", w.category))} ${h(w.description)} · ${h(label("wo", w.status))}${w.overdue ? ` <span class="overdue">${t("overdue")}</span>` : ""}</li>`) +
    sec("planned", s.planned_works || [], p => `<li>#${p.id} ${h(p.title)} · ${h(label("pw", p.status))} · ${fmtT(p.start)} – ${fmtT(p.end)}</li>`) +
    sec("shiftLog", s.log, e => `<li>${fmtT(e.at)} ${t("k_" + e.kind)} ${h(e.caller)} ${h(e.text)}</li>`) + `</div>`;
}

async function makeDraft() {
  try {
    draft = await call("GET", "/api/v1/handovers/draft?team=" + encodeURIComponent(el("hoTeam").value));
    el("hoShift").textContent = `${t("shift")} ${fmtT(draft.shift_start)} – ${fmtT(draft.shift_end)} · ${t("rostered")}: ${draft.rostered_outgoing_name || "—"} → ${draft.rostered_incoming_name || "—"}`;
    el("hoSummary").innerHTML = summaryHTML(draft.summary);
    el("hoSign").disabled = !(me && (me.role === "operator" || me.role === "admin"));
  } catch (e) { say(e.message, true); }
}

async function sign() {
  if (!draft) { say(t("noSummary"), true); return; }
  try {
    const ho = await call("POST", "/api/v1/handovers", {team: el("hoTeam").value, remarks: el("hoRemarks").value});
    say(`${t("signedOk")} (#${ho.id})`);
    el("hoRemarks").value = ""; el("hoSign").disabled = true; draft = null;
    el("hoSummary").innerHTML = summaryHTML(ho.summary);
    loadPending(); searchHandovers();
  } catch (e) { say(e.message, true); }
}

async function loadPending() {
  try {
    const list = await call("GET", "/api/v1/handovers?status=pending");
    el("hoPending").innerHTML = list.length ? list.map(x => `<div class="team" data-handover="${x.id}"><b>#${x.id} ${h(x.team_name)}</b> · ${t("outgoing")}: ${h(x.outgoing.name)} ${fmtT(x.outgoing.at)}
      <div>${h(x.remarks)}</div><details><summary>${t("history")}</summary>${summaryHTML(x.summary)}</details>
      <input class="acceptNote" placeholder="${t("acceptNote")}"> <button class="primary" data-accept="${x.id}">${t("accept")}</button>
      <a target="_blank" href="/api/v1/handovers/${x.id}/print">${t("print")}</a></div>`).join("") : `<div class="muted">${t("none")}</div>`;
  } catch (e) { say(e.message, true); }
}

async function accept(id, box) {
  try {
    await call("POST", `/api/v1/handovers/${id}/accept`, {note: box.querySelector(".acceptNote").value});
    say(t("acceptedOk") + ` (#${id})`);
    loadPending(); searchHandovers();
  } catch (e) { say(e.message, true); }
}

async function searchHandovers() {
  const p = new URLSearchParams();
  if (el("hoDate").value) p.set("date", el("hoDate").value);
  if (el("hoQ").value) p.set("q", el("hoQ").value);
  try {
    const list = await call("GET", "/api/v1/handovers?" + p);
    el("hoList").innerHTML = `<tr><th>#</th><th>${t("team")}</th><th>${t("outgoing")}</th><th>${t("incoming")}</th><th>${t("status")}</th><th></th></tr>` +
      list.map(x => `<tr data-handover="${x.id}" data-status="${h(x.status)}"><td>${x.id}</td><td>${h(x.team_name)}</td><td>${h(x.outgoing.name)} ${fmtT(x.outgoing.at)}</td>
        <td>${x.incoming ? h(x.incoming.name) + " " + fmtT(x.incoming.at) : "—"}</td><td>${t(x.status)}</td>
        <td><a target="_blank" href="/api/v1/handovers/${x.id}/print">${t("print")}</a></td></tr>`).join("");
  } catch (e) { say(e.message, true); }
}

// ---- duty log -------------------------------------------------------------------

async function writeEntry(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {kind: f.get("kind"), team: f.get("team") || undefined, caller: f.get("caller"), text: f.get("text")};
  if (f.get("now")) body.at_now = true;
  else if (f.get("at")) body.at = new Date(f.get("at")).toISOString();
  else { say(t("wantNow"), true); return; }
  if (f.get("workorder")) body.workorder = Number(f.get("workorder"));
  if (f.get("newwo")) body.new_workorder = {category: f.get("category")};
  try {
    const e = await call("POST", "/api/v1/duty-log", body);
    say(t("written") + (e.workorder ? ` · #${e.workorder}` : ""));
    ev.target.reset();
    searchLog();
  } catch (e) { say(e.message, true); }
}

async function searchLog() {
  const p = new URLSearchParams();
  p.set("date", el("logDate").value || "today"); // empty: the site's today (its time zone, not the browser's)
  if (el("logQ").value) p.set("q", el("logQ").value);
  el("logPrint").href = "/api/v1/duty-log/print?date=" + (el("logDate").value || "today");
  try {
    const list = await call("GET", "/api/v1/duty-log?" + p);
    el("logList").innerHTML = `<tr><th>${t("at")}</th><th>${t("kind")}</th><th>${t("caller")}</th><th>${t("text")}</th><th>${t("wo")}</th><th>${t("by")}</th></tr>` +
      list.map(e => `<tr data-entry="${e.id}"><td>${fmtT(e.at)}</td><td>${t("k_" + e.kind)}</td><td>${h(e.caller)}</td><td>${h(e.text)}</td>
        <td>${e.workorder ? "#" + e.workorder : ""}</td><td>${h(e.author_name || e.author)}</td></tr>`).join("");
  } catch (e) { say(e.message, true); }
}

// ---- roster ---------------------------------------------------------------------

async function loadRoster() {
  try {
    rosterData = await call("GET", "/api/v1/roster");
  } catch (e) { say(e.message, true); return; }
  const teams = rosterData.teams;
  const opts = teams.map(x => `<option value="${h(x.id)}">${h(x.name || x.id)}</option>`).join("");
  const keep = el("hoTeam").value;
  el("hoTeam").innerHTML = opts; if (keep) el("hoTeam").value = keep;
  el("logTeam").innerHTML = `<option value=""></option>` + opts;
  el("onDuty").innerHTML = rosterData.on_duty.map(s => `<tr data-team="${h(s.team)}"><td>${h(s.team_name)}</td><td>${h(s.name)}</td><td>${fmtT(s.from)} – ${fmtT(s.until)}</td><td>${s.override ? t("overrides") : ""}</td></tr>`).join("");
  try {
    const shifts = await call("GET", "/api/v1/roster/schedule");
    el("schedule").innerHTML = `<tr><th>${t("team")}</th><th>${t("person")}</th><th>${t("from")}</th><th>${t("to")}</th><th></th></tr>` +
      shifts.map(s => `<tr data-team="${h(s.team)}"><td>${h(s.team_name)}</td><td>${h(s.name)}</td><td>${fmtT(s.from)}</td><td>${fmtT(s.until)}</td><td>${s.override ? t("overrides") : ""}</td></tr>`).join("");
  } catch (e) { say(e.message, true); }
  el("rosterMeta").textContent = `${t("version")} ${rosterData.version} · ${t("updated")} ${fmtT(rosterData.updated)} ${rosterData.updated_by} ${rosterData.note || ""}` +
    (me.role === "admin" ? "" : " · " + t("readonly"));
  const admin = me.role === "admin";
  const dis = admin ? "" : " disabled";
  el("rosterTeams").innerHTML = teams.map((x, i) => `<div class="team" data-i="${i}"><b>${h(x.id)}</b>
    <label>${t("name")} <input class="tName" value="${h(x.name)}"${dis}></label>
    <label>${t("members")} <input class="tMembers" size="30" value="${h(x.rotation.members.join(", "))}"${dis}></label>
    <label>${t("start")} <input type="datetime-local" class="tStart" value="${localInput(x.rotation.start)}"${dis}></label>
    <label>${t("shiftLen")} <input class="tShift" size="6" value="${h(x.rotation.shift)}"${dis}></label>
    <label>${t("tz")} <input class="tTZ" size="14" value="${h(x.rotation.time_zone)}"${dis}></label>
    <div>${t("overrides")}:</div><div class="ovrs">${(x.overrides || []).map(o => ovrHTML(o, dis)).join("")}</div>
    ${admin ? `<button data-addovr="${i}">${t("add")}</button>` : ""}</div>`).join("");
  el("rosterSave").classList.toggle("hidden", !admin);
}

function ovrHTML(o, dis) {
  return `<div class="ovr"><input class="oPerson" size="10" placeholder="${t("person")}" value="${h(o.person)}"${dis}>
    ${t("from")} <input type="datetime-local" class="oFrom" value="${localInput(o.from)}"${dis}> ${t("to")} <input type="datetime-local" class="oTo" value="${localInput(o.to)}"${dis}>
    <input class="oNote" placeholder="${t("note")}" value="${h(o.note)}"${dis}>${dis ? "" : ` <button data-rmovr>${t("remove")}</button>`}</div>`;
}

async function saveRoster() {
  const teams = rosterData.teams.map((x, i) => {
    const box = document.querySelector(`#rosterTeams .team[data-i="${i}"]`);
    const v = c => box.querySelector(c).value;
    return {id: x.id, name: v(".tName"), rotation: {members: v(".tMembers").split(/[,，\s]+/).filter(Boolean), start: iso(v(".tStart")),
      shift: v(".tShift"), time_zone: v(".tTZ")},
      overrides: [...box.querySelectorAll(".ovr")].map(o => ({person: o.querySelector(".oPerson").value.trim(), from: iso(o.querySelector(".oFrom").value),
        to: iso(o.querySelector(".oTo").value), note: o.querySelector(".oNote").value}))};
  });
  try {
    const r = await call("PUT", "/api/v1/roster", {version: rosterData.version, teams, note: el("rosterNote").value});
    say(`${t("saved")} (${t("version")} ${r.version})`);
    el("rosterNote").value = "";
    loadRoster();
  } catch (e) { say(e.message, true); }
}

// ---- start ----------------------------------------------------------------------

async function start() {
  i18n();
  el("lang").onclick = () => { lng = lng === "zh" ? "en" : "zh"; localStorage.setItem("lang", lng); i18n(); if (me) tab(localStorage.getItem("dutyTab") || "handover"); };
  el("logout").onclick = async () => { await fetch("/logout", {method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin"}); location.reload(); };
  el("login").onsubmit = async e => {
    e.preventDefault();
    const f = new FormData(e.target);
    try { await call("POST", "/login", {username: f.get("username"), password: f.get("password")}); location.reload(); }
    catch (err) { el("loginerr").textContent = err.message; }
  };
  setInterval(() => { el("clock").textContent = new Date().toLocaleTimeString(lng === "zh" ? "zh-CN" : "en-GB", {hour12: false}); }, 1000);
  try { me = await call("GET", "/api/v1/me"); }
  catch (e) { el("login").classList.remove("hidden"); return; }
  el("user").textContent = `${me.name || me.username} (${label("role", me.role)})`;
  el("tabs").classList.remove("hidden");
  el("tabs").onclick = e => { const b = e.target.closest("button[data-tab]"); if (b) tab(b.dataset.tab); };
  el("hoDraft").onclick = makeDraft;
  el("hoSign").onclick = sign;
  el("hoSearch").onclick = searchHandovers;
  el("hoPending").onclick = e => { const b = e.target.closest("button[data-accept]"); if (b) accept(b.dataset.accept, b.closest("[data-handover]")); };
  el("entry").onsubmit = writeEntry;
  el("logSearch").onclick = searchLog;
  el("logDate").value = ""; // the site's today (see searchLog)
  el("rosterTeams").onclick = e => {
    const add = e.target.closest("button[data-addovr]");
    if (add) { add.previousElementSibling.insertAdjacentHTML("beforeend", ovrHTML({person: "", from: new Date().toISOString(), to: new Date(Date.now() + 8 * 3600e3).toISOString(), note: ""}, "")); return; }
    const rm = e.target.closest("button[data-rmovr]");
    if (rm) rm.closest(".ovr").remove();
  };
  el("rosterSaveBtn").onclick = saveRoster;
  await loadRoster();
  tab(qs.get("tab") || localStorage.getItem("dutyTab") || "handover");
}

start();
