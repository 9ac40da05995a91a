// Duty-room screens: the wall display (read-only) and the operator console.
// No framework, no CDN: everything is embedded in the gateway binary.
"use strict";

// The message catalogue is /static/i18n.js (internal/i18n/catalog.json),
// loaded before this file: CATALOG = {key: {zh, en}}. Console pages use the
// same helpers: tr(key), trf(key, ...args), pick(zh, en), label(prefix, id).
const screen = document.body.dataset.screen;
const params = new URLSearchParams(location.search);
let lang = (params.get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
// tr: an unknown key shows as it is (the DOM test catches it); an unknown id
// under a prefix (a site's own category) shows the id.
const tr = k => { const m = CATALOG[k]; if (m) return m[lang] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
const trf = (k, ...args) => { let i = 0; return tr(k).replace(/%[sd]/g, () => String(args[i++])); };
const pick = (zh, en) => (lang === "zh" && zh) || en || zh || "";
const label = (prefix, id) => id ? tr(prefix + "." + id) : "";
const token = params.get("token") || "";
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const $ = id => document.getElementById(id);

const state = {site: "", demo: false, assets: new Map(), alarms: new Map(), incidents: new Map(), workorders: new Map(), kpis: null, lastMsg: 0, connected: false};
let muted = localStorage.getItem("muted") === "1";

function applyI18n() {
  document.documentElement.lang = lang;
  if (document.body.dataset.title) document.title = tr(document.body.dataset.title);
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = tr(el.dataset.i18n); });
  document.querySelectorAll("[data-ph]").forEach(el => { el.placeholder = tr(el.dataset.ph); });
  if ($("mute")) $("mute").textContent = muted ? tr("unmute") : tr("mute");
}

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin"});
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

// ---- live feed -------------------------------------------------------------
let ws, backoff = 500;
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(proto + "//" + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : ""));
  ws.onopen = () => { backoff = 500; };
  ws.onmessage = ev => {
    state.lastMsg = Date.now();
    state.connected = true;
    const m = JSON.parse(ev.data);
    handle(m);
  };
  ws.onclose = () => {
    state.connected = false;
    status();
    setTimeout(connect, backoff); // reconnect; the server sends a fresh snapshot
    backoff = Math.min(backoff * 2, 10000);
  };
}

function handle(m) {
  switch (m.type) {
    case "snapshot":
      state.site = m.site_name || m.site;
      state.onDuty = m.on_duty || [];
      state.demo = !!m.demo;
      state.assets = new Map(m.assets.map(a => [a.id, a]));
      state.alarms = new Map(m.alarms.map(a => [a.id, a]));
      state.incidents = new Map(m.incidents.map(i => [i.id, i]));
      state.workorders = new Map(m.workorders.map(w => [w.id, w]));
      state.kpis = m.kpis;
      render();
      break;
    case "points":
      for (const p of m.points) {
        const a = state.assets.get(p.asset);
        if (a) a.fields[p.field] = {value: p.value, unit: p.unit, quality: p.quality, time: p.time};
      }
      renderSoon();
      break;
    case "alarm": {
      const a = m.data.alarm, t = m.data.transition;
      const wasNew = !state.alarms.has(a.id) || state.alarms.get(a.id).state === "normal";
      state.alarms.set(a.id, a);
      if (screen === "console" && t.to === "unacknowledged" && a.priority === "critical" && wasNew) beep();
      renderSoon();
      if (screen === "console") refreshConsoleSoon();
      break;
    }
    case "incident":
      state.incidents.set(m.data.incident.id, m.data.incident);
      renderSoon();
      if (screen === "console") refreshConsoleSoon();
      break;
    case "workorder":
      state.workorders.set(m.data.workorder.id, m.data.workorder);
      renderSoon();
      if (screen === "console") refreshConsoleSoon();
      break;
  }
}

