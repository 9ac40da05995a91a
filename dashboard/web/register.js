// The asset register (设备台账) and contacts directory: engineers read,
// admins edit and import the office's spreadsheet (CSV).
"use strict";

const t = k => U.tr("reg." + k);
const fields = ["maker", "model", "serial", "installed", "location", "contractor", "contractor_phone", "registration_code", "warranty_end", "notes"];
let me = null, entries = [], editing = null;

function certCell(c) {
  const cls = c.status === "expired" || c.status === "due" ? "overdue" : "";
  return `<div class="${cls}" data-cert="${U.esc(c.status)}">${U.esc(c.kind)}: ${U.esc(c.expires)}` +
    (c.days_left !== undefined ? ` (${c.days_left}${t("days")}, ${t(c.status)})` : "") + `</div>`;
}

async function load() {
  try {
    entries = await U.api("GET", "/api/v1/register");
  } catch (e) { U.$("err").textContent = e.message; return; }
  const admin = me.role === "admin";
  let h = `<tr><th>${t("asset")}</th><th>${t("maker")} / ${t("model")}</th><th>${t("registration_code")}</th><th>${t("contractor")}</th><th>${t("certs")}</th><th>${t("docs")}</th><th></th></tr>`;
  for (const e of entries) {
    h += `<tr data-asset="${U.esc(e.asset)}"><td>${U.esc(e.asset)}<div class="muted">${U.esc(e.location)}</div></td>` +
      `<td>${U.esc(e.maker)}<div class="muted">${U.esc(e.model)} ${U.esc(e.serial)}</div></td><td>${U.esc(e.registration_code)}</td>` +
      `<td>${U.esc(e.contractor)}<div>${U.esc(e.contractor_phone)}</div></td><td>${(e.certificates || []).map(certCell).join("")}</td>` +
      `<td>${(e.documents || []).map(d => `<div><a href="${U.esc(d.url)}" rel="noopener noreferrer" target="_blank">${U.esc(d.title || d.url)}</a></div>`).join("")}</td>` +
      `<td>${admin ? `<button data-edit="${U.esc(e.asset)}">${t("edit")}</button>` : ""}</td></tr>`;
  }
  U.$("entries").innerHTML = h;
  U.$("entries").querySelectorAll("[data-edit]").forEach(b => { b.onclick = () => edit(b.dataset.edit); });
}

function edit(asset) {
  editing = entries.find(e => e.asset === asset);
  U.$("edasset").textContent = asset;
  U.$("edform").innerHTML = fields.map(f => `<label>${t(f)}<input name="${f}" value="${U.esc(editing[f] || "")}" style="width:100%"></label>`).join("");
  U.$("edcerts").value = (editing.certificates || []).map(c => [c.kind, c.expires, c.number || "", c.issuer || ""].join(" | ")).join("\n");
  U.$("eddocs").value = (editing.documents || []).map(d => d.title + " | " + d.url).join("\n");
  U.$("edmsg").textContent = "";
  U.$("editor").classList.remove("hidden");
}

async function save() {
  const f = new FormData(U.$("edform"));
  const body = {asset: editing.asset, version: editing.version, certificates: [], documents: []};
  for (const k of fields) body[k] = (f.get(k) || "").trim();
  for (const line of U.$("edcerts").value.split("\n")) {
    if (!line.trim()) continue;
    const [kind, expires, number, issuer] = line.split("|").map(s => (s || "").trim());
    body.certificates.push({kind, expires, number, issuer});
  }
  for (const line of U.$("eddocs").value.split("\n")) {
    if (!line.trim()) continue;
    const i = line.lastIndexOf("|");
    body.documents.push(i < 0 ? {title: "", url: line.trim()} : {title: line.slice(0, i).trim(), url: line.slice(i + 1).trim()});
  }
  try {
    await U.api("PUT", "/api/v1/assets/" + encodeURIComponent(editing.asset) + "/register", body);
    U.$("edmsg").textContent = t("saved");
    U.$("editor").classList.add("hidden");
    load();
  } catch (e) { U.$("edmsg").textContent = e.message; U.$("edmsg").className = "overdue"; }
}

async function importCSV(dry) {
  const file = U.$("csvfile").files[0];
  if (!file) return;
  const buf = await file.arrayBuffer();
  let text;
  try { text = new TextDecoder("utf-8", {fatal: true}).decode(buf); }
  catch (e) { text = new TextDecoder("gb18030").decode(buf); } // Excel on Chinese Windows
  U.$("csverrs").innerHTML = "";
  try {
    const r = await U.api("POST", "/api/v1/register/import", {csv: text, dry_run: dry});
    U.$("csvmsg").textContent = t(dry ? "checked" : "imported").replace("{rows}", r.rows).replace("{created}", r.created).replace("{updated}", r.updated);
    U.$("csvmsg").className = "";
    if (!dry) load();
  } catch (e) {
    U.$("csvmsg").textContent = e.message;
    U.$("csvmsg").className = "overdue";
    if (e.data && e.data.rows) {
      U.$("csverrs").innerHTML = `<tr><th>${t("row")}</th><th>${t("column")}</th><th>${t("message")}</th></tr>` +
        e.data.rows.map(r => `<tr><td>${r.row}</td><td>${U.esc(r.column)}</td><td>${U.esc(r.message)}</td></tr>`).join("");
    }
  }
}

U.start(m => {
  me = m;
  if (me.role === "admin") U.$("importer").classList.remove("hidden");
  U.$("edsave").onclick = save;
  U.$("edcancel").onclick = () => U.$("editor").classList.add("hidden");
  U.$("csvcheck").onclick = () => importCSV(true);
  U.$("csvgo").onclick = () => importCSV(false);
  load();
  U.contacts(me); // contacts.js
});
