// A collapsible tree (nested lists with ARIA tree roles) and its keyboard use.
//
// Items are the caller's objects; the caller says how to key them, draw one
// row (a focusable element with class "item"), list their children, which are
// shown and which are open.  Lists longer than the limit end in a "show more"
// button; expanded lists are kept in a Set the caller owns, so they survive a
// re-render.

import { h } from "./dom.js";

const LIMIT = 200;   // rows per list before a "show more" button

/**
 * Draw a tree into a pane, or, when the rows it shows are the same ones in the
 * same places as last time (only their content changed, as on most model
 * changes), replace just the rows that changed: a redraw then costs what
 * changed, not the whole tree.  When the rows shown change (a namespace comes
 * or goes in an open list), the tree's lists are built again but each row whose
 * drawing did not change is the element drawn before, kept by key.  opts as for
 * treeView, plus sig(item) -> string: everything row(item) draws.
 */
export function drawTree(pane, roots, opts) {
  const plan = [];
  const walk = (items, listKey, depth) => {
    const shown = items.filter(opts.visible);
    const limit = opts.expanded.has(listKey) ? Infinity : LIMIT;
    const kept = shown.slice(limit).filter((item) => opts.keep && opts.keep(item));
    for (const item of [...shown.slice(0, limit), ...kept]) {
      const key = opts.key(item);
      const kids = opts.children(item).filter(opts.visible);
      const open = kids.length > 0 && opts.isOpen(item, key);
      plan.push({ key, depth, kids: kids.length > 0, open, sig: opts.sig(item), item });
      if (open) walk(kids, key, depth + 1);
    }
    if (shown.length > limit) plan.push({ key: `more ${listKey} ${shown.length - limit - kept.length}`, depth });
  };
  walk(roots, "roots", 0);
  const old = pane._plan;
  const same = old && pane.contains(old.tree) && old.rows.length === plan.length &&
    old.rows.every((r, k) => r.key === plan[k].key && r.depth === plan[k].depth && r.kids === plan[k].kids && r.open === plan[k].open);
  // key -> {sig, el}: the row elements drawn, for the next draw to keep.
  const drawn = (same && pane._rows) || new Map();
  if (same) {
    for (let k = 0; k < plan.length; k++) {
      const was = old.rows[k];
      if (was.sig === plan[k].sig || !plan[k].item) continue;
      const el = old.tree.querySelector(`.item[data-key="${CSS.escape(plan[k].key)}"]`);
      if (!el) continue;
      const row = opts.row(plan[k].item);
      row.classList.add("item");
      row.dataset.key = plan[k].key;
      row.tabIndex = el.tabIndex;
      el.replaceWith(row);
      drawn.set(plan[k].key, { sig: plan[k].sig, el: row });
    }
    pane._plan = { tree: old.tree, rows: plan.map(({ item, ...rest }) => rest) };
    return old.tree;
  }
  const before = pane._rows || new Map();
  const sigs = new Map(plan.map((r) => [r.key, r.sig]));
  const row = (item) => {
    const key = opts.key(item);
    const sig = sigs.has(key) ? sigs.get(key) : opts.sig(item);
    const kept = before.get(key);
    // (an element is in one place at a time: a key drawn twice gets a new one)
    const el = kept && kept.sig === sig && !drawn.has(key) ? kept.el : opts.row(item);
    drawn.set(key, { sig, el });
    return el;
  };
  pane._rows = drawn;
  // Out of the page first: rows moved out of a tree on the page cost a layout
  // invalidation each (the caller puts the new tree in; renderTab keeps scroll and focus).
  pane.replaceChildren();
  const tree = treeView(roots, {
    ...opts,
    row,
    onToggle: (key, open) => {
      pane._plan = null;   // the DOM no longer follows the plan
      opts.onToggle(key, open);
    },
    onMore: () => { pane._plan = null; },
  });
  pane._plan = { tree, rows: plan.map(({ item, ...rest }) => rest) };
  return tree;
}

/**
 * opts: key(item) -> string, row(item) -> Element, children(item) -> items,
 * visible(item) -> bool, isOpen(item, key) -> bool, onToggle(key, open),
 * expanded: Set of list keys, label: the tree's accessible name; optional
 * keep(item) -> bool: shown even past the limit (the selection, the current
 * search match, and what leads to them).
 */
