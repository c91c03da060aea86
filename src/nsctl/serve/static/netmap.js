// The network topology as a picture: each network namespace a box listing its
// interfaces, each link between namespaces (veth pair, a device whose lower
// device is elsewhere) a line between the two interfaces.
//
// Layout (deterministic, no physics): breadth-first layers from the host's
// namespace over the links, then the other connected groups the same way, then
// the namespaces with no link; each layer starts a new row and wraps at the
// pane's width.  Lines leave a box at the side facing the other end, at the
// interface's row.

import { h, svg } from "./dom.js";
import { filterActive, matches } from "./model.js";

const BOX_W = 230;
const GAP_X = 56;
const GAP_Y = 36;
const HEAD = 40;        // box header: name, inode
const LINE = 18;        // one interface
const MAX_IFACES = 8;   // shown per box; the rest is "+N more"
const PAD = 12;

function linksOf(net) {
  return (net.links || []).filter((l) => l.a && l.b && l.a.ns !== l.b.ns);
}

/** Rows of namespaces, layered as described above: [{members, center}]; linked ones centred. */
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
  const starts = [...namespaces].sort((a, b) => (b.ours - a.ours) || (b.named_by === "initial") - (a.named_by === "initial") || byName(a, b));
  const placed = new Set();
  const rows = [];
  for (const start of starts) {
    if (placed.has(start.ns) || !near.get(start.ns).size) continue;
    let layer = [start.ns];
    placed.add(start.ns);
    while (layer.length) {
      rows.push({ members: layer.map((ino) => byIno.get(ino)).sort(byName), center: true });
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
  if (alone.length) rows.push({ members: alone, center: false });
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
  svg("text", { class: "name", x: PAD, y: 17 }, shorten(n.name, 26)),
  svg("text", { class: "sub", x: PAD, y: 32 }, `net:[${n.ns}] · ${n.nprocs} proc`));
  const rows = new Map();
  if (n.error) {
    g.append(svg("text", { class: "error", x: PAD, y: HEAD + 12 }, shorten(n.error, 34)));
    return { g, rows };
  }
  const ifaces = n.interfaces || [];
  ifaces.slice(0, MAX_IFACES).forEach((i, k) => {
    const iy = HEAD + k * LINE + 12;
    rows.set(i.index, iy - 4);
    g.append(
      svg("circle", { class: i.up ? "up" : "down", cx: PAD + 3, cy: iy - 4, r: 3.5 }),
      svg("text", { class: "iface", x: PAD + 12, y: iy }, shorten(ifaceLabel(i), 29), svg("title", {}, `${ifaceLabel(i)} · ${i.operstate} · mtu ${i.mtu}`)));
  });
  if (ifaces.length > MAX_IFACES) {
    g.append(svg("text", { class: "sub", x: PAD + 12, y: HEAD + MAX_IFACES * LINE + 12 }, `+${ifaces.length - MAX_IFACES} more`));
  }
  return { g, rows };
}

export function renderNet(pane, ctx) {
  const net = ctx.net;
  if (!net) {
    pane.replaceChildren(h("p", { class: "empty" }, "Loading the network topology…"));
    return;
  }
  const namespaces = net.namespaces || [];
  const links = linksOf(net);
  const width = Math.max(pane.clientWidth - 8, BOX_W + 2 * PAD);
  const cols = Math.max(1, Math.floor((width - PAD) / (BOX_W + GAP_X)));
  const active = filterActive(ctx.filter, { ignoreType: true });
  const pos = new Map();
  let y = PAD;
  for (const { members, center } of layers(namespaces, links)) {
    for (let start = 0; start < members.length; start += cols) {
      const chunk = members.slice(start, start + cols);
      const height = Math.max(...chunk.map(boxHeight));
      const left = PAD + (center ? ((cols - chunk.length) * (BOX_W + GAP_X)) / 2 : 0);
      chunk.forEach((n, k) => pos.set(n.ns, { n, x: left + k * (BOX_W + GAP_X), y, h: boxHeight(n) }));
      y += height + GAP_Y;
    }
  }
  const total = { w: PAD * 2 + cols * (BOX_W + GAP_X) - GAP_X, h: y };
  const boxes = svg("g", { class: "boxes" });
  const anchors = new Map();
  for (const { n, x, y: by, h: bh } of pos.values()) {
    const node = ctx.index.byIno.get(n.ns) || { ns: n.ns, type: "net", pids: [] };
    const dim = active && !matches(node, ctx.filter, ctx.index, { ignoreType: true });
    const { g, rows } = drawBox(n, x, by, bh, { selected: ctx.selected === n.ns, dim });
    anchors.set(n.ns, rows);
    boxes.append(g);
  }
  const lines = svg("g", { class: "links" });
  for (const l of links) {
    const a = pos.get(l.a.ns);
    const b = pos.get(l.b.ns);
    if (!a || !b) continue;
    const ya = a.y + (anchors.get(l.a.ns).get(l.a.ifindex) ?? HEAD / 2);
    const yb = b.y + (anchors.get(l.b.ns).get(l.b.ifindex) ?? HEAD / 2);
    let xa; let xb; let bend;
    if (a.x === b.x) {
      xa = a.x + BOX_W; xb = b.x + BOX_W; bend = [GAP_X * 0.8, GAP_X * 0.8];
    } else if (a.x < b.x) {
      xa = a.x + BOX_W; xb = b.x; bend = [GAP_X, -GAP_X];
    } else {
      xa = a.x; xb = b.x + BOX_W; bend = [-GAP_X, GAP_X];
    }
    const d = `M${xa},${ya} C${xa + bend[0]},${ya} ${xb + bend[1]},${yb} ${xb},${yb}`;
    const title = `${l.kind || "link"} (${l.role}): ${l.a.ifname} in ${l.a.name} — ${l.b.ifname} in ${l.b.name}`;
    lines.append(svg("path", {
      class: `link ${l.role === "lower" ? "lower" : "peer"}${[l.a.ns, l.b.ns].includes(ctx.selected) ? " on" : ""}`, d,
      "data-a": l.a.ns, "data-b": l.b.ns,
    }, svg("title", {}, title)));
  }
  const picture = svg("svg", {
    class: "netmap", width: total.w, height: total.h, viewBox: `0 0 ${total.w} ${total.h}`,
    role: "group", "aria-label": `${namespaces.length} network namespaces, ${links.length} links between them`,
  }, boxes, lines);
  const legend = h("p", { class: "legend" },
    `${namespaces.length} network namespace${namespaces.length === 1 ? "" : "s"}, ${links.length} link${links.length === 1 ? "" : "s"}. `,
    h("span", { class: "key peer" }, "veth/peer"), " ", h("span", { class: "key lower" }, "lower device"),
    " — select a box for its details.");
  pane.replaceChildren(legend, h("div", { class: "netwrap" }, picture));
}
