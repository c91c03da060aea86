// What the page knows, indexed for lookups, the display names of namespaces,
// and the search over them.

import { containerLabel, nsName } from "./dom.js";

/** Walk nested nodes (each with `children`), parents before children. */
export function* walk(nodes) {
  for (const node of nodes || []) {
    yield node;
    yield* walk(node.children);
  }
}

/**
 * Index the user tree (nsctl tree --json), the PID tree (nsctl pidtree --json)
 * and, once loaded, the network document (nsctl net --json) and the list
 * (nsctl ls --json): namespaces by inode, processes by PID, names, container
 * labels, and for each namespace the text the search looks in.
 */
export function buildIndex(tree, pidtree, net, list) {
  const byIno = new Map();
  const userOf = new Map();   // namespace -> the user namespace it sits under in the tree
  const note = (nodes, user) => {
    for (const node of nodes || []) {
      if (node.ns === undefined) {   // a labelled group ("owner not visible")
        note(node.children, user);
        continue;
      }
      byIno.set(node.ns, node);
      if (user !== undefined) userOf.set(node.ns, user);
      note(node.children, node.type === "user" ? node.ns : user);
    }
  };
  note(tree ? tree.tree : [], undefined);
  const procs = new Map();
  for (const pidns of walk(pidtree ? pidtree.pid_namespaces : [])) {
    for (const proc of walk(pidns.processes)) procs.set(proc.pid, { ...proc, pidns: pidns.ns });
  }
  const net_ = new Map();
  for (const n of (net && net.namespaces) || []) net_.set(n.ns, n);
  const listed = new Map();
  for (const n of (list && list.namespaces) || []) listed.set(n.ns, n);
  for (const p of (list && list.processes) || []) {
    const known = procs.get(p.pid);
    if (known) known.cmdline = p.cmdline;
  }
  const containers = new Set();
  for (const node of byIno.values()) if (node.container) containers.add(containerLabel(node.container));
  const index = { byIno, userOf, procs, net: net_, listed, containers: [...containers].sort(), hay: new Map(), names: new Map() };
  return index;
}

/**
 * The network document's or the list's entry for a tree node: those two are
 * refetched less often, and an inode can be reused by a newer namespace, so
 * an entry counts only if its never-reused id agrees.
 */
function same(entry, node) {
  if (!entry) return null;
  return entry.id === undefined || entry.id === null || node.id === undefined || node.id === null || entry.id === node.id ? entry : null;
}

function bindPaths(node, index) {
  const entry = same(index.listed.get(node.ns), node);
  const paths = [];
  for (const ref of (entry && entry.refs) || []) {
    if (ref.kind === "bindmount" && ref.path && !paths.includes(ref.path)) paths.push(ref.path);
  }
  return paths;
}

/**
 * The namespace as a person knows it: the server's display name when it sends
 * one, else its `ip netns` name (or "host"), its container, a bind mount path,
 * or the first process in it as comm(PID); `type:[inode]` when nothing names it.
 */
export function displayName(node, index) {
  if (!node) return "";
  const own = node.name;
  if (own && own !== nsName(node.type, node.ns)) return String(own);
  const known = index.names.get(node.ns);
  if (known !== undefined) return known;
  let name = "";
  const net = same(index.net.get(node.ns), node);
  // The network document's names: an `ip netns` name, "host", a container.
  if (net && net.name && ["netns", "initial", "container"].includes(net.named_by)) name = String(net.name);
  if (!name && node.container) name = containerLabel(node.container);
  const paths = bindPaths(node, index);
  // A bind mount at /run/netns/NAME is `ip netns`'s: NAME is what people call it.
  const ipNetns = paths.find((p) => p.startsWith("/run/netns/") && !p.slice(11).includes("/"));
  if (!name && ipNetns && node.type === "net") name = ipNetns.slice(11);
  if (!name) name = paths[0] || "";
  // Kernel threads (kthreadd, PID 2) live in the initial namespaces: the host's.
  if (!name && (node.pids || []).includes(2) && (index.procs.get(2) || {}).comm === "kthreadd") name = "host";
  if (!name && (node.pids || []).length) {
    const pid = node.pids[0];
    const proc = index.procs.get(pid);
    name = proc ? `${proc.comm}(${pid})` : "";
  }
  name = name || nsName(node.type, node.ns);
  index.names.set(node.ns, name);
  return name;
}

