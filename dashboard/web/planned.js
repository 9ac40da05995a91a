// Planned works (计划停水停电 / 维保公告): operators enter a planned water or
// power stop or maintenance, copy the residents' notice for the WeChat
// group, print it for the entrance boards, record when it was posted, and
// follow the work through its window to the recovery check.
"use strict";

const PT = {
  zh: {title: "计划停水停电 / 维保公告", back: "← 值班控制台", new: "登记计划停水停电或维保", kind: "类型", power: "计划停电", water: "计划停水", maintenance: "设备维保",
    titlef: "标题（可空）", buildings: "楼栋", assets: "线路/设备编号（逗号分隔）", area: "影响范围（通知用语）", lines: "线路", start: "开始时间", end: "预计结束时间",
    reason: "原因", announced: "已通知住户时间（可空：现在）", elevators: "电梯使用安排", safety: "安全提示", contact: "现场负责人及电话（仅员工可见）",
    create: "登记并生成通知", list: "计划停水停电与维保", notice: "住户通知", copy: "复制通知文字", print: "打印版（张贴用）", copied: "已复制，可粘贴到业主微信群",
    status: "状态", when: "时间", what: "内容", warnings: "提醒", actions: "操作", show: "通知", announce: "已张贴通知", finish: "提前完工", cancel: "取消",
    scheduled: "待开始", in_progress: "进行中", verifying: "核查恢复中", completed: "已恢复", not_recovered: "未恢复！", cancelled: "已取消",
    tagged: "计划内报警", cancelwhy: "取消原因：", created: "已登记", none: "暂无"},
  en: {title: "Planned works", back: "← Console", new: "Record a planned water/power stop or maintenance", kind: "Kind", power: "Power cut", water: "Water stop", maintenance: "Maintenance",
    titlef: "Title (optional)", buildings: "Buildings", assets: "Lines / equipment ids (comma-separated)", area: "Area (for the notice)", lines: "Lines", start: "Start", end: "Expected end",
    reason: "Reason", announced: "Residents told at (empty: now)", elevators: "Elevator use", safety: "Safety notes", contact: "Person in charge and phone (staff only)",
    create: "Record and write the notice", list: "Planned works", notice: "Residents' notice", copy: "Copy the notice", print: "Printable page (entrance boards)", copied: "copied: paste it into the residents' WeChat group",
    status: "Status", when: "When", what: "What", warnings: "Warnings", actions: "Actions", show: "Notice", announce: "Notice posted", finish: "Finished early", cancel: "Cancel",
    scheduled: "scheduled", in_progress: "in progress", verifying: "checking recovery", completed: "recovered", not_recovered: "NOT RECOVERED", cancelled: "cancelled",
    tagged: "planned alarms", cancelwhy: "Why is it cancelled?", created: "recorded", none: "none"},
};
const t = k => U.tr(PT, k);
let me = null;

const iso = v => v ? new Date(v).toISOString() : undefined; // datetime-local is the browser's time zone

async function buildings() {
  try {
    const assets = await U.api("GET", "/api/v1/assets");
    const bs = [...new Set(assets.map(a => a.building).filter(Boolean))].sort();
    U.$("pwbuildings").innerHTML = bs.map(b => `<option value="${U.esc(b)}">${U.esc(b)}</option>`).join("");
  } catch (e) { /* the list still works */ }
}

async function create(e) {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = {kind: f.get("kind"), title: f.get("title").trim(), buildings: f.getAll("buildings"),
    assets: f.get("assets").split(/[,，\s]+/).filter(Boolean), area: f.get("area").trim(), lines: f.get("lines").trim(),
    start: iso(f.get("start")), end: iso(f.get("end")), reason: f.get("reason").trim(), announced_at: iso(f.get("announced_at")),
    elevators: f.get("elevators").trim(), safety: f.get("safety").trim(), contact: f.get("contact").trim()};
  try {
    const w = await U.api("POST", "/api/v1/planned-works", body);
    U.$("pwmsg").textContent = t("created") + " #" + w.id;
    U.$("pwmsg").className = "";
    await load();
    show(w.id);
  } catch (err) { U.$("pwmsg").textContent = err.message; U.$("pwmsg").className = "overdue"; }
}