function status() {
  const stale = !state.connected || Date.now() - state.lastMsg > 12000;
  $("banner").classList.toggle("hidden", !stale);
  $("conn").textContent = stale ? tr("lost") : tr("live");
}
setInterval(() => {
  status();
  const d = new Date();
  $("clock").textContent = d.toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", {hour12: false});
  if (screen === "wall") renderTimers();
}, 500);

let pending = false;
function renderSoon() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

// ---- wall display ----------------------------------------------------------
const rank = {critical: 0, high: 1, medium: 2, low: 3};
const activeStates = new Set(["unacknowledged", "acknowledged"]);

function assetState(id) {
  let worst = null, unacked = false;
  for (const a of state.alarms.values()) {
    if (a.asset !== id || !activeStates.has(a.state)) continue;
    if (worst === null || rank[a.priority] < rank[worst]) worst = a.priority;
    if (a.state === "unacknowledged") unacked = true;
  }
  if (worst) return {state: worst, unacked};
  const asset = state.assets.get(id);
  const bad = asset && Object.entries(asset.fields).some(([k, f]) => f.quality !== "good" || (k === "comm_lost" && f.value === true) || (k === "online" && f.value === false));
  return {state: bad ? "stale" : "normal", unacked: false};
}

function fmt(f) {
  if (!f || f.value === null || f.value === undefined) return "—";
  if (typeof f.value === "number") return (Math.round(f.value * 100) / 100) + (f.unit ? " " + f.unit : "");
  return String(f.value);
}

function keyValue(a) {
  const f = a.fields;
  switch (a.kind) {
    case "pump_room": return fmt(f.outlet_pressure) + (f.pump1_running && f.pump1_running.value ? " ▶" : " ■");
    case "distribution_panel": return (f.mains_present && f.mains_present.value === false ? "⚡✕ " : "") + fmt(f.voltage_a);
    case "water_sensor": return f.leak ? tr(f.leak.value ? "val.wet" : "val.dry") : "—";
    case "elevator": return (f.floor ? trf("val.floor", fmt(f.floor)) : "—") + (f.trapped && f.trapped.value > 0 ? " " + trf("val.trapped", f.trapped.value) : "");
    case "lighting": return f.on ? tr(f.on.value ? "val.on" : "val.off") : "—";
    case "sump_pump": return fmt(f.pit_level) + (f.fault && f.fault.value ? " ✕" : f.running && f.running.value ? " ▶" : " ■");
  }
  return "";
}

function mmss(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
}

// assetName: an asset's name from the snapshot, else its id.
function assetName(id) {
  const a = id && state.assets.get(id);
  return (a && a.name) || id || "";
}

// woCategories: what a resident's call can be (the service standard's
// rules.categories of the demo; the catalogue names them).
const woCategories = ["plumbing", "electrical", "elevator", "fire_safety", "lighting", "access_control", "cctv", "doors_windows", "facilities", "drains", "home_repair", "cleaning", "landscaping", "other"];

// The console's choice lists, in the page's language.
function fillSelects() {
  const pr = document.querySelector("#newwo select[name=priority]");
  if (pr) {
    const v = pr.value || "medium";
    pr.innerHTML = ["critical", "high", "medium", "low"].map(p => `<option value="${p}">${esc(label("priority", p))}</option>`).join("");
    pr.value = v;
  }
  const cat = document.querySelector("#newwo select[name=category]");
  if (cat) {
    const v = cat.value || "plumbing";
    cat.innerHTML = woCategories.map(c => `<option value="${esc(c)}">${esc(label("cat", c))}</option>`).join("");
    cat.value = v;
  }
}

function render() {
  $("site") && ($("site").textContent = state.site);
  // A demo gateway (demo: true, published secrets, simulated equipment) says so on every screen.
  if ($("demo")) $("demo").classList.toggle("hidden", !state.demo);
  if (screen === "wall") renderWall(); else renderConsole();
  status();
}

function since(t) {
  const d = new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? "—" : d.toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", {hour12: false});
}

// assetWhere: an asset's name and where it is, from the snapshot.
function assetWhere(id) {
  const a = id && state.assets.get(id);
  if (!a) return {name: id || "", where: ""};
  return {name: a.name || a.id, where: [a.floor, a.location].filter(Boolean).join(" ")};
}

