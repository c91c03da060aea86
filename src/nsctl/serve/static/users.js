// The user namespace tree: each user namespace with its child user namespaces
// first, then the namespaces it owns, grouped by type.

import { badge, containerLabel, h, nsName, tag } from "./dom.js";
import { displayName, filterActive, matches, ownerUid } from "./model.js";
import { drawTree } from "./treeview.js";

const ORDER = ["user", "mnt", "net", "pid", "uts", "ipc", "cgroup", "time"];
const OPEN_UP_TO = 6;   // a type group this small starts open

/** Row text shared with the PID tree: name, inode, owner, holders, processes, marks. */
export function nsFacts(node, index, { uid = false } = {}) {
  const pids = node.pids || [];
  const name = displayName(node, index);
  const label = nsName(node.type, node.ns);
  const owner = uid ? ownerUid(node, index) : null;
  return [
    h("span", { class: "name" }, name),
    name !== label ? h("span", { class: "ino", title: node.stable_path || "" }, label) : null,
    owner !== null ? tag(`uid ${owner}`, "uid") : null,
    node.container && containerLabel(node.container) !== name ? tag(containerLabel(node.container), "container") : null,
    (node.held_by || []).filter((why) => why !== "process" || !pids.length).map((why) => tag(why, `held-${why}`)),
    pids.length ? tag(`${pids.length} proc${pids.length === 1 ? "" : "s"}`, "nprocs") : null,
    node.hidden ? tag("hidden", "hidden") : null,
  ];
}

/** The tree as drawn: user namespaces, their child user namespaces, type groups. */
function items(nodes) {
  const wrap = (node) => {
    if (node.ns === undefined) return { kind: "group", key: `g-${node.label}`, label: node.label, kids: (node.children || []).map(wrap) };
    if (node.type !== "user") return { kind: "ns", node, key: `u${node.ns}`, kids: [] };
    const kids = node.children || [];
    const users = kids.filter((k) => k.type === "user").map(wrap);
    const groups = [];
    for (const type of ORDER.slice(1)) {
      const owned = kids.filter((k) => k.type === type).map(wrap);
      if (owned.length > 1) groups.push({ kind: "group", key: `g${node.ns}-${type}`, type, kids: owned });
      else groups.push(...owned);
    }
    return { kind: "ns", node, key: `u${node.ns}`, kids: [...users, ...groups], owns: kids.length - users.length };
  };
  return nodes.map(wrap);
}

/** Draw the tree; returns the keys of the rows the search matches, in order. */
export function renderUsers(pane, ctx) {
  const { tree, index, filter, selected, current } = ctx;
  const roots = items((tree && tree.tree) || []);
  const active = filterActive(filter);
  const keep = new Set();       // keys shown: matches and what leads to them
  const matched = new Set();
  const lead = new Set();       // the selection, the current match, and what leads to them
  const above = new Set();      // what leads to them: open
  const hits = [];
  const mark = (item) => {
    const isHit = item.kind === "ns" && (!active || matches(item.node, filter, index));
    if (isHit) {
      matched.add(item.key);
      if (active) hits.push(item.key);
    }
    let any = false;
    for (const kid of item.kids) {
      any = mark(kid) || any;
      if (lead.has(kid.key)) {
        lead.add(item.key);
        above.add(item.key);
      }
    }
    if ((item.kind === "ns" && item.node.ns === selected) || item.key === current) lead.add(item.key);
    if (any || isHit) keep.add(item.key);
    return keep.has(item.key);
  };
  roots.forEach(mark);
  const row = (item) => {
    if (item.kind === "group") {
      const n = item.kids.filter((k) => keep.has(k.key)).length;
      return h("button", { type: "button", class: "group" },
        item.type ? badge(item.type) : null,
        h("span", { class: "name" }, item.label || `${n} ${item.type} namespace${n === 1 ? "" : "s"}`),
        active && n !== item.kids.length ? tag(`${n} of ${item.kids.length}`) : null);
    }
    const { node } = item;
    return h("button", {
      type: "button",
      class: `ns${matched.has(item.key) ? (active ? " match" : "") : " context"}${selected === node.ns ? " selected" : ""}`,
      "data-ns": node.ns,
      "data-type": node.type,
      "aria-current": selected === node.ns ? "true" : null,
    }, badge(node.type), nsFacts(node, index, { uid: node.type === "user" }),
    item.owns ? tag(`owns ${item.owns}`, "owns") : null);
  };
  const sig = (item) => {
    if (item.kind === "group") return `${item.label || item.type} ${item.kids.filter((k) => keep.has(k.key)).length} ${item.kids.length} ${active}`;
    const { node } = item;
    return JSON.stringify([displayName(node, index), node.type === "user" ? ownerUid(node, index) : null,
      containerLabel(node.container), node.held_by, (node.pids || []).length, node.hidden,
      matched.has(item.key), active, selected === node.ns, item.owns]);
  };
  if (!keep.size) {
    pane._plan = null;
    pane.replaceChildren(h("p", { class: "empty" }, "No namespace matches the search."));
    return hits;
  }
  const view = drawTree(pane, roots, {
    label: "user namespaces",
    key: (item) => item.key,
    row,
    sig,
    children: (item) => item.kids,
    visible: (item) => keep.has(item.key),
    keep: (item) => lead.has(item.key),
    isOpen: (item, key) => {
      if (above.has(key)) return true;
      if (active) return ctx.toggled.has(`f${key}`) ? ctx.toggled.get(`f${key}`) : true;
      if (ctx.toggled.has(key)) return ctx.toggled.get(key);
      return item.kind !== "group" || item.kids.length <= OPEN_UP_TO;
    },
    onToggle: (key, open) => ctx.toggled.set(active ? `f${key}` : key, open),
    expanded: ctx.expanded,
  });
  if (pane.firstChild !== view || pane.childNodes.length !== 1) pane.replaceChildren(view);
  return hits;
}
