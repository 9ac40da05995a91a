// The work-order register and service figures (console page /console/orders).
"use strict";
const $ = id => document.getElementById(id);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const pct = v => v === null || v === undefined ? "—" : Math.round(v * 1000) / 10 + "%";
const secs = v => v === null || v === undefined ? "—" : Math.floor(v / 60) + "分" + Math.round(v % 60) + "秒";
const when = t => !t || t.startsWith("0001") ? "" : new Date(t).toLocaleString("zh-CN", {month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin"});
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  if (!r.ok) { const e = new Error((data && data.error) || r.statusText); e.status = r.status; throw e; }
  return data;
}

const statusZH = {opened: "已登记", dispatched: "已派单", accepted: "已接单", on_site: "已到场", in_progress: "维修中", resolved: "已完成",
  callback_done: "已回访", closed: "已归档", cancelled: "已取消"};
const typeZH = {repair: "报修", complaint: "投诉", help: "求助", suggestion: "建议", fault: "设备故障", pm: "预防性维护"};
const reviewZH = {breached: "超时", callback_overdue: "回访逾期", due_soon: "即将到期", awaiting_callback: "待回访", ok: "处理中", done: "已完成"};
// The next steps a person takes from each status (回访 records the outcome).
const actions = {opened: [["accepted", "接单 accept"]], dispatched: [["accepted", "接单 accept"]],
  accepted: [["on_site", "到场 on site"], ["in_progress", "开始维修 start"], ["resolved", "完成 done"]],
  on_site: [["in_progress", "开始维修 start"], ["resolved", "完成 done"]], in_progress: [["resolved", "完成 done"]],
  resolved: [["callback", "回访 call back"], ["closed", "未回访归档 close without call-back"]], callback_done: [["closed", "归档 close"]]};

let catName = {}; // category id → its Chinese name (the configured list)
const kpiNames = [["handling_rate", "处理率 handled"], ["callback_rate", "回访率 call-backs"], ["good_order", "设备完好率 equipment in order"],
  ["resolution_on_time_rate", "维修及时率 repairs on time"], ["arrival_on_time_rate", "到场及时率 on site in time"], ["mean_time_to_arrive", "平均到场 mean arrival"]];

async function refresh() {
  try {
    const [k, orders, review] = await Promise.all([api("GET", "/api/v1/kpis"), api("GET", "/api/v1/workorders?status=open"), api("GET", "/api/v1/workorders/review")]);
    $("okpis").innerHTML = kpiNames.map(([id, label]) => {
      const x = k[id] || {};
      const v = x.unit === "seconds" ? secs(x.value) : pct(x.value), t = x.unit === "seconds" ? "≤ " + secs(x.target) : "≥ " + pct(x.target);
      const cls = x.met === true ? " met" : x.met === false ? " unmet" : "";
      return `<div class="kpi${cls}" data-kpi="${id}"><div class="v">${v}</div><div class="l">${label} <span class="muted">目标 ${t}</span></div></div>`;
    }).join("");
    $("olist").innerHTML = `<tr><th>#</th><th>类型</th><th>类别 / 位置</th><th>报修人</th><th>状态</th><th>期限 due</th><th></th></tr>` + orders.map(w =>
      `<tr data-workorder="${w.id}"><td>#${w.id}</td><td>${esc(typeZH[w.type] || w.type)}</td><td>${esc(catName[w.category] || w.category)}<br><span class="muted">${esc(w.room || w.location)} ${esc(w.description)}</span></td>` +
      `<td>${esc(w.caller_name)} ${esc(w.caller_phone)}<br><span class="muted">首问 ${esc(w.first_responsible)}${w.assignee ? " · 责任人 " + esc(w.assignee) : ""}</span></td>` +
      `<td>${esc(statusZH[w.status] || w.status)}${w.reworks ? ` <span class="overdue">返修 ${w.reworks}</span>` : ""}</td>` +
      `<td>${w.status === "resolved" ? "回访 " + when(w.callback_due) : (w.arrival_due && !w.on_site_at?.startsWith?.("2") ? "到场 " + when(w.arrival_due) + "<br>" : "") + "完成 " + when(w.resolution_due)}</td>` +
      `<td>${(actions[w.status] || []).map(([to, label]) => `<button data-wo="${w.id}" data-to="${to}" data-type="${esc(w.type)}">${label}</button>`).join(" ")}</td></tr>`).join("");
    $("oreview").innerHTML = review.filter(i => i.sla_status !== "ok" && i.sla_status !== "done").slice(0, 30).map(i =>
      `<tr><td>#${i.id}</td><td class="${i.sla_status === "breached" || i.sla_status === "callback_overdue" ? "overdue" : ""}">${reviewZH[i.sla_status] || i.sla_status}</td><td>${esc(catName[i.category] || i.category)} ${esc(i.room || i.location)}</td><td>${esc(i.responsible)}</td></tr>`).join("")
      || `<tr><td class="muted">无超时或待回访 nothing late</td></tr>`;
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
      const o = prompt("回访结果：1 满意  2 基本满意  3 不满意（返修） / outcome: 1 satisfied, 2 fairly, 3 unsatisfied", "1");
      if (o === null) return;
      const outcome = {"1": "satisfied", "2": "fairly_satisfied", "3": "unsatisfied"}[o.trim()];
      if (!outcome) return;
      const note = prompt("回访记录 / note" + (outcome === "unsatisfied" ? "（必填 required）" : ""), "");
      if (note === null) return;
      await api("POST", `/api/v1/workorders/${id}/callback`, {outcome, note});
    } else if (to === "resolved" && btn.dataset.type === "complaint") {
      const analysis = prompt("原因分析 / analysis", ""); if (analysis === null) return;
      const solution = prompt("解决方案 / solution", ""); if (solution === null) return;
      const feedback = prompt("处理反馈 / feedback to the resident", ""); if (feedback === null) return;
      await api("PATCH", `/api/v1/workorders/${id}`, {analysis, solution, feedback});
      await api("POST", `/api/v1/workorders/${id}/transition`, {to});
    } else {
      let note = "";
      if (to === "closed") { note = prompt("未回访原因 / why no call-back", ""); if (note === null) return; }
      await api("POST", `/api/v1/workorders/${id}/transition`, {to, note});
    }
  } catch (e) { $("acterr").textContent = `#${id}: ${e.message}`; }
  refresh();
}

async function start() {
  try {
    const me = await api("GET", "/api/v1/me");
    $("user").textContent = me.username + " (" + me.role + ")";
  } catch (e) { $("needlogin").classList.remove("hidden"); return; }
  $("orders-app").classList.remove("hidden");
  // This month in the site's time zone (the server's default), not the browser's.
  $("monthly-html").href = "/api/v1/reports/monthly";
  $("monthly-xlsx").href = "/api/v1/reports/monthly?format=xlsx";
  try {
    const cats = await api("GET", "/api/v1/workorder-categories");
    catName = Object.fromEntries(cats.map(c => [c.id, c.name_zh || c.name || c.id]));
    $("ocats").innerHTML = cats.map(c => `<option value="${esc(c.id)}">${esc(c.name_zh)} ${esc(c.name)}</option>`).join("");
  } catch (e) { $("ocats").outerHTML = `<input name="category" placeholder="类别 category" required>`; }
  try {
    const h = await api("GET", "/api/v1/alarm-kpis");
    $("alarmhealth").textContent = `报警系统（近24小时）：${h.alarms} 次，每10分钟最多 ${h.max_10min}，泛滥 ${h.floods.length} 次 / alarms in 24 h`;
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
