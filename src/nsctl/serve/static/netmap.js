// The network topology as a picture: each network namespace a box listing its
// interfaces, each link between namespaces (veth pair, a device whose lower
// device is elsewhere) a line between the two interfaces.
//
// Layout (deterministic, no physics): a grid as wide as the pane; breadth-first
// layers from the host's namespace over the links, then the other connected
// groups the same way, then the namespaces with no link; each layer starts a
// new row.  Lines run in the gutters between the boxes (see route()).

import { h, svg } from "./dom.js";
import { filterActive, matches } from "./model.js";

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

function ifaceLabel(i) {
  const addr = (i.addresses || []).find((a) => a.family === "inet") || (i.addresses || [])[0];
  return `${i.name}${i.kind ? ` (${i.kind})` : ""}${addr ? ` ${addr.address}/${addr.prefixlen}` : ""}`;
}

function drawBox(n, x, y, height, state) {
  const { selected, dim } = state;
  const g = svg("g", {
    class: `netns${n.ours ? " ours" : ""}${dim ? " dim" : ""}${selected ? " selected" : ""}`,
    transform: `translate(${x},${y})`,
    "data-ns": n.ns, "data-type": "net", tabindex: "0", role: "button",
    "aria-label": `network namespace ${n.name}, net:[${n.ns}]`,
    "aria-current": selected ? "true" : null,
  },
  svg("title", {}, `${n.name}\nnet:[${n.ns}] · ${n.nprocs} process(es) · named by ${n.named_by}`),
  svg("rect", { class: "box", width: BOX_W, height, rx: 6 }),
  svg("text", { class: "name", x: PAD, y: 17 }, shorten(n.name, 24)),
  svg("text", { class: "sub", x: PAD, y: 32 }, `net:[${n.ns}] · ${n.nprocs} proc`));
  const rows = new Map();
  if (n.error) {
    g.append(svg("text", { class: "error", x: PAD, y: HEAD + 12 }, shorten(n.error, 31)));
    return { g, rows };
  }
  const ifaces = n.interfaces || [];
  ifaces.slice(0, MAX_IFACES).forEach((i, k) => {
    const iy = HEAD + k * LINE + 12;
    rows.set(i.index, iy - 4);
    g.append(
      svg("circle", { class: i.up ? "up" : "down", cx: PAD + 3, cy: iy - 4, r: 3.5 }),
      svg("text", { class: "iface", x: PAD + 12, y: iy }, shorten(ifaceLabel(i), 26), svg("title", {}, `${ifaceLabel(i)} · ${i.operstate} · mtu ${i.mtu}`)));
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
 * to the left of the other box and into its left side at its interface.  The
 * lines of one namespace share a lane (an offset in the gutter), so its links
 * read as one bus with a branch to each peer.
 */
function route(a, ya, b, yb, lane, grid) {
  if (b.row < a.row || (b.row === a.row && b.x < a.x)) return route(b, yb, a, ya, lane, grid);
  const off = (lane % LANES - (LANES - 1) / 2) * 3;
  const gA = a.x + BOX_W + GAP_X / 2 + off;
  const gB = b.x - GAP_X / 2 + off;
  const hy = b.row === a.row ? grid.rowBottom[a.row] + GAP_Y / 2 + off / 2 : grid.rowTop[b.row] - GAP_Y / 2 + off / 2;
  return `M${a.x + BOX_W},${ya} H${gA} V${hy} H${gB} V${yb} H${b.x}`;
}

export function renderNet(pane, ctx) {
  const net = ctx.net;
  if (!net) {
    pane.replaceChildren(h("p", { class: "empty" }, "Loading the network topology…"));
    return;
  }
  const namespaces = net.namespaces || [];
  const links = linksOf(net);
  const width = Math.max(pane.clientWidth - 8, BOX_W + 2 * MARGIN);
  const cols = Math.max(1, Math.floor((width - MARGIN) / (BOX_W + GAP_X)));
  const active = filterActive(ctx.filter, { ignoreType: true });
  const grid = place(namespaces, links, cols);
  const total = { w: MARGIN + cols * (BOX_W + GAP_X), h: grid.height };
  const boxes = svg("g", { class: "boxes" });
  const anchors = new Map();
  for (const { n, x, y, h: height } of grid.pos.values()) {
    const node = ctx.index.byIno.get(n.ns) || { ns: n.ns, type: "net", pids: [] };
    const dim = active && !matches(node, ctx.filter, ctx.index, { ignoreType: true });
    const { g, rows } = drawBox(n, x, y, height, { selected: ctx.selected === n.ns, dim });
    anchors.set(n.ns, rows);
    boxes.append(g);
  }
  const lanes = new Map();
  const lines = svg("g", { class: "links" });
  for (const l of links) {
    const a = grid.pos.get(l.a.ns);
    const b = grid.pos.get(l.b.ns);
    if (!a || !b) continue;
    const ya = a.y + (anchors.get(l.a.ns).get(l.a.ifindex) ?? HEAD / 2);
    const yb = b.y + (anchors.get(l.b.ns).get(l.b.ifindex) ?? HEAD / 2);
    const first = b.row < a.row || (b.row === a.row && b.x < a.x) ? l.b.ns : l.a.ns;
    if (!lanes.has(first)) lanes.set(first, lanes.size);
    const title = `${l.kind || "link"} (${l.role}): ${l.a.ifname} in ${l.a.name} — ${l.b.ifname} in ${l.b.name}`;
    lines.append(svg("path", {
      class: `link ${l.role === "lower" ? "lower" : "peer"}${[l.a.ns, l.b.ns].includes(ctx.selected) ? " on" : ""}`,
      d: route(a, ya, b, yb, lanes.get(first), grid),
      "data-a": l.a.ns, "data-b": l.b.ns,
    }, svg("title", {}, title)));
  }
  const picture = svg("svg", {
    class: "netmap", width: total.w, height: total.h, viewBox: `0 0 ${total.w} ${total.h}`,
    role: "group", "aria-label": `${namespaces.length} network namespaces, ${links.length} links between them`,
  }, lines, boxes);
  const legend = h("p", { class: "legend" },
    `${namespaces.length} network namespace${namespaces.length === 1 ? "" : "s"}, ${links.length} link${links.length === 1 ? "" : "s"}. `,
    h("span", { class: "key peer" }, "veth/peer"), " ", h("span", { class: "key lower" }, "lower device"),
    " — select a box for its details; point at a line for its ends.");
  pane.replaceChildren(legend, h("div", { class: "netwrap" }, picture));
}
