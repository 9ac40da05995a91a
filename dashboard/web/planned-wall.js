// On the wall display: planned works in progress (计划停水停电, without the
// people: the wall token reads them redacted) and each plan's last drill
// (GET /api/v1/playbooks: last_drill, next_drill).
"use strict";
(() => {
  const works = document.getElementById("plannedworks"), drills = document.getElementById("drills");
  if (!works && !drills) return;
  const tok = new URLSearchParams(location.search).get("token") || "";
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  // tr and lang are the wall's (app.js, with the catalogue /static/i18n.js).
  const locale = lang === "zh" ? "zh-CN" : "en-GB";
  const when = s => s ? new Date(s).toLocaleString(locale, {hour12: false, month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit"}) : "—";
  const day = s => s ? new Date(s).toLocaleDateString(locale) : tr("drill_never");
  const get = async path => {
    const r = await fetch(path, {headers: tok ? {Authorization: "Bearer " + tok} : {}, credentials: "same-origin"});
    return r.ok ? r.json() : null;
  };
  async function load() {
    try {
      const ws = works && await get("/api/v1/planned-works?status=open");
      if (ws) {
        works.innerHTML = ws.length ? `<table>${ws.map(w => `<tr data-work="${w.id}"><td>${esc(w.title)}</td>
          <td class="muted">${when(w.start)}–${when(w.end)}</td><td class="${w.status === "not_recovered" ? "overdue" : ""}">${esc(tr("pw." + w.status))}</td></tr>`).join("")}</table>`
          : `<div class="muted">—</div>`;
      }
      const ps = drills && await get("/api/v1/playbooks");
      if (ps) {
        const drilled = ps.filter(p => !(p.Trigger && p.Trigger.Every)); // the emergency plans, not the weekly checklist
        drills.innerHTML = `<table>${drilled.map(p => `<tr data-plan="${esc(p.ID)}"><td>${esc(p.Name)}</td>
          <td data-last>${day(p.last_drill)}</td><td class="muted">${tr("drill_next")} ${day(p.next_drill)}</td></tr>`).join("")}</table>`;
      }
    } catch (e) { /* the live feed shows the connection state */ }
  }
  load();
  setInterval(load, 60000);
})();
