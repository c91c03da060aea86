// The network topology as a picture: each network namespace a box listing its
// interfaces, each link between namespaces (veth pair, a device whose lower
// device is elsewhere) a line between the two interfaces.
//
// Namespaces with nothing but a loopback (and no link) are folded into one
// group under the picture; the search can show only the namespaces it matches.
//
// Layout (deterministic, no physics): a grid as wide as the pane; breadth-first
// layers from the host's namespace over the links, then the other connected
// groups the same way, then the namespaces with no link; each layer starts a
// new row.  Lines run in the gutters between the boxes (see route()).

import { h, svg } from "./dom.js";
import { displayName, filterActive, matches } from "./model.js";

const BOX_W = 210;
const GAP_X = 44;       // gutters: the lines run in them
const GAP_Y = 34;
const MARGIN = GAP_X;   // a whole gutter left of the first column: lines run there too
const LANES = 7;        // parallel lines a gutter holds
const HEAD = 40;        // box header: name, inode
const LINE = 18;        // one interface
const MAX_IFACES = 8;   // shown per box; the rest is "+N more"
const PAD = 12;

function linksOf(net) {
  return (net.links || []).filter((l) => l.a && l.b && l.a.ns !== l.b.ns);
}

/** Rows of namespaces, layered as described above. */
function layers(namespaces, links) {
  const byIno = new Map(namespaces.map((n) => [n.ns, n]));
  const near = new Map(namespaces.map((n) => [n.ns, new Set()]));
  for (const l of links) {
    if (near.has(l.a.ns) && near.has(l.b.ns)) {
      near.get(l.a.ns).add(l.b.ns);
      near.get(l.b.ns).add(l.a.ns);
    }
  }
  const byName = (a, b) => String(a.name).localeCompare(String(b.name)) || a.ns - b.ns;
  const starts = [...namespaces].sort((a, b) => (b.ours - a.ours) || byName(a, b));
  const placed = new Set();
  const rows = [];
  for (const start of starts) {
    if (placed.has(start.ns) || !near.get(start.ns).size) continue;
    let layer = [start.ns];
    placed.add(start.ns);
    while (layer.length) {
      rows.push(layer.map((ino) => byIno.get(ino)).sort(byName));
      const next = [];
      for (const ino of layer) {
        for (const other of near.get(ino)) {
          if (!placed.has(other)) {
            placed.add(other);
            next.push(other);
          }
        }
      }
      layer = next;
    }
  }
  const alone = starts.filter((n) => !placed.has(n.ns));
  if (alone.length) rows.push(alone);
  return rows;
}

function boxHeight(n) {
  const count = (n.interfaces || []).length;
  const lines = n.error ? 2 : Math.min(count, MAX_IFACES) + (count > MAX_IFACES ? 1 : 0);
  return HEAD + Math.max(lines, 1) * LINE + PAD / 2;
}

