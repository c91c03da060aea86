// The details panel: everything `nsctl show SPEC --json` says about one
// namespace, with what it sees (its view), as lists and tables.  Inodes of
// namespaces the page knows become buttons that select them.

import { badge, containerText, fill, h, nsName, tag } from "./dom.js";
import { displayName } from "./model.js";

const ROW_LIMIT = 100;
const NS_KEYS = new Set(["owner", "parent", "netns", "child", "ns", "pid_for_children", "time_for_children"]);
const WRAP = new Set(["cmdline", "addresses", "path", "root", "what", "controllers", "link"]);   // long cells
const SHOWN_ABOVE = new Set(["ns", "type", "processes", "refs", "view", "pids", "pid_namespace"]);

// How some keys read better than their JSON.
const FORMAT = {
  addresses: (list) => (list || []).map((a) => `${a.address}/${a.prefixlen}`).join(", ") || "—",
  // An interface's link (an object), or a process's ns link name ("net", "pid_for_children").
  link: (l) => (typeof l === "string" ? l : l ? `${l.role} ${l.ifname || ""}${l.ifindex ? ` (#${l.ifindex})` : ""}${l.netns ? ` in net:[${l.netns}]` : ""}` : "—"),
  container: (c) => containerText(c) || "—",
  cmdline: (argv) => (argv || []).join(" "),
  nspid: (list) => (list ? list.join("/") : "—"),
  // An ID map (/proc/PID/uid_map): rows of [first ID inside, first ID outside, count].
  uid_map: (rows, ctx) => idMap(rows, ctx),
  gid_map: (rows, ctx) => idMap(rows, ctx),
  ns: (links, ctx) => (links && typeof links === "object" ? Object.entries(links).map(([k, v]) => `${k} ${v}`).join(", ") : value(links, ctx)),
};

function idMap(rows, ctx) {
  if (!Array.isArray(rows) || !rows.every((r) => Array.isArray(r) && r.length === 3)) return value(rows, ctx);
  if (!rows.length) return h("span", { class: "none" }, "none (no ID is mapped)");
  return table(rows.map(([inside, outside, count]) => ({ inside, outside, count })), ctx);
}

function nsButton(ino, ctx) {
  const node = ctx.index.byIno.get(ino);
  if (!node) return String(ino);
  const name = displayName(node, ctx.index);
  const label = nsName(node.type, ino);
  return h("button", { type: "button", class: "goto", "data-goto": ino, "data-goto-type": node.type, title: label },
    name === label ? label : `${name} (${label})`);
}

function value(v, ctx, key) {
  if (key && FORMAT[key] && !(key === "ns" && typeof v === "number")) return FORMAT[key](v, ctx);
  if (v === null || v === undefined) return h("span", { class: "none" }, "—");
  if (key && NS_KEYS.has(key) && typeof v === "number") return nsButton(v, ctx);
  if (Array.isArray(v)) {
    if (!v.length) return h("span", { class: "none" }, "none");
    if (v.every((x) => x && typeof x === "object" && !Array.isArray(x))) return table(v, ctx);
    if (v.every((x) => x === null || typeof x !== "object")) return v.join(", ");
    return h("ul", { class: "plain" }, v.map((x) => h("li", {}, value(x, ctx))));
  }
  if (typeof v === "object") return kv(v, ctx);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

function kv(obj, ctx, skip = new Set()) {
  const entries = Object.entries(obj).filter(([k]) => !skip.has(k));
  return h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, value(v, ctx, k))]));
}

function table(rows, ctx) {
  const cols = [];
  for (const row of rows) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
  const body = h("tbody");
  const addRows = (from, to) => {
    for (const row of rows.slice(from, to)) body.append(h("tr", {}, cols.map((c) => h("td", { class: WRAP.has(c) ? "wrap" : null }, value(row[c], ctx, c)))));
  };
  addRows(0, ROW_LIMIT);
  const wrap = h("div", { class: "tablewrap" }, h("table", {}, h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c.replaceAll("_", " "))))), body));
  if (rows.length > ROW_LIMIT) {
    const more = h("button", { type: "button", class: "more" }, `show all ${rows.length}`);
    more.addEventListener("click", () => {
      more.remove();
      addRows(ROW_LIMIT, rows.length);
    });
    wrap.append(more);
  }
  return wrap;
}

/** The copies of one bind mount (one path in many mount namespaces) as one row. */
function mergeRefs(refs) {
  const out = [];
  const byPath = new Map();
  for (const ref of refs) {
    if (ref.kind !== "bindmount" || !ref.path) {
      out.push(ref);
      continue;
    }
    const seen = byPath.get(ref.path);
    if (seen) {
      seen.copies += 1;
      continue;
    }
    const row = { ...ref, copies: 1 };
    byPath.set(ref.path, row);
    out.push(row);
  }
  return out.map((r) => (r.copies > 1 ? { ...r, mntns: `${r.copies} mount namespaces` } : r)).map(({ copies, ...r }) => r);
}