async function load() {
  let ws;
  try { ws = await U.api("GET", "/api/v1/planned-works"); }
  catch (e) { U.$("err").textContent = e.message; return; }
  const op = me.role === "operator" || me.role === "admin";
  let h = `<tr><th>#</th><th>${t("what")}</th><th>${t("when")}</th><th>${t("status")}</th><th>${t("warnings")}</th><th>${t("actions")}</th></tr>`;
  for (const w of ws) {
    const open = w.status === "scheduled" || w.status === "in_progress";
    h += `<tr data-work="${w.id}" data-status="${U.esc(w.status)}"><td>${w.id}</td><td>${U.esc(w.title)}<div class="muted">${U.esc(w.reason)}</div>` +
      (w.tagged && w.tagged.length ? `<div class="muted">${t("tagged")}: ${w.tagged.map(U.esc).join(", ")}</div>` : "") + `</td>` +
      `<td>${U.fmtTime(w.start)} – ${U.fmtTime(w.end)}</td><td class="${w.status === "not_recovered" ? "overdue" : ""}">${t(w.status)}` +
      (w.recovery && w.recovery.missing && w.recovery.missing.length ? `<div class="muted">${w.recovery.missing.map(U.esc).join("; ")}</div>` : "") + `</td>` +
      `<td class="overdue" data-warnings>${(w.warnings || []).map(U.esc).join("<br>")}</td>` +
      `<td><button data-show="${w.id}">${t("show")}</button>` +
      (op && open ? ` <button data-announce="${w.id}">${t("announce")}</button> <button data-cancel="${w.id}">${t("cancel")}</button>` : "") +
      (op && w.status === "in_progress" ? ` <button data-finish="${w.id}">${t("finish")}</button>` : "") + `</td></tr>`;
  }
  if (!ws.length) h += `<tr><td colspan="6" class="muted">${t("none")}</td></tr>`;
  U.$("works").innerHTML = h;
  const on = (attr, fn) => U.$("works").querySelectorAll(`[data-${attr}]`).forEach(b => { b.onclick = () => fn(b.dataset[attr]); });
  on("show", show);
  on("announce", id => act(id, "announce", {}));
  on("finish", id => act(id, "finish", {}));
  on("cancel", id => { const note = prompt(t("cancelwhy")); if (note) act(id, "cancel", {note}); });
}

async function act(id, what, body) {
  try { await U.api("POST", `/api/v1/planned-works/${id}/${what}`, body); }
  catch (e) { U.$("err").textContent = e.message; }
  load();
}

async function show(id) {
  try {
    const n = await U.api("GET", `/api/v1/planned-works/${id}/notice`);
    U.$("noticetext").value = n.text;
    U.$("noticewarn").textContent = (n.warnings || []).join("；");
    U.$("noticeprint").href = `/api/v1/planned-works/${id}/notice?format=html`;
    U.$("noticemsg").textContent = "";
    U.$("noticebox").classList.remove("hidden");
  } catch (e) { U.$("err").textContent = e.message; }
}

async function copy() {
  const ta = U.$("noticetext");
  try { await navigator.clipboard.writeText(ta.value); }
  catch (e) { ta.select(); document.execCommand("copy"); } // plain http: no clipboard API
  U.$("noticemsg").textContent = t("copied");
}

U.start(PT, m => {
  me = m;
  if (me.role === "operator" || me.role === "admin") {
    U.$("creator").classList.remove("hidden");
    U.$("pwform").onsubmit = create;
    buildings();
  }
  U.$("noticecopy").onclick = copy;
  load();
  setInterval(load, 15000);
});
