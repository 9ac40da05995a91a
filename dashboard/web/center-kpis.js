// The center's service figures per site and in total (GET
// /api/v1/center/kpis?month=…), the user's sites only; the monthly report
// as a page or a workbook (GET /api/v1/center/reports/monthly). Reached
// from the center's wall; reads as it does (?token= or the user's session).
"use strict";
const params = new URLSearchParams(location.search);
let lang = (params.get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
const tr = k => { const m = CATALOG[k]; if (m) return m[lang] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
const trf = (k, ...args) => { let i = 0; return tr(k).replace(/%[sd]/g, () => String(args[i++])); };
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const $ = id => document.getElementById(id);
const columns = [["handling_rate", "kpi.handling_rate"], ["callback_rate", "kpi.callback_rate"], ["good_order", "kpi.availability"],
  ["resolution_on_time_rate", "kpi.resolution_on_time_rate"], ["response_on_time_rate", "kpi.response_on_time_rate"],
  ["arrival_on_time_rate", "kpi.arrival_on_time_rate"], ["mean_time_to_arrive", "kpi.mean_time_to_arrive"]];

function applyI18n() {
  document.documentElement.lang = lang;
  document.title = tr(document.body.dataset.title);
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = tr(el.dataset.i18n); });
}

function value(k) {
  if (k.value === null || k.value === undefined) return "—";
  if (k.unit === "seconds") { const s = Math.round(k.value); return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`; }
  return (k.value * 100).toFixed(1) + "%";
}
function target(k) {
  if (k.unit === "seconds") { const s = Math.round(k.target); return "≤ " + (s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`); }
  return "≥ " + (k.target * 100).toFixed(1) + "%";
}
function cls(k) { return k.met === null || k.met === undefined ? "none" : k.met ? "met" : "unmet"; }
function verdict(k) { return tr(k.met === null || k.met === undefined ? "center.kpis.no_data" : k.met ? "center.kpis.met" : "center.kpis.unmet"); }

function row(r, total) {
  const name = total ? tr("center.kpis.total") : (r.name || r.site);
  const cells = columns.map(([id]) => { const k = r.kpis[id]; return `<td class="n ${cls(k)}" data-kpi="${id}" title="${esc(verdict(k))} (${k.of})">${esc(value(k))}</td>`; }).join("");
  return `<tr class="${total ? "total" : ""}" data-site="${esc(total ? "" : r.site)}"><td>${esc(name)}</td><td>${esc(total ? "" : r.region || "")}</td>
    <td class="n">${r.kpis.workorders}</td>${cells}<td class="n">${r.late}</td></tr>`;
}

const token = params.get("token") || ""; // the wall token, as the wall passes it on

async function get(path) {
  const headers = token ? {Authorization: "Bearer " + token} : {};
  const r = await fetch(path, {headers, credentials: "same-origin"});
  if (!r.ok) { let msg = r.statusText; try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ } const err = new Error(msg); err.status = r.status; throw err; }
  return r;
}

async function load() {
  const month = $("month").value;
  try {
    const m = await (await get("/api/v1/center/kpis" + (month ? "?month=" + encodeURIComponent(month) : ""))).json();
    if (!month) $("month").value = m.month;
    $("head").innerHTML = `<tr><th>${esc(tr("center.site"))}</th><th>${esc(tr("center.kpis.region"))}</th><th class="n">${esc(tr("center.kpis.orders"))}</th>` +
      columns.map(([, key]) => `<th class="n">${esc(tr(key))}</th>`).join("") + `<th class="n">${esc(tr("center.kpis.late"))}</th></tr>`;
    const targets = `<tr class="target"><td>${esc(tr("center.kpis.target"))}</td><td></td><td></td>` + columns.map(([id]) => `<td class="n">${esc(target(m.total.kpis[id]))}</td>`).join("") + "<td></td></tr>";
    $("rows").innerHTML = targets + m.sites.map(r => row(r, false)).join("") + row(m.total, true);
    $("definitions").textContent = trf("center.kpis.definitions", m.time_zone) + (m.partial ? " " + tr("center.report.partial") : "");
    $("goodnote").textContent = tr(m.good_order_reported ? "center.kpis.good_order_days" : "center.kpis.good_order_note");
    $("undecodable").textContent = m.undecodable ? trf("center.report.undecodable", m.undecodable) : "";
    $("err").textContent = "";
    $("conn").textContent = tr("live");
  } catch (e) {
    $("err").textContent = e.status === 401 ? tr("center.login_needed") : e.message;
    $("conn").textContent = tr("lost");
  }
}

async function download(format) {
  const month = $("month").value;
  try {
    const r = await get(`/api/v1/center/reports/monthly?format=${format}` + (month ? "&month=" + encodeURIComponent(month) : ""));
    const url = URL.createObjectURL(await r.blob());
    if (format === "html") { window.open(url, "_blank"); } else {
      const a = document.createElement("a"); a.href = url; a.download = `center-monthly-report-${month}.xlsx`; a.click();
    }
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) { $("err").textContent = e.message; }
}

$("month").value = /^\d{4}-\d\d$/.test(params.get("month") || "") ? params.get("month") : "";
document.querySelector("header a").href = "/" + (token ? "?token=" + encodeURIComponent(token) : "");
$("month").addEventListener("change", load);
$("html").addEventListener("click", () => download("html"));
$("xlsx").addEventListener("click", () => download("xlsx"));
applyI18n();
load();
setInterval(load, 60000);