function section(title, ...content) {
  return h("section", {}, h("h3", {}, title), content);
}

function viewSection(view, ctx, loading) {
  if (!view) return section("Sees", h("p", { class: "none" }, loading ? "Loading the view…" : "Not read."));
  const again = h("button", { type: "button", class: "more", "data-reread": "", title: "read what it sees again (it is read again by itself only when the namespace changes)" }, loading ? "reading…" : "read again");
  if (view.error) return section("Sees", h("p", { class: "error" }, String(view.error)));
  const { type, interfaces, ...rest } = view;
  const brief = (interfaces || []).map(({ name, kind, operstate, mtu, mac, addresses, link }) => ({ name, kind, operstate, mtu, mac, addresses, link }));
  const part = section("Sees", again,
    interfaces ? h("div", { class: "interfaces" }, h("h4", {}, "interfaces"), value(brief, ctx)) : null,
    kv(rest, ctx));
  part.dataset.view = type;
  return part;
}

/**
 * Fill the panel.  state: {ino, type, doc (the show document or null),
 * error, gone, loading}; ctx: {index}.
 */
export function renderDetails(panel, state, ctx) {
  if (!state) {
    panel.dataset.selected = "";
    fill(panel, h("p", { class: "hint" }, "Select a namespace (click it, or Enter on it) to see everything about it here."));
    return;
  }
  const { ino, type, doc } = state;
  panel.dataset.selected = String(ino);
  const node = ctx.index.byIno.get(ino) || (doc ? { ...doc } : { ns: ino, type });
  const label = nsName(type, ino);
  const name = displayName(node, ctx.index) || label;
  const uid = doc && doc.owner_uid !== undefined && doc.owner_uid !== null ? doc.owner_uid : null;
  const head = h("header", {},
    badge(type),
    h("h2", { id: "details-title" }, name),
    h("button", { type: "button", class: "close", "aria-label": "close details", "data-close": "" }, "×"));
  const sub = h("p", { class: "subtitle" },
    h("code", {}, label),
    doc && doc.id !== null && doc.id !== undefined ? ` · id ${doc.id}` : "",
    uid !== null ? ` · owner uid ${uid}` : "",
    node.stable_path ? [" · ", h("code", {}, node.stable_path)] : "");
  const notes = [];
  if (state.gone) notes.push(h("p", { class: "warn" }, "This namespace is gone: what follows is how it was."));
  if (state.error && !state.gone) notes.push(h("p", { class: "error" }, state.error));
  if (state.loading && !doc) notes.push(h("p", { class: "none" }, "Loading…"));
  if (!doc) {
    fill(panel, head, sub, notes);
    return;
  }
  const procs = doc.processes || [];
  // The scan's problems and partial flag are the whole host's (the banner says them);
  // here only those about this namespace or a process in it.
  const inIt = new Set(procs.map((p) => p.pid));
  const problems = (doc.problems || []).filter((p) =>
    (p.pid !== null && p.pid !== undefined && inIt.has(p.pid)) || String(p.what || "").includes(label));
  const skip = new Set([...SHOWN_ABOVE, "partial"]);
  if (!problems.length) skip.add("problems");
  // Only user and PID namespaces have a parent: elsewhere "parent —" says nothing.
  if (doc.type !== "user" && doc.type !== "pid") skip.add("parent");
  fill(panel,
    head, sub, notes,
    h("div", { class: "summary" },
      doc.hidden ? tag("hidden: only a child namespace keeps it", "hidden") : null,
      (doc.held_by || []).map((why) => tag(why, `held-${why}`))),
    kv({ ...doc, problems }, ctx, skip),
    doc.pid_namespace ? section("PID namespace", kv(doc.pid_namespace, ctx, new Set(["ns"]))) : null,
    section(`Processes (${procs.length})`, procs.length
      ? table(procs.map(({ pid, nspid, comm, cmdline, uid, state: st, container }) => ({ pid, nspid, comm, cmdline, uid, state: st, container })), ctx)
      : h("p", { class: "none" }, "No process is in it.")),
    section(`References (${(doc.refs || []).length})`, value(mergeRefs(doc.refs || []), ctx)),
    viewSection(doc.view, ctx, state.loading),
    h("details", { class: "raw" }, h("summary", {}, "JSON"), h("pre", {}, JSON.stringify(doc, null, 2))),
  );
}
