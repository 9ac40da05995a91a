// 报警发送通道 / Alert channels: each delivery endpoint's budget, whether
// it is throttled or failing and since when, and what went elsewhere.
// Data: GET /api/v1/alerts/endpoints (names of people for operators only).
"use strict";
// Every word is the catalogue's (/static/i18n.js, loaded first): ch.<key>.
(function () {
  const $ = id => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const lang = (params.get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
  const tr = k => { const m = CATALOG[k]; if (m) return m[lang] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
  const trf = (k, ...args) => { let i = 0; return tr(k).replace(/%[sd]/g, () => String(args[i++])); };
  const locale = lang === "zh" ? "zh-CN" : "en-GB";
  document.documentElement.lang = lang;
  document.title = tr("title.alerts");
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = tr(el.dataset.i18n); });
  const time = s => s && !s.startsWith("0001") ? new Date(s).toLocaleString(locale, {hour12: false}) : "";
  const cell = (row, text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; row.appendChild(td); return td; };

  async function load() {
    const headers = token ? {Authorization: "Bearer " + token} : {};
    let eps;
    try {
      const r = await fetch("/api/v1/alerts/endpoints", {headers, credentials: "same-origin"});
      if (r.status === 401 || r.status === 403) { $("loginneeded").classList.remove("hidden"); return; }
      if (!r.ok) throw new Error(r.statusText);
      eps = await r.json();
    } catch (e) { $("updated").textContent = trf("ch.load_failed", e.message); return; }
    $("loginneeded").classList.add("hidden");
    const body = $("endpoints").tBodies[0], div = $("diverted").tBodies[0];
    body.replaceChildren(); div.replaceChildren();
    const flood = eps.find(e => e.flood);
    $("flood").classList.toggle("hidden", !flood);
    if (flood) $("flood").textContent = trf("ch.flood", flood.flood_alarms, time(flood.flood_since));
    const all = [];
    for (const e of eps) {
      const row = document.createElement("tr");
      const limit = [e.per_minute ? trf("ch.per_minute", e.per_minute) : "", e.per_second ? trf("ch.per_second", e.per_second) : ""].filter(Boolean).join(lang === "zh" ? "，" : ", ") || tr("ch.unlimited");
      cell(row, `${e.name} (${tr("ch.type." + e.type)})`).title = limit;
      const st = cell(row, tr("ch.st." + e.state), e.state === "ok" ? "" : "overdue");
      if (e.state === "throttled") st.textContent += ` ${tr("until")} ${time(e.paused_until)}`;
      if (e.last_error) st.title = e.last_error;
      cell(row, time(e.since));
      cell(row, e.per_minute || e.per_second ? `${Math.floor(e.budget)} / ${limit}` : limit);
      cell(row, e.queued);
      for (const k of ["sent", "merged", "throttled", "fallback", "failed"]) cell(row, e.counts[k] || 0);
      body.appendChild(row);
      for (const d of e.diverted) all.push([e.name, d]);
    }
    all.sort((a, b) => b[1].at.localeCompare(a[1].at));
    for (const [from, d] of all.slice(0, 50)) {
      const row = document.createElement("tr");
      cell(row, time(d.at)); cell(row, from); cell(row, d.to); cell(row, d.person || "—"); cell(row, tr("ch.k." + d.kind)); cell(row, d.because);
      div.appendChild(row);
    }
    $("updated").textContent = trf("ch.updated", new Date().toLocaleTimeString(locale, {hour12: false}));
  }
  load();
  setInterval(load, 10000);
})();
