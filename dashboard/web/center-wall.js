// The monitoring center's multi-site wall (gateway center): each site's
// status, active alarms by priority, open incidents, open work orders past
// a deadline (SLA breaches), offline sites flagged with since when; the
// alarms of every site in the viewer's scope; a link to the KPIs and the
// monthly report (center-kpis.html). Data: GET /api/v1/sites and /api/v1/alarms, every 2 s,
// with the wall token (?token=) or the user's login (their sites only).
"use strict";
const params = new URLSearchParams(location.search);
let lang = (params.get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
const tr = k => { const m = CATALOG[k]; if (m) return m[lang] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
const trf = (k, ...args) => { let i = 0; return tr(k).replace(/%[sd]/g, () => String(args[i++])); };
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const $ = id => document.getElementById(id);
const token = params.get("token") || "";
const prios = ["critical", "high", "medium", "low"];
const when = t => t ? new Date(t).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {hour12: false}) : "";

function applyI18n() {
  document.documentElement.lang = lang;
  document.title = tr(document.body.dataset.title);
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = tr(el.dataset.i18n); });
  document.querySelectorAll("[data-ph]").forEach(el => { el.placeholder = tr(el.dataset.ph); });
}

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin"});
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) { const err = new Error((data && data.error) || r.statusText); err.status = r.status; throw err; }
  return data;
}

function siteCard(s) {
  const total = prios.reduce((n, p) => n + (s.active_alarms[p] || 0), 0);
  const cls = ["sitecard", s.online ? "" : "offline", total ? "alarming" : ""].join(" ");
  const state = s.online ? tr("center.online") : tr("center.offline") + (s.offline_since ? " · " + trf("center.offline_since", when(s.offline_since)) : "");
  const alarms = total ? prios.filter(p => s.active_alarms[p]).map(p => `<span class="prio ${p}">${esc(tr("priority." + p))} ${s.active_alarms[p]}</span>`).join("")
    : `<span>${esc(tr("center.no_alarms"))}</span>`;
  const missing = s.head_seq > s.complete_to ? `<div>${esc(trf("center.missing", s.head_seq - s.complete_to))}</div>` : "";
  const resynced = s.resynced_at ? `<div>${esc(trf("center.resynced", when(s.resynced_at)))}</div>` : "";
  const drill = s.url ? `<a href="${esc(s.url)}">${esc(tr("center.drill"))}</a>` : "";
  return `<div class="${cls}" data-site="${esc(s.site)}"><h3>${esc(s.name || s.site)}</h3>
    <div class="state">${esc(state)}</div><div>${esc(trf("center.last_seen", when(s.last_seen)))}</div>
    <div>${esc(tr("center.active_alarms"))}: ${alarms}</div>
    <div>${esc(tr("center.open_incidents"))}: <b>${s.open_incidents}</b></div>
    <div class="${s.sla_breaches ? "breaches" : ""}">${esc(tr("center.sla_breaches"))}: <b>${s.sla_breaches || 0}</b></div>${missing}${resynced}${drill}</div>`;
}

const siteNames = new Map();
function alarmRow(a) {
  return `<tr data-alarm="${esc(a.id)}"><td>${esc(siteNames.get(a.site) || a.site)}</td><td><span class="prio ${esc(a.priority)}">${esc(tr("priority." + a.priority))}</span></td>
    <td>${esc((lang === "zh" && a.name_zh) || a.name || a.rule)}</td><td>${esc(a.asset)}</td><td>${esc(tr("state." + a.state))}</td><td>${esc(when(a.since))}</td></tr>`;
}

let failures = 0;
async function refresh() {
  try {
    const [sites, alarms] = await Promise.all([api("GET", "/api/v1/sites"), api("GET", "/api/v1/alarms?state=active")]);
    $("loginform").classList.add("hidden");
    sites.forEach(s => siteNames.set(s.site, s.name || s.site));
    $("sites").innerHTML = sites.length ? sites.map(siteCard).join("") : `<p>${esc(tr("center.no_sites"))}</p>`;
    alarms.sort((a, b) => prios.indexOf(a.priority) - prios.indexOf(b.priority) || String(b.since).localeCompare(String(a.since)));
    $("alarms").innerHTML = alarms.map(alarmRow).join("");
    $("conn").textContent = tr("live");
    failures = 0;
  } catch (e) {
    if (e.status === 401) $("loginform").classList.remove("hidden");
    $("conn").textContent = ++failures > 1 ? tr("lost") : tr("connecting");
  }
}

$("loginform").addEventListener("submit", async ev => {
  ev.preventDefault();
  try {
    await api("POST", "/login", {username: $("user").value, password: $("pass").value});
    $("loginerr").textContent = "";
    refresh();
  } catch (e) { $("loginerr").textContent = tr("center.login_failed"); }
});

$("kpilink").href = "/static/center-kpis.html" + (token ? "?token=" + encodeURIComponent(token) : ""); // the KPIs and monthly report
applyI18n();
refresh();
setInterval(refresh, 2000);
setInterval(() => { $("clock").textContent = new Date().toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", {hour12: false}); }, 1000);
