// The work-order register and service figures (console page /console/orders).
// Every word is the catalogue's (/static/i18n.js, loaded first): ord.<key>
// and the shared ones (statuses, priorities, categories, KPIs).
"use strict";
const $ = id => document.getElementById(id);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const lang = (new URLSearchParams(location.search).get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
const tr = k => { const m = CATALOG[k]; if (m) return m[lang] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
const trf = (k, ...args) => { let i = 0; return tr(k).replace(/%[sd]/g, () => String(args[i++])); };
const label = (prefix, id) => id ? tr(prefix + "." + id) : "";
const pick = (zh, en) => (lang === "zh" && zh) || en || zh || "";
const pct = v => v === null || v === undefined ? "—" : Math.round(v * 1000) / 10 + "%";
const secs = v => v === null || v === undefined ? "—" : trf("ord.minsec", Math.floor(v / 60), Math.round(v % 60));
// who: a person's name as it is; the gateway's own actors ("engine",
// "playbook <id>") in words, with the plan's name.
const playbookNames = new Map();
// category id → its configured name (name_zh / name); the catalogue's word
// for the built-in ids only when the site has no list.
const catNames = new Map();
const catName = id => catNames.get(id) || label("cat", id);
const who = x => !x ? "" : x === "engine" ? tr("ord.by_engine") : x.startsWith("playbook ") ? tr("ord.by_playbook") + " " + (playbookNames.get(x.slice(9)) || x.slice(9)) : x;
const when = t => !t || t.startsWith("0001") ? "" : new Date(t).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});

function applyI18n() {
  document.documentElement.lang = lang;
  document.title = tr("title.orders");
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = tr(el.dataset.i18n); });
  document.querySelectorAll("[data-ph]").forEach(el => { el.placeholder = tr(el.dataset.ph); });
}

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin"});
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  if (!r.ok) { const e = new Error((data && data.error) || r.statusText); e.status = r.status; throw e; }
  return data;
}

// The next steps a person takes from each status (回访 records the outcome):
// [the status (or "callback"), the button's key].
const actions = {opened: [["accepted", "wo.do.accepted"]], dispatched: [["accepted", "wo.do.accepted"]],
  accepted: [["on_site", "ord.do.on_site"], ["in_progress", "wo.do.in_progress"], ["resolved", "wo.do.resolved"]],
  on_site: [["in_progress", "wo.do.in_progress"], ["resolved", "wo.do.resolved"]], in_progress: [["resolved", "wo.do.resolved"]],
  resolved: [["callback", "wo.do.callback_done"], ["closed", "ord.do.close_nocb"]], callback_done: [["closed", "wo.do.closed"]]};

const kpiNames = [["handling_rate", "kpi.handling_rate"], ["callback_rate", "kpi.callback_rate"], ["good_order", "ord.kpi.good_order"],
  ["resolution_on_time_rate", "kpi.resolution_on_time_rate"], ["arrival_on_time_rate", "ord.kpi.arrival_on_time_rate"], ["mean_time_to_arrive", "ord.kpi.mean_time_to_arrive"]];

async function refresh() {
  try {
    const [k, orders, review] = await Promise.all([api("GET", "/api/v1/kpis"), api("GET", "/api/v1/workorders?status=open"), api("GET", "/api/v1/workorders/review")]);
    $("okpis").innerHTML = kpiNames.map(([id, key]) => {
      const x = k[id] || {};
      const v = x.unit === "seconds" ? secs(x.value) : pct(x.value), t = x.unit === "seconds" ? "≤ " + secs(x.target) : "≥ " + pct(x.target);
      const cls = x.met === true ? " met" : x.met === false ? " unmet" : "";
      return `<div class="kpi${cls}" data-kpi="${id}"><div class="v">${v}</div><div class="l">${tr(key)} <span class="muted">${tr("target")} ${t}</span></div></div>`;
    }).join("");
    $("olist").innerHTML = `<tr><th>#</th><th>${tr("ord.type")}</th><th>${tr("ord.cat_where")}</th><th>${tr("ord.caller")}</th><th>${tr("status")}</th><th>${tr("ord.due")}</th><th></th></tr>` + orders.map(w =>
      `<tr data-workorder="${w.id}"><td>#${w.id}</td><td>${esc(label("ord.type", w.type))}</td><td>${esc(catName(w.category))}<br><span class="muted">${esc(w.room || w.location)} ${esc(w.description)}</span></td>` +
      `<td>${esc(w.caller_name)} ${esc(w.caller_phone)}<br><span class="muted">${[w.first_responsible ? tr("ord.first") + " " + esc(who(w.first_responsible)) : "", w.assignee ? tr("ord.assignee") + " " + esc(who(w.assignee)) : ""].filter(Boolean).join(" · ")}</span></td>` +
      `<td>${esc(label("wo", w.status))}${w.reworks ? ` <span class="overdue">${esc(trf("ord.reworks", w.reworks))}</span>` : ""}</td>` +
      `<td>${w.status === "resolved" ? tr("ord.due_callback") + " " + when(w.callback_due) : (when(w.arrival_due) && !when(w.on_site_at) ? tr("ord.due_arrive") + " " + when(w.arrival_due) + "<br>" : "") + tr("ord.due_resolve") + " " + when(w.resolution_due)}</td>` +
      `<td>${(actions[w.status] || []).map(([to, key]) => `<button data-wo="${w.id}" data-to="${to}" data-type="${esc(w.type)}">${tr(key)}</button>`).join(" ")}</td></tr>`).join("");
    $("oreview").innerHTML = review.filter(i => i.sla_status !== "ok" && i.sla_status !== "done").slice(0, 30).map(i =>
      `<tr><td>#${i.id}</td><td class="${i.sla_status === "breached" || i.sla_status === "callback_overdue" ? "overdue" : ""}">${esc(label("ord.sla", i.sla_status))}</td><td>${esc(catName(i.category))} ${esc(i.room || i.location)}</td><td>${esc(who(i.responsible))}</td></tr>`).join("")
      || `<tr><td class="muted">${tr("ord.nothing_late")}</td></tr>`;
  } catch (e) {
    if (e.status === 401) { $("needlogin").classList.remove("hidden"); $("orders-app").classList.add("hidden"); }
    else $("acterr").textContent = e.message;
  }
}