export function treeView(roots, opts) {
  const ul = h("ul", { class: "tree", role: "tree", "aria-label": opts.label });
  appendItems(ul, roots.filter(opts.visible), opts, "roots");
  const first = ul.querySelector(".item");
  if (first) first.tabIndex = 0;   // one tab stop per tree; arrow keys do the rest
  return ul;
}

function appendItems(ul, items, opts, listKey) {
  const limit = opts.expanded.has(listKey) ? Infinity : LIMIT;
  const kept = items.slice(limit).filter((item) => opts.keep && opts.keep(item));
  for (const item of [...items.slice(0, limit), ...kept]) ul.append(itemElement(item, opts));
  if (items.length > limit) {
    const rest = items.slice(limit).filter((item) => !kept.includes(item));
    const button = h("button", { type: "button", class: "more" }, `show ${rest.length} more`);
    const li = h("li", { role: "none" }, button);
    button.addEventListener("click", () => {
      if (opts.onMore) opts.onMore();
      opts.expanded.add(listKey);
      li.remove();
      for (const item of rest) ul.append(itemElement(item, opts));
    });
    ul.append(li);
  }
}

function itemElement(item, opts) {
  const key = opts.key(item);
  const kids = opts.children(item).filter(opts.visible);
  const row = opts.row(item);
  row.classList.add("item");
  row.dataset.key = key;
  row.tabIndex = -1;
  const li = h("li", { role: "treeitem" });
  if (!kids.length) {
    li.append(h("div", { class: "row" }, h("span", { class: "twisty leaf", "aria-hidden": "true" }), row));
    return li;
  }
  const toggle = h("button", { type: "button", class: "twisty", tabindex: "-1" });
  const group = h("ul", { role: "group" });
  const setOpen = (open, byUser) => {
    li.setAttribute("aria-expanded", String(open));
    toggle.setAttribute("aria-label", open ? "collapse" : "expand");
    if (byUser) opts.onToggle(key, open);
    if (open && !group.childElementCount) appendItems(group, kids, opts, key);
  };
  toggle.addEventListener("click", () => setOpen(li.getAttribute("aria-expanded") !== "true", true));
  li.append(h("div", { class: "row" }, toggle, row), group);
  li._setOpen = setOpen;
  setOpen(opts.isOpen(item, key), false);
  return li;
}

/**
 * Arrow keys in a tree pane: up/down move between visible rows, right opens
 * (or steps into) an item, left closes it (or steps out to its parent),
 * Home/End go to the first/last row.
 */
export function treeKeys(pane) {
  // The row last focused is the tree's tab stop.
  pane.addEventListener("focusin", (e) => {
    const item = e.target.closest(".item");
    if (!item) return;
    for (const el of pane.querySelectorAll('.item[tabindex="0"]')) if (el !== item) el.tabIndex = -1;
    item.tabIndex = 0;
  });
  pane.addEventListener("keydown", (e) => {
    const current = e.target.closest(".item");
    if (!current || !pane.contains(current)) return;
    const li = current.closest("li");
    if ((e.key === "Enter" || e.key === " ") && li._setOpen && !current.dataset.ns) {
      // A group row: Enter opens and closes it.
      e.preventDefault();
      li._setOpen(li.getAttribute("aria-expanded") !== "true", true);
      return;
    }
    const rows = [...pane.querySelectorAll(".item")].filter((el) => el.offsetParent !== null);
    const at = rows.indexOf(current);
    let next = null;
    if (e.key === "ArrowDown") next = rows[at + 1];
    else if (e.key === "ArrowUp") next = rows[at - 1];
    else if (e.key === "Home") next = rows[0];
    else if (e.key === "End") next = rows[rows.length - 1];
    else if (e.key === "ArrowRight" && li._setOpen) {
      if (li.getAttribute("aria-expanded") === "true") next = rows[at + 1];
      else li._setOpen(true, true);
    } else if (e.key === "ArrowLeft") {
      if (li._setOpen && li.getAttribute("aria-expanded") === "true") li._setOpen(false, true);
      else next = li.parentElement.closest("li") && li.parentElement.closest("li").querySelector(".item");
    } else return;
    e.preventDefault();
    if (next) next.focus();
  });
}