/** The owner's UID of a namespace (the list document's `owner_uid`), if known. */
export function ownerUid(node, index) {
  const entry = same(index.listed.get(node.ns), node);
  if (entry && entry.owner_uid !== undefined && entry.owner_uid !== null) return entry.owner_uid;
  return node.owner_uid === undefined ? null : node.owner_uid;
}

const MAX_PROCS_IN_HAY = 400;   // a namespace with more processes: the first this many are searched by command

/** Everything the search looks in for one namespace, lower case, one field a line. */
function hay(node, index) {
  let text = index.hay.get(node.ns);
  if (text !== undefined) return text;
  const c = node.container || {};
  const words = [
    displayName(node, index), String(node.ns), nsName(node.type, node.ns), node.stable_path || "",
    node.id === null || node.id === undefined ? "" : `id ${node.id}`,
    containerLabel(node.container), c.id || "", c.name || "", c.image || "", c.project || "",
    c.service || "", c.pod || "", c.pod_name || "", c.pod_namespace || "",
    ...bindPaths(node, index),
  ];
  const net = same(index.net.get(node.ns), node);
  if (net) {
    words.push(net.name || "");
    for (const i of net.interfaces || []) {
      words.push(i.name || "", i.mac || "");
      for (const a of i.addresses || []) words.push(`${a.address}/${a.prefixlen}`);
    }
  }
  for (const pid of (node.pids || []).slice(0, MAX_PROCS_IN_HAY)) {
    const p = index.procs.get(pid);
    if (p) words.push(`${p.comm}(${pid})`, (p.cmdline || []).join(" "));
  }
  text = words.filter(Boolean).join("\n").toLowerCase();
  index.hay.set(node.ns, text);
  return text;
}

/** The filter as set: free text, type, container label. */
export function emptyFilter() {
  return { q: "", type: "", container: "" };
}

export function filterActive(f, { ignoreType = false } = {}) {
  return Boolean(f.q || f.container || (!ignoreType && f.type));
}

function textMatches(q, node, index) {
  const lower = q.toLowerCase().trim();
  if (!lower) return true;
  if (/^\d+$/.test(lower)) {
    // A number: a PID in it, its id, or (part of) its inode.
    const n = Number(lower);
    if ((node.pids || []).includes(n)) return true;
    if (node.id !== null && node.id !== undefined && String(node.id) === lower) return true;
    if (String(node.ns).includes(lower)) return true;
  }
  return hay(node, index).includes(lower);
}

/**
 * Does a namespace (a user tree node: ns, type, stable_path, pids, container)
 * pass the filter?  ``ignoreType`` on panes that show one type only.
 */
export function matches(node, f, index, { ignoreType = false } = {}) {
  if (!ignoreType && f.type && node.type !== f.type) return false;
  if (f.container && containerLabel(node.container) !== f.container) return false;
  if (f.q && !textMatches(f.q, node, index)) return false;
  return true;
}

/** Does a process match the search (PID at any level, comm, command line)? */
export function procMatches(proc, q, index) {
  const term = (q || "").trim().toLowerCase();
  if (!term) return false;
  if (/^\d+$/.test(term)) return proc.pid === Number(term) || (proc.nspid || []).includes(Number(term));
  if (String(proc.comm).toLowerCase().includes(term)) return true;
  const known = index && index.procs.get(proc.pid);
  return Boolean(known && known.cmdline && known.cmdline.join(" ").toLowerCase().includes(term));
}
