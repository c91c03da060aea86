// The PID namespace tree with the process tree inside each namespace: every
// process with its PID at each level (sleep 26590/4/1), each init marked.

import { badge, containerLabel, h, tag } from "./dom.js";
import { filterActive, matches, procPasses } from "./model.js";
import { treeView } from "./treeview.js";

function pidText(proc) {
  return (proc.nspid && proc.nspid.length ? proc.nspid : [proc.pid]).join("/");
}

/** Wrap the document in items the tree view can walk: namespaces and processes. */
function items(pidnsList, ctx) {
  const { index, filter } = ctx;
  const active = filterActive(filter, { ignoreType: true });
  const nsFilter = { ...filter, proc: "" };
  const wrapProc = (proc, nsShown) => {
    const kids = (proc.children || []).map((p) => wrapProc(p, nsShown));
    const shown = nsShown && (procPasses(proc, filter) || kids.some((k) => k.shown));
    return { kind: "proc", proc, kids, shown, hit: Boolean(filter.proc) && procPasses(proc, filter) };
  };
  const wrapNs = (pidns) => {
    const node = index.byIno.get(pidns.ns) || { ns: pidns.ns, type: "pid", pids: [] };
    const hit = !active || matches(node, nsFilter, index, { ignoreType: true });
    const procs = (pidns.processes || []).map((p) => wrapProc(p, hit));
    const subs = (pidns.children || []).map(wrapNs);
    const own = hit && (!filter.proc || procs.some((p) => p.shown));
    const shown = own || subs.some((s) => s.shown);
    const toSelected = pidns.ns === ctx.selected || subs.some((s) => s.toSelected);
    return { kind: "pidns", pidns, node, kids: [...procs, ...subs], shown, hit: own, toSelected };
  };
  return pidnsList.map(wrapNs);
}

function nsRow(item, selected) {
  const { pidns, node } = item;
  const cls = `ns${item.hit ? "" : " context"}${selected === pidns.ns ? " selected" : ""}`;
  return h("button", {
    type: "button", class: cls, "data-ns": pidns.ns, "data-type": "pid",
    "aria-current": selected === pidns.ns ? "true" : null,
  },
  badge("pid"),
  h("span", { class: "ino" }, String(pidns.ns)),
  node.stable_path ? h("span", { class: "spath" }, node.stable_path) : null,
  tag(`level ${pidns.level}`),
  tag(pidns.status, `status-${pidns.status}`),
  tag(`${pidns.nprocs} proc${pidns.nprocs === 1 ? "" : "s"}`, "nprocs"),
  pidns.init ? tag(`init ${pidns.init}`) : null,
  (pidns.pending || []).length ? tag(`${pidns.pending.length} pending`, "warn") : null,
  node.hidden ? tag("hidden", "hidden") : null,
  node.container ? tag(containerLabel(node.container), "container") : null);
}

function procRow(item, inNs) {
  const { proc } = item;
  return h("button", {
    type: "button", class: `proc${item.hit ? " hit" : ""}`, "data-pid": proc.pid, "data-in-ns": inNs,
    title: `PID ${proc.pid} here; ${pidText(proc)} from the top level down`,
  },
  h("span", { class: "comm" }, proc.comm),
  " ",
  h("span", { class: "pids" }, pidText(proc)),
  proc.init ? tag("init", "init") : null,
  proc.state && !"SRI".includes(proc.state) ? tag(proc.state, "state") : null,
  proc.pid_for_children && proc.pid_for_children !== inNs ? tag(`children in pid:[${proc.pid_for_children}]`, "warn") : null);
}

export function renderPids(pane, ctx) {
  const roots = items((ctx.pidtree && ctx.pidtree.pid_namespaces) || [], ctx);
  // Processes know their namespace only through the item that holds them.
  const owner = new Map();
  const note = (item, ns) => {
    for (const kid of item.kids) {
      if (kid.kind === "proc") owner.set(kid, ns);
      note(kid, kid.kind === "pidns" ? kid.pidns.ns : ns);
    }
  };
  roots.forEach((r) => note(r, r.pidns.ns));
  const view = treeView(roots, {
    label: "PID namespaces and their processes",
    key: (item) => (item.kind === "pidns" ? `n${item.pidns.ns}` : `p${item.proc.pid}`),
    row: (item) => (item.kind === "pidns" ? nsRow(item, ctx.selected) : procRow(item, owner.get(item))),
    children: (item) => item.kids,
    visible: (item) => item.shown,
    keep: (item) => Boolean(item.toSelected),
    collapsed: ctx.collapsed,
    expanded: ctx.expanded,
  });
  pane.replaceChildren(roots.some((r) => r.shown) ? view : h("p", { class: "empty" }, "No PID namespace or process matches the filter."));
}
