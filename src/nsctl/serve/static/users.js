// The user namespace tree: each user namespace with the namespaces it owns
// nested under it, then its child user namespaces.

import { badge, containerLabel, h, nsName, tag } from "./dom.js";
import { filterActive, matches } from "./model.js";
import { treeView } from "./treeview.js";

function ordered(node) {
  const kids = node.children || [];
  return [...kids.filter((k) => k.type !== "user"), ...kids.filter((k) => k.type === "user")];
}

/** Row text shared with the PID tree: inode, stable path, holders, processes, marks. */
export function nsFacts(node) {
  const pids = node.pids || [];
  return [
    h("span", { class: "ino" }, String(node.ns)),
    node.name && node.name !== nsName(node.type, node.ns) ? h("span", { class: "name" }, node.name) : null,
    node.stable_path ? h("span", { class: "spath" }, node.stable_path) : null,
    (node.held_by || []).map((why) => tag(why, `held-${why}`)),
    pids.length ? tag(`${pids.length} proc${pids.length === 1 ? "" : "s"}`, "nprocs") : null,
    node.hidden ? tag("hidden", "hidden") : null,
    node.container ? tag(containerLabel(node.container), "container") : null,
  ];
}

export function renderUsers(pane, ctx) {
  const { tree, index, filter, selected } = ctx;
  const roots = (tree && tree.tree) || [];
  const active = filterActive(filter);
  const matched = new Set();
  const keep = new Set();
  const toSelected = new Set();   // the selected namespace and its ancestors
  const mark = (node) => {
    let any = false;
    for (const kid of node.children || []) {
      any = mark(kid) || any;
      if (toSelected.has(kid.ns)) toSelected.add(node.ns);
    }
    if (node.ns === selected) toSelected.add(node.ns);
    if (!active || matches(node, filter, index)) matched.add(node.ns);
    if (any || matched.has(node.ns)) keep.add(node.ns);
    return keep.has(node.ns);
  };
  roots.forEach(mark);
  const row = (node) => {
    const owns = node.type === "user" ? (node.children || []).length : 0;
    return h("button", {
      type: "button",
      class: `ns${matched.has(node.ns) ? "" : " context"}${selected === node.ns ? " selected" : ""}`,
      "data-ns": node.ns,
      "data-type": node.type,
      "aria-current": selected === node.ns ? "true" : null,
    }, badge(node.type), nsFacts(node), owns ? tag(`owns ${owns}`, "owns") : null);
  };
  const view = treeView(roots, {
    label: "user namespaces",
    key: (node) => `u${node.ns}`,
    row,
    children: ordered,
    visible: (node) => keep.has(node.ns),
    keep: (node) => toSelected.has(node.ns),
    collapsed: ctx.collapsed,
    expanded: ctx.expanded,
  });
  pane.replaceChildren(keep.size ? view : h("p", { class: "empty" }, "No namespace matches the filter."));
}