function shorten(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** IPv4 first, then global IPv6, then link-local. */
function mainAddress(i) {
  const list = i.addresses || [];
  return list.find((a) => a.family === "inet") || list.find((a) => !String(a.address).startsWith("fe80")) || list[0];
}

function ifaceLabel(i) {
  const addr = mainAddress(i);
  return `${i.name}${i.kind ? ` (${i.kind})` : ""}${addr ? ` ${addr.address}/${addr.prefixlen}` : ""}`;
}

function isDown(i) {
  return !i || !i.up || ["DOWN", "LOWERLAYERDOWN", "NOTPRESENT"].includes(String(i.operstate).toUpperCase());
}

/**
 * A box's interfaces in the order drawn: those with a link to another
 * namespace and bridges first (each bridge followed by its ports), the rest
 * after; so the interfaces lines leave from are rarely under "+N more".
 */
function orderIfaces(n, linked) {
  const ifaces = n.interfaces || [];
  const ports = new Map();
  for (const i of ifaces) {
    if (i.master && i.master.ifindex) {
      if (!ports.has(i.master.ifindex)) ports.set(i.master.ifindex, []);
      ports.get(i.master.ifindex).push(i);
    }
  }
  const rank = (i) => (ports.has(i.index) ? 0 : linked.has(i.index) ? 1 : i.name === "lo" ? 3 : 2);
  const out = [];
  const seen = new Set();
  const add = (i, depth) => {
    if (seen.has(i.index)) return;
    seen.add(i.index);
    out.push({ i, depth });
    for (const p of ports.get(i.index) || []) add(p, depth + 1);
  };
  const tops = ifaces.filter((i) => !(i.master && ifaces.some((m) => m.index === i.master.ifindex)));
  for (const i of [...tops].sort((a, b) => rank(a) - rank(b) || a.index - b.index)) add(i, 0);
  for (const i of ifaces) add(i, 0);
  return out;
}

function drawBox(n, x, y, height, state) {
  const { selected, dim, match, name, linked } = state;
  const g = svg("g", {
    class: `netns${n.ours ? " ours" : ""}${dim ? " dim" : ""}${match ? " match" : ""}${selected ? " selected" : ""}`,
    transform: `translate(${x},${y})`,
    "data-ns": n.ns, "data-type": "net", "data-key": `n${n.ns}`, tabindex: "0", role: "button",
    "aria-label": `network namespace ${name}, net:[${n.ns}]`,
    "aria-current": selected ? "true" : null,
  },
  svg("title", {}, `${name}\nnet:[${n.ns}] · ${n.nprocs} process(es) · named by ${n.named_by}`),
  svg("rect", { class: "box", width: BOX_W, height, rx: 6 }),
  svg("text", { class: "name", x: PAD, y: 17 }, shorten(name, 24)),
  svg("text", { class: "sub", x: PAD, y: 32 }, `net:[${n.ns}] · ${n.nprocs} proc`));
  const rows = new Map();
  if (n.error) {
    g.append(svg("text", { class: "error", x: PAD, y: HEAD + 12 }, shorten(n.error, 31)));
    return { g, rows };
  }
  const ifaces = orderIfaces(n, linked);
  ifaces.slice(0, MAX_IFACES).forEach(({ i, depth }, k) => {
    const iy = HEAD + k * LINE + 12;
    const indent = depth * 10;
    rows.set(i.index, iy - 4);
    const down = isDown(i);
    g.append(
      svg("circle", { class: down ? "down" : "up", cx: PAD + 3 + indent, cy: iy - 4, r: 3.5 }),
      svg("text", { class: `iface${down ? " down" : ""}`, x: PAD + 12 + indent, y: iy },
        `${depth ? "└ " : ""}${shorten(ifaceLabel(i), 26 - depth * 2)}`,
        svg("title", {}, `${ifaceLabel(i)} · ${i.operstate}${down ? " (down)" : ""} · mtu ${i.mtu}${i.master ? ` · port of ${i.master.ifname || i.master.ifindex}` : ""}${i.mac ? ` · ${i.mac}` : ""}`)));
  });
  if (ifaces.length > MAX_IFACES) {
    g.append(svg("text", { class: "sub", x: PAD + 12, y: HEAD + MAX_IFACES * LINE + 12 }, `+${ifaces.length - MAX_IFACES} more`));
  }
  return { g, rows };
}

/** Where each namespace goes: a grid, rows of layers wrapped at ``cols``. */
function place(namespaces, links, cols) {
  const pos = new Map();
  const rowTop = [];
  const rowBottom = [];
  let y = PAD;
  for (const members of layers(namespaces, links)) {
    for (let start = 0; start < members.length; start += cols) {
      const chunk = members.slice(start, start + cols);
      const row = rowTop.length;
      chunk.forEach((n, col) => pos.set(n.ns, { n, row, x: MARGIN + col * (BOX_W + GAP_X), y, h: boxHeight(n) }));
      rowTop.push(y);
      y += Math.max(...chunk.map(boxHeight));
      rowBottom.push(y);
      y += GAP_Y;
    }
  }
  return { pos, rowTop, rowBottom, height: y };
}

/**
 * A link as a line through the gutters between boxes: out of the first box's
 * right side at its interface, along the gutter to the right of it, across the
 * gutter above the other box's row (below it, on the same row), down the gutter
 * to the left of the other box and into its left side at its interface.  Each
 * line has a lane of its own (an offset in the gutter): a namespace's lines take
 * the lanes after its first one, so the links into one bridge run side by side
 * instead of merging into one trunk.
 */
function route(a, ya, b, yb, lane, grid) {
  if (b.row < a.row || (b.row === a.row && b.x < a.x)) return route(b, yb, a, ya, lane, grid);
  const off = (lane % LANES - (LANES - 1) / 2) * 3;
  const gA = a.x + BOX_W + GAP_X / 2 + off;
  const gB = b.x - GAP_X / 2 + off;
  const hy = b.row === a.row ? grid.rowBottom[a.row] + GAP_Y / 2 + off / 2 : grid.rowTop[b.row] - GAP_Y / 2 + off / 2;
  return `M${a.x + BOX_W},${ya} H${gA} V${hy} H${gB} V${yb} H${b.x}`;
}

/** Only a loopback, no link: folded into one group. */
function loOnly(n, linkedNs) {
  return !n.error && !linkedNs.has(n.ns) && (n.interfaces || []).every((i) => i.name === "lo");
}

/** Draw the picture; returns the keys of the boxes the search matches, in order. */
export function renderNet(pane, ctx) {
  const net = ctx.net;
  if (!net) {
    pane.replaceChildren(h("p", { class: "empty" }, "Loading the network topology…"));
    return [];
  }
  const all = net.namespaces || [];
  const links = linksOf(net);
  const linkedNs = new Set();
  const linkedIf = new Map(all.map((n) => [n.ns, new Set()]));
  for (const l of links) {
    linkedNs.add(l.a.ns);
    linkedNs.add(l.b.ns);
    if (linkedIf.has(l.a.ns)) linkedIf.get(l.a.ns).add(l.a.ifindex);
    if (linkedIf.has(l.b.ns)) linkedIf.get(l.b.ns).add(l.b.ifindex);
  }
  const active = filterActive(ctx.filter, { ignoreType: true });
  const matched = new Set();
  for (const n of all) {
    const node = ctx.index.byIno.get(n.ns) || { ns: n.ns, type: "net", pids: [], name: n.name };
    if (active && matches(node, ctx.filter, ctx.index, { ignoreType: true })) matched.add(n.ns);
  }
  const keepNs = (n) => !active || !ctx.onlyMatches || matched.has(n.ns) || n.ns === ctx.selected;
  const namespaces = all.filter((n) => !loOnly(n, linkedNs) && keepNs(n));
  const folded = all.filter((n) => loOnly(n, linkedNs) && keepNs(n));
  const nameOf = (n) => {
    const node = ctx.index.byIno.get(n.ns);
    return node ? displayName(node, ctx.index) : String(n.name);
  };
  const width = Math.max(pane.clientWidth - 8, BOX_W + 2 * MARGIN);
  const cols = Math.max(1, Math.floor((width - MARGIN) / (BOX_W + GAP_X)));
  const grid = place(namespaces, links, cols);
  const total = { w: MARGIN + cols * (BOX_W + GAP_X), h: grid.height };
  const boxes = svg("g", { class: "boxes" });
  const anchors = new Map();
  const hits = [];
  const near = new Set([ctx.selected]);
  for (const l of links) if (l.a.ns === ctx.selected || l.b.ns === ctx.selected) [l.a.ns, l.b.ns].forEach((ino) => near.add(ino));
  for (const { n, x, y, h: height } of grid.pos.values()) {
    const match = matched.has(n.ns);
    if (match) hits.push(`n${n.ns}`);
    const { g, rows } = drawBox(n, x, y, height, {
      selected: ctx.selected === n.ns, dim: active && !match, match, name: nameOf(n), linked: linkedIf.get(n.ns),
    });
    if (ctx.selected && near.has(n.ns)) g.classList.add("near");
    anchors.set(n.ns, rows);
    boxes.append(g);
  }
  const ifaceOf = new Map(all.map((n) => [n.ns, new Map((n.interfaces || []).map((i) => [i.index, i]))]));
  const lanes = new Map();     // namespace -> its first lane
  const taken = new Map();     // namespace -> lanes its lines took so far
  const lines = svg("g", { class: "links" });
  for (const l of links) {
    const a = grid.pos.get(l.a.ns);
    const b = grid.pos.get(l.b.ns);
    if (!a || !b) continue;
    const ya = a.y + (anchors.get(l.a.ns).get(l.a.ifindex) ?? HEAD / 2);
    const yb = b.y + (anchors.get(l.b.ns).get(l.b.ifindex) ?? HEAD / 2);
    const first = b.row < a.row || (b.row === a.row && b.x < a.x) ? l.b.ns : l.a.ns;
    if (!lanes.has(first)) lanes.set(first, lanes.size);
    const k = taken.get(first) || 0;
    taken.set(first, k + 1);
    const down = isDown(ifaceOf.get(l.a.ns).get(l.a.ifindex)) || isDown(ifaceOf.get(l.b.ns).get(l.b.ifindex));
    const title = `${l.kind || "link"} (${l.role}${down ? ", down" : ""}): ${l.a.ifname} in ${nameOf(a.n)} — ${l.b.ifname} in ${nameOf(b.n)}`;
    lines.append(svg("path", {
      class: `link ${l.role === "lower" ? "lower" : "peer"}${down ? " down" : ""}${[l.a.ns, l.b.ns].includes(ctx.selected) ? " on" : ""}`,
      d: route(a, ya, b, yb, lanes.get(first) + k, grid),
      "data-a": l.a.ns, "data-b": l.b.ns,
    }, svg("title", {}, title)));
  }
  const picture = namespaces.length ? svg("svg", {
    class: `netmap${ctx.selected && grid.pos.has(ctx.selected) ? " focus" : ""}`, width: total.w, height: total.h, viewBox: `0 0 ${total.w} ${total.h}`,
    role: "group", "aria-label": `${namespaces.length} network namespaces, ${links.length} links between them`,
  }, lines, boxes) : null;
  const loHits = folded.filter((n) => matched.has(n.ns));
  hits.push(...loHits.map((n) => `n${n.ns}`));
  const group = folded.length ? loGroup(folded, { ...ctx, matched, active, nameOf, open: ctx.loOpen || loHits.length > 0 || folded.some((n) => n.ns === ctx.selected) }) : null;
  const legend = h("p", { class: "legend" },
    `${all.length} network namespace${all.length === 1 ? "" : "s"} (${folded.length} with only a loopback, folded below), ${links.length} link${links.length === 1 ? "" : "s"}. `,
    h("span", { class: "key peer" }, "veth/peer"), " ", h("span", { class: "key lower" }, "lower device"), " ",
    h("span", { class: "key down" }, "down"),
    " — point at a box to light its links; select it for its details.");
  const only = h("label", { class: "only" },
    h("input", { type: "checkbox", id: "only-matches", checked: Boolean(ctx.onlyMatches) }), " only matches");
  pane.replaceChildren(h("div", { class: "netbar" }, only, legend),
    picture ? h("div", { class: "netwrap" }, picture) : h("p", { class: "empty" }, active ? "No network namespace with more than a loopback matches." : "No network namespace has more than a loopback."),
    ...(group ? [group] : []));   // (replaceChildren would write a null as "null")
  return hits;
}

function loGroup(folded, ctx) {
  const list = h("div", { class: "lo-list" }, folded.map((n) => {
    const match = ctx.matched.has(n.ns);
    return h("button", {
      type: "button", class: `ns lo${match ? " match" : ""}${ctx.active && !match ? " context" : ""}${ctx.selected === n.ns ? " selected" : ""}`,
      "data-ns": n.ns, "data-type": "net", "data-key": `n${n.ns}`,
      "aria-current": ctx.selected === n.ns ? "true" : null,
      title: `net:[${n.ns}] · ${n.nprocs} process(es) · named by ${n.named_by}`,
    }, h("span", { class: "name" }, ctx.nameOf(n)), h("span", { class: "ino" }, String(n.ns)));
  }));
  const box = h("details", { class: "lo-group", open: ctx.open },
    h("summary", {}, `${folded.length} network namespace${folded.length === 1 ? "" : "s"} with only a loopback`), list);
  return box;
}

/**
 * Pointing at a box lights its links and the boxes at their other ends and
 * dims the rest (the selection does the same while nothing is pointed at).
 */
export function netHover(pane) {
  const light = (ino) => {
    const map = pane.querySelector("svg.netmap");
    if (!map) return;
    for (const el of map.querySelectorAll(".lit")) el.classList.remove("lit");
    map.classList.toggle("hover", ino !== null);
    if (ino === null) return;
    const peers = new Set([ino]);
    for (const path of map.querySelectorAll(`path[data-a="${ino}"], path[data-b="${ino}"]`)) {
      path.classList.add("lit");
      peers.add(path.dataset.a);
      peers.add(path.dataset.b);
    }
    for (const peer of peers) {
      const box = map.querySelector(`g[data-ns="${peer}"]`);
      if (box) box.classList.add("lit");
    }
  };
  pane.addEventListener("mouseover", (e) => {
    const box = e.target.closest("g[data-ns]");
    light(box ? box.dataset.ns : null);
  });
  pane.addEventListener("focusin", (e) => {
    const box = e.target.closest("g[data-ns]");
    light(box ? box.dataset.ns : null);
  });
  pane.addEventListener("mouseleave", () => light(null));
}
