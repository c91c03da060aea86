// The PID namespace tree with the process tree inside each namespace: every
// process with its PID at each level (sleep 26590/4/1), each init marked.

import { badge, containerLabel, h, tag } from "./dom.js";
import { displayName, filterActive, matches, procMatches } from "./model.js";
import { nsFacts } from "./users.js";
import { drawTree } from "./treeview.js";

function pidText(proc) {
  return (proc.nspid && proc.nspid.length ? proc.nspid : [proc.pid]).join("/");
}

/** Wrap the document in items the tree view can walk: namespaces and processes.
 * A namespace the search matches shows all its processes (those the search
 * names marked); processes the search names show in any namespace. */
function items(pidnsList, ctx) {
  const { index, filter } = ctx;
  const active = filterActive(filter, { ignoreType: true });
  const wrapProc = (proc, nsHit) => {
    const kids = (proc.children || []).map((p) => wrapProc(p, nsHit));
    const hit = active && procMatches(proc, filter.q, index);
    const shown = !active || nsHit || hit || kids.some((k) => k.shown);
    return { kind: "proc", proc, kids, shown, hit, key: `p${proc.pid}` };
  };
  const wrapNs = (pidns) => {
    const node = index.byIno.get(pidns.ns) || { ns: pidns.ns, type: "pid", pids: [] };
    const hit = !active || matches(node, filter, index, { ignoreType: true });
    const procs = (pidns.processes || []).map((p) => wrapProc(p, hit && !filter.q));
    const subs = (pidns.children || []).map(wrapNs);
    const shown = hit || procs.some((p) => p.shown) || subs.some((s) => s.shown);
    return { kind: "pidns", pidns, node, kids: [...procs, ...subs], shown, hit: active && hit, key: `n${pidns.ns}` };
  };
  return pidnsList.map(wrapNs);
}

function nsRow(item, ctx) {
  const { pidns, node } = item;
  const { selected } = ctx;
  const cls = `ns${item.hit ? " match" : ""}${selected === pidns.ns ? " selected" : ""}`;
  return h("button", {
    type: "button", class: cls, "data-ns": pidns.ns, "data-type": "pid",
    "aria-current": selected === pidns.ns ? "true" : null,
  },
  badge("pid"),
  nsFacts({ ...node, pids: [] }, ctx.index),
  tag(`level ${pidns.level}`),
  pidns.status !== "active" ? tag(pidns.status, `status-${pidns.status}`) : null,
  tag(`${pidns.nprocs} proc${pidns.nprocs === 1 ? "" : "s"}`, "nprocs"),
  (pidns.pending || []).length ? tag(`${pidns.pending.length} pending`, "warn") : null);
}

function procRow(item, inNs) {
  const { proc } = item;
  return h("button", {
    type: "button", class: `proc${item.hit ? " match" : ""}`, "data-pid": proc.pid, "data-in-ns": inNs,
    title: `PID ${proc.pid} here; ${pidText(proc)} from the top level down`,
  },
  h("span", { class: "comm" }, proc.comm),
  " ",
  h("span", { class: "pids" }, pidText(proc)),
  proc.init ? tag("init", "init") : null,
  proc.state && !"SRI".includes(proc.state) ? tag(proc.state, "state") : null,
  proc.pid_for_children && proc.pid_for_children !== inNs ? tag(`children in pid:[${proc.pid_for_children}]`, "warn") : null);
}

/** Draw the tree; returns the keys of the rows the search matches, in order. */
export function renderPids(pane, ctx) {
  const roots = items((ctx.pidtree && ctx.pidtree.pid_namespaces) || [], ctx);
  // Processes know their namespace only through the item that holds them.
  const owner = new Map();
  const hits = [];
  const lead = new Set();
  const above = new Set();
  const note = (item, ns) => {
    if (item.hit && item.shown) hits.push(item.key);
    let on = item.key === ctx.current || (item.kind === "pidns" && item.pidns.ns === ctx.selected);
    for (const kid of item.kids) {
      if (kid.kind === "proc") owner.set(kid, ns);
      if (note(kid, kid.kind === "pidns" ? kid.pidns.ns : ns)) {
        on = true;
        above.add(item.key);
      }
    }
    if (on) lead.add(item.key);
    return on;
  };
  roots.forEach((r) => note(r, r.pidns.ns));
  const active = filterActive(ctx.filter, { ignoreType: true });
  if (!roots.some((r) => r.shown)) {
    pane._plan = null;
    pane.replaceChildren(h("p", { class: "empty" }, "No PID namespace or process matches the search."));
    return hits;
  }
  const sig = (item) => (item.kind === "pidns"
    ? JSON.stringify([displayName(item.node, ctx.index), item.hit, ctx.selected === item.pidns.ns, item.pidns.level, item.pidns.status, item.pidns.nprocs, (item.pidns.pending || []).length, item.node.held_by, item.node.hidden, containerLabel(item.node.container)])
    : JSON.stringify([item.proc.comm, item.proc.nspid, item.proc.init, item.proc.state, item.proc.pid_for_children, item.hit, owner.get(item)]));
  const view = drawTree(pane, roots, {
    label: "PID namespaces and their processes",
    key: (item) => item.key,
    sig,
    row: (item) => (item.kind === "pidns" ? nsRow(item, ctx) : procRow(item, owner.get(item))),
    children: (item) => item.kids,
    visible: (item) => item.shown,
    keep: (item) => lead.has(item.key),
    isOpen: (item, key) => {
      if (above.has(key)) return true;
      const k = active ? `f${key}` : key;
      if (ctx.toggled.has(k)) return ctx.toggled.get(k);
      return active || key !== "p2";   // the kernel threads (under kthreadd) start closed
    },
    onToggle: (key, open) => ctx.toggled.set(active ? `f${key}` : key, open),
    expanded: ctx.expanded,
  });
  if (pane.firstChild !== view || pane.childNodes.length !== 1) pane.replaceChildren(view);
  return hits;
}