function renderWall() {
  const active = [...state.alarms.values()].filter(a => activeStates.has(a.state))
    .sort((a, b) => (a.state === "unacknowledged" ? 0 : 1) - (b.state === "unacknowledged" ? 0 : 1) || rank[a.priority] - rank[b.priority] || (a.since < b.since ? 1 : -1));
  const counts = {critical: [0, 0], high: [0, 0], medium: [0, 0], low: [0, 0]};
  for (const a of active) {
    counts[a.priority][0]++;
    if (a.state === "unacknowledged") counts[a.priority][1]++;
  }
  $("counts").innerHTML = Object.entries(counts).map(([p, [n, u]]) =>
    `<span class="count ${p} ${n ? "active" : ""} ${u ? "flash" : ""}" data-priority="${p}" data-unacked="${u}"><b class="n">${n}</b> ${esc(label("priority", p))}</span>`).join("");
  const shown = active.slice(0, 14);
  $("alarmlist").innerHTML = shown.length ? `<table class="alarms"><tr><th>${tr("priority")}</th><th>${tr("what")}</th><th>${tr("where")}</th><th>${tr("since")}</th><th>${tr("acked_by")}</th></tr>` +
    shown.map(a => {
      const w = assetWhere(a.asset);
      return `<tr data-alarm="${esc(a.id)}" class="${a.state === "unacknowledged" ? "flash unacked" : "acked"}"><td class="p-${a.priority}">${esc(label("priority", a.priority))}</td>` +
        `<td><b>${esc(pick(a.name_zh, a.name))}</b>${a.value && a.value !== "true" && a.value !== "false" ? ` <span class="muted">${esc(a.value)}</span>` : ""}</td><td>${esc(w.name)}<br><span class="muted">${esc(w.where)}</span></td>` +
        `<td class="num">${since(a.active_since || a.since)}</td><td>${a.state === "unacknowledged" ? `<span class="overdue">${tr("unacked")}</span>` : esc(a.ack_by || label("state", a.state))}</td></tr>`;
    }).join("") + `</table>` + (active.length > shown.length ? `<div class="muted">${esc(trf("more", active.length - shown.length))}</div>` : "")
    : `<div class="allclear">${tr("normal")}</div>`;
  const byBuilding = new Map();
  for (const a of state.assets.values()) {
    const b = a.building || "—";
    if (!byBuilding.has(b)) byBuilding.set(b, []);
    byBuilding.get(b).push(a);
  }
  $("buildings").innerHTML = [...byBuilding.entries()].map(([b, list]) => `<div class="building"><h3>${esc(b)}</h3><div class="tiles">` +
    list.map(a => {
      const s = assetState(a.id);
      return `<div class="asset ${s.unacked ? "flash" : ""}" data-asset="${esc(a.id)}" data-state="${s.state}" title="${esc(a.location)}">` +
        `<div class="name">${esc(a.name || a.id)}</div><div class="val">${esc(keyValue(a))}</div></div>`;
    }).join("") + `</div></div>`).join("");
  const open = [...state.incidents.values()].filter(i => i.status === "open").sort((a, b) => a.started < b.started ? 1 : -1);
  $("incidents").innerHTML = open.length ? open.map(i => {
    const steps = (i.steps || []).filter(s => s.status === "active").sort((a, b) => a.due < b.due ? -1 : 1);
    const next = steps[0];
    const w = assetWhere(i.asset);
    return `<div class="incident" data-incident="${i.id}"><div class="head">${i.drill ? `<span class="drill">${tr("drill_tag")}</span> ` : ""}<b>${esc(i.name)}</b> <span class="muted">${esc(w.name)} ${esc(i.location && !w.name ? i.location : "")}</span></div>` +
      (next ? `<div class="step">${esc(pick(next.title_zh, next.title))}</div><div class="stepmeta"><span class="role">${esc(label("role", next.role))}${onDutyFor(next.role)}</span>` +
        `<span class="due" data-started="${esc(next.started)}" data-due="${esc(next.due)}"></span>` + (steps.length > 1 ? ` <span class="muted">+${steps.length - 1}</span>` : "") + `</div>` : "") +
      lastDone(i) + `</div>`;
  }).join("") : `<span class="muted">${tr("none")}</span>`;
  // #onduty (今日值班) is duty-wall.js's: the duty roster, refreshed every minute.
  const wos = [...state.workorders.values()].filter(w => !["closed", "cancelled", "resolved", "callback_done"].includes(w.status))
    .sort((a, b) => slaOf(a).due < slaOf(b).due ? -1 : 1).slice(0, 10);
  $("workorders").innerHTML = wos.length ? `<table>${wos.map(w => { const s = slaOf(w); return `<tr data-workorder="${w.id}"><td>#${w.id}</td><td class="p-${w.priority}">${esc(label("priority", w.priority))}</td>` +
    `<td>${esc(label("cat", w.category))} · <span class="wostatus">${esc(label("wo", w.status))}</span>${w.assignee ? ` · <b class="by">${esc(w.assignee)}</b>` : ""}` +
    `${w.on_site_at && !w.on_site_at.startsWith("0001") ? ` <span class="onsite">${since(w.on_site_at)}</span>` : ""}<br><span class="muted">${esc(w.location)}</span></td><td class="due" data-sla="${esc(s.due)}" data-kind="${s.kind}"></td></tr>`; }).join("")}</table>` : `<span class="muted">${tr("none")}</span>`;
  const k = state.kpis;
  if (k) {
    const avail = Object.values(k.availability || {}).map(v => typeof v === "object" && v ? v.value : v).filter(v => typeof v === "number");
    const rows = [["kpi.handling_rate", k.handling_rate], ["kpi.callback_rate", k.callback_rate], ["kpi.resolution_on_time_rate", k.resolution_on_time_rate],
      ["kpi.availability", k.good_order || (avail.length ? Math.min(...avail) : null)]];
    $("kpis").innerHTML = rows.map(([key, v]) => {
      const m = kpiOf(v);
      return `<div class="kpi ${m.met === false ? "bad" : m.met === true ? "good" : ""}" data-kpi="${key}"><div class="v">${pct(m.value)}</div><div class="l">${tr(key)}</div>` +
        (m.target !== null ? `<div class="t">${tr("target")} ${pct(m.target)}${m.met === null ? "" : " · " + tr(m.met ? "met" : "not_met")}</div>` : "") + `</div>`;
    }).join("");
  }
  renderTimers();
  alarmSound(active.some(a => a.state === "unacknowledged" && (a.priority === "critical" || a.priority === "high")));
}

// lastDone: the step a person completed last, by whom and when.
function lastDone(i) {
  const done = (i.steps || []).filter(s => s.status === "done" && s.by && !["engine", "telemetry"].includes(s.by)).sort((a, b) => a.done < b.done ? 1 : -1)[0];
  return done ? `<div class="lastdone" data-step="${esc(done.id)}">✓ ${esc(pick(done.title_zh, done.title))} — <b class="by">${esc(done.by)}</b> ${since(done.done)}</div>` : "";
}

const pct = v => v === null || v === undefined ? "—" : Math.round(v * 1000) / 10 + "%";
// kpiOf reads a KPI either as a number or as {value, target, met}.
function kpiOf(v) {
  if (v && typeof v === "object") return {value: v.value ?? null, target: v.target ?? null, met: v.met ?? null};
  return {value: typeof v === "number" ? v : null, target: null, met: null};
}

// slaOf: the deadline a work order runs against now (response until accepted, then resolution).
function slaOf(w) {
  const accepted = w.accepted_at && !w.accepted_at.startsWith("0001");
  return accepted ? {due: w.resolution_due, kind: "resolve"} : {due: w.response_due, kind: "response"};
}

// onDutyFor: who is on duty in the team a role maps to, when the snapshot says.
function onDutyFor(role) {
  const o = (state.onDuty || []).find(x => (x.roles || []).includes(role));
  return o ? " · " + esc(o.name || o.person) : "";
}

function renderTimers() {
  const now = Date.now();
  document.querySelectorAll("#incidents .due").forEach(el => {
    const due = Date.parse(el.dataset.due), left = due - now;
    el.className = "due" + (left < 0 ? " overdue" : "");
    el.textContent = left < 0 ? tr("overdue") + " " + mmss(-left) : tr("left") + " " + mmss(left);
  });
  document.querySelectorAll("#workorders .due").forEach(el => {
    const due = Date.parse(el.dataset.sla), left = due - now;
    el.className = "due" + (left < 0 ? " overdue" : "");
    el.textContent = (left < 0 ? tr("overdue") + " " : "") + tr(el.dataset.kind === "resolve" ? "resolve" : "response") + " " + mmss(Math.abs(left));
  });
}

// ---- the wall's audible alarm ----------------------------------------------
// Browsers block audio until someone interacts with the page: the wall shows
// a "click to enable sound" banner until its AudioContext runs.
let wallAudio = null, soundTimer = null, soundWanted = false;
function alarmSound(on) {
  soundWanted = on;
  const ok = wallAudio && wallAudio.state === "running";
  $("sound").classList.toggle("hidden", !!ok);
  document.body.dataset.sound = on ? (ok ? "playing" : "blocked") : "quiet";
  if (on && ok && !soundTimer) {
    tone();
    soundTimer = setInterval(() => { if (soundWanted) tone(); }, 2000);
  } else if (!on && soundTimer) {
    clearInterval(soundTimer);
    soundTimer = null;
  }
}
function tone() {
  try {
    const o = wallAudio.createOscillator(), g = wallAudio.createGain();
    o.frequency.value = 880; o.connect(g); g.connect(wallAudio.destination);
    g.gain.setValueAtTime(0.25, wallAudio.currentTime); o.start(); o.stop(wallAudio.currentTime + 0.5);
  } catch (e) { /* no audio device */ }
}
function enableSound() {
  try {
    wallAudio = wallAudio || new AudioContext();
    wallAudio.resume().then(() => alarmSound(soundWanted)).catch(() => {});
  } catch (e) { /* no audio device */ }
}

// ---- console ---------------------------------------------------------------
const nextStatus = {opened: ["dispatched", "accepted", "cancelled"], dispatched: ["accepted", "cancelled"], accepted: ["on_site", "in_progress", "resolved"],
  on_site: ["in_progress", "resolved"], in_progress: ["resolved"], resolved: ["in_progress", "closed"], callback_done: ["closed"]}; // call-backs: /console/orders
let consoleData = {alarms: [], incidents: [], workorders: [], playbooks: []};
let refreshTimer = null;
function refreshConsoleSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshConsole, 150);
}

async function refreshConsole() {
  try {
    const [alarms, incidents, workorders] = await Promise.all([api("GET", "/api/v1/alarms"), api("GET", "/api/v1/incidents?status=open"), api("GET", "/api/v1/workorders?status=open")]);
    consoleData.alarms = alarms; consoleData.incidents = incidents; consoleData.workorders = workorders;
    await loadStepContacts(incidents);
    renderConsole();
  } catch (e) { console.error(e); }
}

// Whom a step says to call (the register's contacts; the car's 维保单位),
// fetched once per incident.
const stepContacts = new Map();
async function loadStepContacts(incidents) {
  for (const i of incidents) {
    if (stepContacts.has(i.id)) continue;
    try { stepContacts.set(i.id, Object.fromEntries((await api("GET", `/api/v1/incidents/${i.id}/contacts`)).map(s => [s.step, s.contacts]))); }
    catch (e) { stepContacts.set(i.id, {}); } // no register configured
  }
}
const callList = (i, s) => ((stepContacts.get(i.id) || {})[s.id] || []).map(c => ` <span class="contact">☎ ${esc(c.name)} <a href="tel:${esc(c.phone)}">${esc(c.phone)}</a></span>`).join("");

function renderConsole() {
  if (!$("alarms")) return;
  $("alarms").innerHTML = `<tr><th></th><th></th><th></th><th></th><th></th></tr>` + consoleData.alarms.map(a =>
    `<tr data-alarm="${esc(a.id)}" class="${a.state === "unacknowledged" ? "flash" : ""}"><td class="p-${a.priority}">${label("priority", a.priority)}</td>` +
    `<td><b>${esc(pick(a.name_zh, a.name))}</b><br><span class="muted">${esc(assetName(a.asset))} · ${esc(a.value)}</span><br><span class="muted">${esc(pick(a.instructions_zh, a.instructions))}</span></td>` +
    `<td>${esc(label("state", a.state))}${a.ack_by ? `<br><span class="muted">${esc(a.ack_by)}</span>` : ""}</td><td>${new Date(a.since).toLocaleTimeString()}</td><td>` +
    (a.state === "unacknowledged" || a.state === "returned_unacknowledged" ? `<button data-act="ack" data-id="${esc(a.id)}">${tr("ack")}</button> ` : "") +
    (a.state !== "shelved" ? `<button data-act="shelve" data-id="${esc(a.id)}">${tr("shelve")}</button> ` : `<button data-act="unshelve" data-id="${esc(a.id)}">${tr("unshelve")}</button> `) +
    `<button data-act="oos" data-id="${esc(a.id)}" data-on="${!a.out_of_service}">${tr(a.out_of_service ? "ins" : "oos")}</button></td></tr>`).join("");
  $("incidents").innerHTML = consoleData.incidents.map(i => `<div data-incident="${i.id}"><b>${i.drill ? `<span class="drill">${tr("drill_tag")}</span> ` : ""}#${i.id} ${esc(i.name)}</b> ${esc(assetName(i.asset))}` +
    `<ul class="steps">${i.steps.map(s => `<li class="st-${s.status}">${esc(pick(s.title_zh, s.title))} <span class="muted">(${esc(label("role", s.role))}${s.overdue ? ", " + tr("overdue") : ""})</span>${callList(i, s)} ` +
    (s.status === "active" || s.status === "waiting" ? `<button data-act="complete" data-incident="${i.id}" data-step="${esc(s.id)}">${tr("complete")}</button> <button data-act="skip" data-incident="${i.id}" data-step="${esc(s.id)}">${tr("skip")}</button>` : "") +
    `</li>`).join("")}</ul><button data-act="evidence" data-incident="${i.id}">${tr("evidence")}</button> <button data-act="close" data-incident="${i.id}">${tr("close")}</button></div>`).join("") || `<span class="muted">${tr("none")}</span>`;
  $("workorders").innerHTML = consoleData.workorders.map(w => `<tr data-workorder="${w.id}"><td>#${w.id}</td><td class="p-${w.priority}">${label("priority", w.priority)}</td><td>${esc(label("cat", w.category))}<br><span class="muted">${esc(w.description)}</span></td>` +
    `<td>${esc(label("wo", w.status))}</td><td>${(nextStatus[w.status] || []).map(s => `<button data-act="wo" data-id="${w.id}" data-to="${s}">${esc(label("wo.do", s))}</button>`).join(" ")}</td></tr>`).join("");
}

