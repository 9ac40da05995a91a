// Shared by the register, inspection and planned-works pages
// (console-register.html, console-inspections.html, console-planned.html):
// language, API calls, the login form. Every string comes from the message
// catalogue (/static/i18n.js, internal/i18n/catalog.json), loaded first.
"use strict";

const U = {
  params: new URLSearchParams(location.search),
  esc: s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])),
  $: id => document.getElementById(id),
};
U.lang = (U.params.get("lang") || localStorage.getItem("lang") || "zh").startsWith("en") ? "en" : "zh";
// U.tr: the catalogue's text for key in the page's language (an unknown key
// shows as it is, so the DOM test catches it; an unknown id under a prefix,
// a site's own category, shows the id); U.trf fills %s.
U.tr = k => { const m = CATALOG[k]; if (m) return m[U.lang] || m.zh; const i = k.lastIndexOf("."); return i >= 0 ? k.slice(i + 1) : k; };
U.trf = (k, ...args) => { let i = 0; return U.tr(k).replace(/%[sd]/g, () => String(args[i++])); };
U.pick = (zh, en) => (U.lang === "zh" && zh) || en || zh || "";

U.api = async function (method, path, body) {
  const r = await fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin"});
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  if (!r.ok) {
    const err = new Error((data && data.error) || r.statusText);
    err.status = r.status;
    err.data = data;
    throw err;
  }
  return data;
};

// applyI18n fills the page's own words: data-i18n (text), data-ph
// (placeholders), data-title on the body (the window's title); full keys.
U.applyI18n = function () {
  document.documentElement.lang = U.lang;
  if (document.body.dataset.title) document.title = U.tr(document.body.dataset.title);
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = U.tr(el.dataset.i18n); });
  document.querySelectorAll("[data-ph]").forEach(el => { el.placeholder = U.tr(el.dataset.ph); });
};

// start logs in if needed, then calls ready(me).
U.start = async function (ready) {
  U.applyI18n();
  U.$("lang").onclick = () => { U.lang = U.lang === "zh" ? "en" : "zh"; localStorage.setItem("lang", U.lang); location.reload(); };
  U.$("login").onsubmit = async e => {
    e.preventDefault();
    const f = new FormData(e.target);
    try { await U.api("POST", "/login", {username: f.get("username"), password: f.get("password")}); location.reload(); }
    catch (err) { U.$("loginerr").textContent = err.message; }
  };
  let me;
  try { me = await U.api("GET", "/api/v1/me"); }
  catch (e) { U.$("login").classList.remove("hidden"); return; }
  U.$("user").textContent = (me.name || me.username) + " · " + U.tr("role." + me.role);
  U.$("app").classList.remove("hidden");
  ready(me);
};

U.fmtTime = t => t ? new Date(t).toLocaleString(U.lang === "zh" ? "zh-CN" : "en-GB", {hour12: false}) : "";