async function act(btn) {
  const id = btn.dataset.wo, to = btn.dataset.to;
  $("acterr").textContent = "";
  try {
    if (to === "callback") {
      const o = prompt(tr("ord.q_outcome"), "1");
      if (o === null) return;
      const outcome = {"1": "satisfied", "2": "fairly_satisfied", "3": "unsatisfied"}[o.trim()];
      if (!outcome) return;
      const note = prompt(tr("ord.q_note") + (outcome === "unsatisfied" ? tr("ord.q_required") : ""), "");
      if (note === null) return;
      await api("POST", `/api/v1/workorders/${id}/callback`, {outcome, note});
    } else if (to === "resolved" && btn.dataset.type === "complaint") {
      const analysis = prompt(tr("ord.q_analysis"), ""); if (analysis === null) return;
      const solution = prompt(tr("ord.q_solution"), ""); if (solution === null) return;
      const feedback = prompt(tr("ord.q_feedback"), ""); if (feedback === null) return;
      await api("PATCH", `/api/v1/workorders/${id}`, {analysis, solution, feedback});
      await api("POST", `/api/v1/workorders/${id}/transition`, {to});
    } else {
      let note = "";
      if (to === "closed") { note = prompt(tr("ord.q_nocb"), ""); if (note === null) return; }
      await api("POST", `/api/v1/workorders/${id}/transition`, {to, note});
    }
  } catch (e) { $("acterr").textContent = `#${id}: ${e.message}`; }
  refresh();
}

async function start() {
  applyI18n();
  try {
    const me = await api("GET", "/api/v1/me");
    $("user").textContent = `${me.name || me.username} (${label("role", me.role)})`;
  } catch (e) { $("needlogin").classList.remove("hidden"); return; }
  $("orders-app").classList.remove("hidden");
  // This month in the site's time zone (the server's default), not the browser's.
  $("monthly-html").href = "/api/v1/reports/monthly";
  $("monthly-xlsx").href = "/api/v1/reports/monthly?format=xlsx";
  try {
    const cats = await api("GET", "/api/v1/workorder-categories");
    for (const c of cats) catNames.set(c.id, pick(c.name_zh, c.name) || c.id);
    $("ocats").innerHTML = cats.map(c => `<option value="${esc(c.id)}">${esc(pick(c.name_zh, c.name))}</option>`).join("");
  } catch (e) { $("ocats").outerHTML = `<input name="category" placeholder="${esc(tr("category"))}" required>`; }
  try {
    for (const p of await api("GET", "/api/v1/playbooks")) playbookNames.set(p.ID, p.Name);
  } catch (e) { /* ids instead of names */ }
  try {
    const h = await api("GET", "/api/v1/alarm-kpis");
    $("alarmhealth").textContent = trf("ord.alarmhealth", h.alarms, h.max_10min, h.floods.length);
  } catch (e) { /* optional */ }
  $("register").addEventListener("submit", async ev => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(ev.target));
    $("regerr").textContent = "";
    try { await api("POST", "/api/v1/workorders", body); ev.target.reset(); refresh(); }
    catch (e) { $("regerr").textContent = e.message; }
  });
  document.addEventListener("click", ev => { const b = ev.target.closest("button[data-wo]"); if (b) act(b); });
  refresh();
  setInterval(refresh, 15000);
}
start();
