// Shared by the register and inspection pages (console-register.html,
// console-inspections.html): language, API calls, the login form.
"use strict";

const U = {
  params: new URLSearchParams(location.search),
  esc: s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])),
  $: id => document.getElementById(id),
};
U.lang = U.params.get("lang") || localStorage.getItem("lang") || "zh";
U.tr = (T, k) => (T[U.lang] && T[U.lang][k]) || (T.zh && T.zh[k]) || k;

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

U.applyI18n = function (T) {
  document.documentElement.lang = U.lang;
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = U.tr(T, el.dataset.i18n); });
};

// start logs in if needed, then calls ready(me).
U.start = async function (T, ready) {
  U.applyI18n(T);
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
  U.$("user").textContent = (me.name || me.username) + " · " + me.role;
  U.$("app").classList.remove("hidden");
  ready(me);
};

U.fmtTime = t => t ? new Date(t).toLocaleString(U.lang === "zh" ? "zh-CN" : "en-GB", {hour12: false}) : "";
