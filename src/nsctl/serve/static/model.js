// What the page knows, indexed for lookups, and the filter over it.

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
 * and the network document (nsctl net --json): namespaces by inode, processes
 * by PID, container labels.
 */
export function buildIndex(tree, pidtree, net) {
  const byIno = new Map();
  for (const node of walk(tree ? tree.tree : [])) byIno.set(node.ns, node);
  const procs = new Map();
  for (const pidns of walk(pidtree ? pidtree.pid_namespaces : [])) {
    for (const proc of walk(pidns.processes)) procs.set(proc.pid, { ...proc, pidns: pidns.ns });
  }
  const netNames = new Map();
  for (const n of (net && net.namespaces) || []) netNames.set(n.ns, n.name);
  const containers = new Set();
  for (const node of byIno.values()) if (node.container) containers.add(containerLabel(node.container));
  return { byIno, procs, netNames, containers: [...containers].sort() };
}

/** The filter as typed: free text, type, container label, process (PID or command). */
export function emptyFilter() {
  return { q: "", type: "", container: "", proc: "" };
}

export function filterActive(f, { ignoreType = false } = {}) {
  return Boolean(f.q || f.container || f.proc || (!ignoreType && f.type));
}

function procMatches(term, pids, procs) {
  if (/^\d+$/.test(term)) {
    const pid = Number(term);
    return pids.includes(pid);
  }
  const lower = term.toLowerCase();
  return pids.some((pid) => {
    const p = procs.get(pid);
    return p && String(p.comm).toLowerCase().includes(lower);
  });
}

function textMatches(q, node, index) {
  const lower = q.toLowerCase().trim();
  if (!lower) return true;
  const words = [
    String(node.ns),
    nsName(node.type, node.ns),
    node.name || "",
    node.stable_path || "",
    node.id === null || node.id === undefined ? "" : `id ${node.id}`,
    containerLabel(node.container),
    index.netNames.get(node.ns) || "",
  ];
  if (/^\d+$/.test(lower) && node.id !== null && String(node.id) === lower) return true;
  return words.some((w) => w.toLowerCase().includes(lower));
}

/**
 * Does a namespace (a user tree node: ns, type, stable_path, pids, container)
 * pass the filter?  ``ignoreType`` on panes that show one type only.
 */
export function matches(node, f, index, { ignoreType = false } = {}) {
  if (!ignoreType && f.type && node.type !== f.type) return false;
  if (f.container && containerLabel(node.container) !== f.container) return false;
  if (f.proc && !procMatches(f.proc.trim(), node.pids || [], index.procs)) return false;
  if (f.q && !textMatches(f.q, node, index)) return false;
  return true;
}

/** Does a process pass the process part of the filter? */
export function procPasses(proc, f) {
  const term = f.proc.trim();
  if (!term) return true;
  if (/^\d+$/.test(term)) return proc.pid === Number(term) || (proc.nspid || []).includes(Number(term));
  return String(proc.comm).toLowerCase().includes(term.toLowerCase());
}
