// 报警发送通道 / Alert channels: each delivery endpoint's budget, whether
// it is throttled or failing and since when, and what went elsewhere.
// Data: GET /api/v1/alerts/endpoints (names of people for operators only).
"use strict";
(function () {
  const $ = id => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token") || "";
  const stateText = {ok: "正常 OK", throttled: "被限流 Throttled", failing: "发送失败 Failing"};
  const kindText = {alert: "报警 alert", escalation: "升级 escalation", reminder: "提醒 reminder", resolved: "已恢复 resolved",
    notify: "预案通知 playbook", repage: "重新报警 re-page", digest: "汇总 digest"};
  const time = s => s && !s.startsWith("0001") ? new Date(s).toLocaleString("zh-CN", {hour12: false}) : "";
  const cell = (tr, text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; };

  async function load() {
    const headers = token ? {Authorization: "Bearer " + token} : {};
    let eps;
    try {
      const r = await fetch("/api/v1/alerts/endpoints", {headers, credentials: "same-origin"});
      if (r.status === 401 || r.status === 403) { $("loginneeded").classList.remove("hidden"); return; }
      if (!r.ok) throw new Error(r.statusText);
      eps = await r.json();
    } catch (e) { $("updated").textContent = "读取失败 load failed: " + e.message; return; }
    $("loginneeded").classList.add("hidden");
    const body = $("endpoints").tBodies[0], div = $("diverted").tBodies[0];
    body.replaceChildren(); div.replaceChildren();
    const flood = eps.find(e => e.flood);
    $("flood").classList.toggle("hidden", !flood);
    if (flood) $("flood").textContent = `报警泛滥：10 分钟内 ${flood.flood_alarms} 条报警，自 ${time(flood.flood_since)}，消息合并为汇总 · Alarm flood: ${flood.flood_alarms} alarms in 10 minutes; messages merged into digests`;
    const all = [];
    for (const e of eps) {
      const tr = document.createElement("tr");
      const limit = [e.per_minute ? e.per_minute + "/分钟 min" : "", e.per_second ? e.per_second + "/秒 s" : ""].filter(Boolean).join("，") || "不限 unlimited";
      cell(tr, `${e.name} (${e.type})`).title = limit;
      const st = cell(tr, stateText[e.state] || e.state, e.state === "ok" ? "" : "overdue");
      if (e.state === "throttled") st.textContent += ` 至 until ${time(e.paused_until)}`;
      if (e.last_error) st.title = e.last_error;
      cell(tr, time(e.since));
      cell(tr, e.per_minute || e.per_second ? `${Math.floor(e.budget)} / ${limit}` : limit);
      cell(tr, e.queued);
      for (const k of ["sent", "merged", "throttled", "fallback", "failed"]) cell(tr, e.counts[k] || 0);
      body.appendChild(tr);
      for (const d of e.diverted) all.push([e.name, d]);
    }
    all.sort((a, b) => b[1].at.localeCompare(a[1].at));
    for (const [from, d] of all.slice(0, 50)) {
      const tr = document.createElement("tr");
      cell(tr, time(d.at)); cell(tr, from); cell(tr, d.to); cell(tr, d.person || "—"); cell(tr, kindText[d.kind] || d.kind); cell(tr, d.because);
      div.appendChild(tr);
    }
    $("updated").textContent = "更新于 updated " + new Date().toLocaleTimeString("zh-CN", {hour12: false});
  }
  load();
  setInterval(load, 10000);
})();