async function act(el) {
  const a = el.dataset.act;
  try {
    if (a === "ack") {
      const note = prompt(tr("note"), "");
      if (note === null) return;
      await api("POST", `/api/v1/alarms/${encodeURIComponent(el.dataset.id)}/ack`, {note});
    } else if (a === "shelve") {
      const m = prompt(tr("minutes"), "30");
      if (m === null) return;
      await api("POST", `/api/v1/alarms/${encodeURIComponent(el.dataset.id)}/shelve`, {minutes: parseInt(m, 10), note: tr("shelve")});
    } else if (a === "complete" || a === "skip") {
      const note = prompt(tr("note"), "");
      if (note === null) return;
      await api("POST", `/api/v1/incidents/${el.dataset.incident}/steps/${el.dataset.step}/${a}`, {note});
    } else if (a === "unshelve") {
      await api("POST", `/api/v1/alarms/${encodeURIComponent(el.dataset.id)}/unshelve`, {});
    } else if (a === "oos") {
      const note = prompt(tr("note"), "");
      if (note === null) return;
      await api("POST", `/api/v1/alarms/${encodeURIComponent(el.dataset.id)}/out-of-service`, {on: el.dataset.on === "true", note});
    } else if (a === "evidence") {
      const text = prompt(tr("evidenceq"), "");
      if (!text) return;
      await api("POST", `/api/v1/incidents/${el.dataset.incident}/evidence`, {text});
    } else if (a === "close") {
      const note = prompt(tr("note"), "");
      if (note === null) return;
      await api("POST", `/api/v1/incidents/${el.dataset.incident}/close`, {note});
    } else if (a === "wo") {
      await api("POST", `/api/v1/workorders/${el.dataset.id}/transition`, {to: el.dataset.to});
    }
    refreshConsole();
  } catch (e) { alert(e.message); }
}

