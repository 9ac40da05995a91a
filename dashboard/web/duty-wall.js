// 今日值班 on the wall display: who is on duty per team, names only (the
// wall token reads GET /api/v1/duty/now; no phone numbers, no log text).
"use strict";
(() => {
  const box = document.getElementById("onduty");
  if (!box) return;
  const tok = new URLSearchParams(location.search).get("token") || "";
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  // tr and lang are the wall's (app.js, with the catalogue /static/i18n.js).
  const hhmm = s => new Date(s).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {hour12: false, month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit"});
  async function load() {
    try {
      const r = await fetch("/api/v1/duty/now", {headers: tok ? {Authorization: "Bearer " + tok} : {}, credentials: "same-origin"});
      if (!r.ok) return;
      const list = await r.json();
      box.innerHTML = list.length ? `<table>${list.map(s => `<tr data-team="${esc(s.team)}"><td class="muted">${esc(s.team_name)}</td><td>${esc(s.name)}</td>
        <td class="muted">${tr("until")} ${hhmm(s.until)}</td></tr>`).join("")}</table>` : `<div class="muted">—</div>`;
    } catch (e) { /* the live feed shows the connection state */ }
  }
  load();
  setInterval(load, 60000);
})();
