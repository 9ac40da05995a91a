// The external contacts directory (应急联系电话) on the register page:
// engineers read it, admins add, edit and delete entries (stored, audited;
// the config's register.contacts only seeds it). Strings come from the
// catalogue (/static/i18n.js, keys contacts.*).
"use strict";
(() => {
  const C = k => { const m = typeof CATALOG !== "undefined" && CATALOG[k]; return m ? (m[U.lang] || m.zh) : k; };
  const Cf = (k, ...a) => { let i = 0; return C(k).replace(/%s/g, () => String(a[i++])); };
  const cats = ["emergency", "utility", "contractor", "government", "insurer", "other"];
  let me = null, list = [], editing = null;

  function form(c) {
    const opt = cats.map(k => `<option value="${k}"${c.category === k ? " selected" : ""}>${U.esc(C("contacts.cat." + k))}</option>`).join("");
    const f = (name, v, extra) => `<label>${U.esc(C("contacts." + name))}<input name="${name}" value="${U.esc(v || "")}" style="width:100%"${extra || ""}></label>`;
    U.$("ctform").innerHTML = f("id", c.id, c.version ? " readonly" : "") + f("name", c.name) +
      `<label>${U.esc(C("contacts.category"))}<select name="category" style="width:100%">${opt}</select></label>` +
      f("phone", c.phone) + f("phone2", c.phone2) + f("assets", (c.assets || []).join(", ")) +
      `<label style="grid-column:1/3">${U.esc(C("contacts.notes"))}<input name="notes" value="${U.esc(c.notes || "")}" style="width:100%"></label>`;
    U.$("ctmsg").textContent = "";
    U.$("cteditor").classList.remove("hidden");
  }

  async function save() {
    const f = new FormData(U.$("ctform"));
    const body = {version: editing.version || 0};
    for (const k of ["id", "name", "category", "phone", "phone2", "notes"]) body[k] = (f.get(k) || "").trim();
    body.assets = (f.get("assets") || "").split(/[,，\s]+/).filter(Boolean);
    try {
      if (editing.version) await U.api("PUT", "/api/v1/contacts/" + encodeURIComponent(editing.id), body);
      else await U.api("POST", "/api/v1/contacts", body);
      U.$("cteditor").classList.add("hidden");
      U.$("ctstatus").textContent = C("contacts.saved");
      load();
    } catch (e) { U.$("ctmsg").textContent = e.message; U.$("ctmsg").className = "overdue"; }
  }

  async function remove(c) {
    if (!confirm(Cf("contacts.confirm_delete", c.name))) return;
    try {
      await U.api("DELETE", "/api/v1/contacts/" + encodeURIComponent(c.id) + "?version=" + c.version);
      U.$("ctstatus").textContent = C("contacts.deleted");
      load();
    } catch (e) { U.$("ctstatus").textContent = e.message; U.$("ctstatus").className = "overdue"; }
  }

  async function load() {
    try { list = await U.api("GET", "/api/v1/contacts"); }
    catch (e) { U.$("contacts").textContent = e.message; return; }
    const admin = me.role === "admin";
    U.$("contacts").innerHTML = `<tr><th>${U.esc(C("contacts.category"))}</th><th>${U.esc(C("contacts.name"))}</th><th>${U.esc(C("contacts.phone"))}</th>` +
      `<th>${U.esc(C("contacts.notes"))}</th>${admin ? `<th>${U.esc(C("contacts.updated"))}</th><th></th>` : ""}</tr>` +
      list.map(c => `<tr data-contact="${U.esc(c.id)}"><td>${U.esc(C("contacts.cat." + c.category))}</td><td>${U.esc(c.name)}</td>` +
        `<td><a href="tel:${U.esc(c.phone)}">${U.esc(c.phone)}</a>${c.phone2 ? " / " + U.esc(c.phone2) : ""}</td><td>${U.esc(c.notes)}</td>` +
        (admin ? `<td class="muted">${U.esc(c.updated_by || "")} ${U.esc(U.fmtTime(c.updated))}</td>` +
          `<td><button data-ctedit="${U.esc(c.id)}">${U.esc(C("contacts.edit"))}</button> <button data-ctdel="${U.esc(c.id)}">${U.esc(C("contacts.delete"))}</button></td>` : "") +
        `</tr>`).join("");
    U.$("contacts").querySelectorAll("[data-ctedit]").forEach(b => { b.onclick = () => { editing = list.find(c => c.id === b.dataset.ctedit); form(editing); }; });
    U.$("contacts").querySelectorAll("[data-ctdel]").forEach(b => { b.onclick = () => remove(list.find(c => c.id === b.dataset.ctdel)); });
  }

  // Called by register.js once logged in.
  U.contacts = m => {
    me = m;
    document.querySelectorAll("[data-ct]").forEach(el => { el.textContent = C(el.dataset.ct); });
    if (me.role === "admin") {
      U.$("ctadmin").classList.remove("hidden");
      U.$("ctadd").onclick = () => { editing = {category: "utility"}; form(editing); };
      U.$("ctsave").onclick = save;
      U.$("ctform").onsubmit = e => { e.preventDefault(); save(); };
      U.$("ctcancel").onclick = () => U.$("cteditor").classList.add("hidden");
    }
    load();
  };
})();