let audio = null;
function beep() {
  if (muted) return;
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; o.connect(g); g.connect(audio.destination);
    g.gain.setValueAtTime(0.2, audio.currentTime); o.start(); o.stop(audio.currentTime + 0.6);
  } catch (e) { /* no audio device */ }
}

async function startConsole() {
  document.addEventListener("click", e => { const el = e.target.closest("button[data-act]"); if (el) act(el); });
  $("mute").onclick = () => { muted = !muted; localStorage.setItem("muted", muted ? "1" : "0"); applyI18n(); };
  $("lang").onclick = () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("lang", lang); applyI18n(); renderConsole(); fillSelects(); };
  $("logout").onclick = async () => { await fetch("/logout", {method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin"}); location.reload(); };
  $("login").onsubmit = async e => {
    e.preventDefault();
    const f = new FormData(e.target);
    try { await api("POST", "/login", {username: f.get("username"), password: f.get("password")}); location.reload(); }
    catch (err) { $("loginerr").textContent = err.message; }
  };
  $("newwo").onsubmit = async e => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await api("POST", "/api/v1/workorders", {category: f.get("category"), priority: f.get("priority"), location: f.get("location"),
        reporter: [f.get("reporter"), f.get("phone")].filter(Boolean).join(" "), description: f.get("description")});
      e.target.reset();
      refreshConsole();
    } catch (err) { alert(err.message); }
  };
  $("drillgo").onclick = async () => {
    try { await api("POST", "/api/v1/incidents", {playbook: $("drillpb").value, asset: $("drillasset").value, drill: true}); refreshConsole(); }
    catch (e) { alert(e.message); }
  };
  try {
    const me = await api("GET", "/api/v1/me");
    $("user").textContent = me.name + "（" + label("role", me.role) + "）";
  } catch (e) {
    $("login").classList.remove("hidden");
    return;
  }
  $("app").classList.remove("hidden");
  const [pbs, assets] = await Promise.all([api("GET", "/api/v1/playbooks"), api("GET", "/api/v1/assets")]);
  $("drillpb").innerHTML = pbs.map(p => `<option value="${esc(p.ID || p.id)}">${esc(p.Name || p.name)}</option>`).join("");
  $("drillasset").innerHTML = `<option value=""></option>` + assets.map(a => `<option value="${esc(a.id)}">${esc(a.name || a.id)}</option>`).join("");
  for (const a of assets) if (!state.assets.has(a.id)) state.assets.set(a.id, a);
  fillSelects();
  await refreshConsole();
  connect();
}

applyI18n();
if (screen === "wall") {
  if (params.get("wall") === "4") document.body.classList.add("videowall");
  $("sound").onclick = enableSound;
  document.addEventListener("click", () => { if (!wallAudio || wallAudio.state !== "running") enableSound(); });
  connect();
} else if (screen === "console") startConsole();
