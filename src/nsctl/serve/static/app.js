// The nsctl web page: loads the model from nsctl serve, draws the user
// namespace tree, the PID namespace tree, the network topology and recent
// events, and follows the event stream.  On every change it refetches what the
// visible tab needs, with the ETag of what it has (an unchanged document is a
// 304: nothing parsed, indexed or redrawn), and redraws what changed, keeping
// selection, search, open/closed items, focus and scroll position.  The network
// document and the list (for command lines, bind paths, owners, addresses) load
// in the background after the first tree, so that search finds everything on
// every tab.  The URL carries the tab, the selection and the search.

import { ApiError, follow, get, specPath } from "./api.js";
import { renderDetails } from "./details.js";
import { fill, h, nsName } from "./dom.js";
import { buildIndex, displayName, emptyFilter, filterActive, matches } from "./model.js";
import { netHover, renderNet } from "./netmap.js";
import { renderPids } from "./pids.js";
import { treeKeys } from "./treeview.js";
import { renderUsers } from "./users.js";

const MIN_GAP_MS = 700;        // at most one refetch per this, however many events come
const STATUS_POLL_MS = 15000;  // also poll status (ages, and changes missed while disconnected)
const BACKGROUND_MS = 15000;   // the network document, the list (and the PID tree): refetched at most this often unless shown
const MAX_EVENTS = 5000;
const NS_EVENTS = new Set(["born", "gone", "pinned", "unpinned", "held", "released"]);

const $ = (id) => document.getElementById(id);

// Each tab's documents, fetched again on every model change.  The user tree names
// namespaces by the server's names: it needs the PID tree (commands and PIDs) only
// for the search, so while nothing is searched that comes in the background.
const TABS = {
  users: { docs: ["tree"], searchDocs: ["pidtree"], render: renderUsers },
  pids: { docs: ["tree", "pidtree"], render: renderPids },
  net: { docs: ["tree", "pidtree", "net"], render: renderNet },
  events: { docs: ["tree", "pidtree"], render: renderEvents },   // the index: links and counts
};

const state = {
  tab: "users",
  filter: emptyFilter(),
  selected: null,            // {ino, type}
  detail: null,              // {ino, type, doc, error, gone, loading, generation}
  docs: { tree: null, pidtree: null, net: null, list: null },
  have: { tree: null, pidtree: null, net: null, list: null },   // generation each doc was fetched at
  fetchedAt: { pidtree: 0, net: 0, list: 0 },
  status: null,
  generation: null,
  index: buildIndex(null, null, null, null),
  dirty: new Set(Object.keys(TABS)),
  events: [],
  ev: { kind: "", type: "", paused: false, held: [] },
  scroll: {},                // tab -> [top, left] while it is hidden
  // Items opened or closed by hand, per tree.
  open: { users: { toggled: new Map(), expanded: new Set() }, pids: { toggled: new Map(), expanded: new Set() } },
  loOpen: false,
  onlyMatches: false,
  hits: [],                  // keys of the matches on the visible tab, in order
  hitAt: -1,                 // the current one (-1: none yet)
  live: "connecting",
  error: null,
};

// --- the URL: #tab?sel=INODE&type=TYPE&q=TEXT&ft=TYPE&c=CONTAINER ----------------------------

function urlFor() {
  const p = new URLSearchParams();
  if (state.selected) {
    p.set("sel", String(state.selected.ino));
    p.set("type", state.selected.type || "");
  }
  if (state.filter.q) p.set("q", state.filter.q);
  if (state.filter.type) p.set("ft", state.filter.type);
  if (state.filter.container) p.set("c", state.filter.container);
  if (state.onlyMatches) p.set("only", "1");
  const rest = p.toString();
  return `#${state.tab}${rest ? `?${rest}` : ""}`;
}

function remember(push) {
  const url = urlFor();
  if (url === location.hash) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/** Take tab, selection and search from the URL (first load, back and forward). */
function fromUrl() {
  const [tab, query] = location.hash.slice(1).split("?");
  const p = new URLSearchParams(query || "");
  $("search").value = p.get("q") || "";
  $("filter-type").value = p.get("ft") || "";
  state.onlyMatches = p.get("only") === "1";
  state.filter = { q: $("search").value.trim(), type: $("filter-type").value, container: p.get("c") || "" };
  if (state.filter.container) fillContainers();
  state.hitAt = -1;
  for (const t of Object.keys(TABS)) state.dirty.add(t);
  const sel = p.get("sel");
  if (sel && /^\d+$/.test(sel)) select(sel, p.get("type") || "", { push: false });
  else if (state.selected) unselect({ push: false });
  showTab(TABS[tab] ? tab : "users", { push: false });
}

// --- loading -------------------------------------------------------------------------------

let busy = false;
let again = false;
let lastLoad = 0;
let lastTook = 0;

/** Refetch what changed; calls made meanwhile fold into one more run. */
async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    // However often the model changes, leave the server (and a slow link) time to breathe.
    const wait = lastLoad + Math.max(MIN_GAP_MS, lastTook) - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lastLoad = Date.now();
    await load();
    lastTook = Date.now() - lastLoad;
    state.error = null;
  } catch (err) {
    state.error = err instanceof ApiError ? `The server said: ${err.message}` : `Cannot reach the server (${err.message}).`;
  } finally {
    busy = false;
    renderStatus();
    if (again) {
      again = false;
      refresh();
    }
  }
  background();
}

/** The documents the visible tab needs now. */
function tabDocs() {
  const tab = TABS[state.tab];
  const searching = state.filter.q || !state.docs.pidtree;
  return [...tab.docs, ...(searching && tab.searchDocs ? tab.searchDocs : [])];
}

/** The path of a document. */
function docPath(name) {
  return name === "list" ? "namespaces" : name;
}

/**
 * Take fetched documents in: a document the server answered 304 for is the same
 * object as before.  True if any of them changed (then the index is built again).
 */
function take(names, docs, gen) {
  let changed = false;
  names.forEach((name, k) => {
    if (state.docs[name] !== docs[k]) changed = true;
    state.docs[name] = docs[k];
    state.have[name] = gen;
    if (name in state.fetchedAt) state.fetchedAt[name] = Date.now();
  });
  return changed;
}

async function load() {
  state.status = await get("status");
  state.statusAt = performance.now();
  const gen = state.status.generation;
  state.generation = gen;
  const wanted = tabDocs().filter((name) => state.have[name] !== gen);
  const fetched = await Promise.all(wanted.map((name) => get(docPath(name), { tagged: true })));
  if (take(wanted, fetched, gen)) reindex();
  renderTab();
  if (state.selected) loadDetail(false);   // not awaited: a slow view must not hold up the trees
}

function reindex() {
  state.index = buildIndex(state.docs.tree, state.docs.pidtree, state.docs.net, state.docs.list);
  for (const tab of Object.keys(TABS)) {
    state.dirty.add(tab);
    if (tab !== state.tab) retire(tab);
  }
  fillContainers();
}

let backgroundBusy = false;

/**
 * The documents the search needs beyond the trees (the network document: names,
 * addresses; the list: command lines, bind paths, owners), fetched after the
 * trees are drawn and then at most every BACKGROUND_MS while they are out of date.
 */
async function background() {
  if (backgroundBusy || !state.docs.tree) return;
  const gen = state.generation;
  const due = ["pidtree", "net", "list"].filter((name) => state.have[name] !== gen &&
    (state.have[name] === null || Date.now() - state.fetchedAt[name] >= BACKGROUND_MS));
  if (!due.length) return;
  backgroundBusy = true;
  try {
    const fetched = [];
    for (const name of due) fetched.push(await get(docPath(name), { tagged: true }));
    if (take(due, fetched, gen)) {
      reindex();
      renderTab();
    }
  } catch (_) {
    // The next refresh tries again; the trees work without these.
  } finally {
    backgroundBusy = false;
  }
}

let detailFetch = null;      // {ino, controller} of the details request on its way

/**
 * (Re)load the selected namespace's details: first `show` (from the server's
 * model, quick), then with its view (read live, slower; the last view stays up
 * meanwhile).  A new selection aborts the request on its way; a change while
 * one is on its way is fetched once it is done.
 */
async function loadDetail(fresh) {
  const { ino } = state.selected;
  let { type } = state.selected;
  const gen = state.generation;
  const current = () => state.selected && state.selected.ino === ino;
  const known = state.index.byIno.get(ino);
  if (known && known.type !== type) type = state.selected.type = known.type;
  const detail = state.detail && state.detail.ino === ino ? state.detail : { ino, type, doc: null };
  if (!fresh && (detail.generation === gen || (detailFetch && detailFetch.ino === ino))) return;
  if (state.docs.tree && !known) {
    state.detail = { ...detail, gone: true, loading: false, generation: gen };
    drawDetail();
    return;
  }
  if (detailFetch) detailFetch.controller.abort();
  const controller = new AbortController();
  detailFetch = { ino, controller };
  state.detail = { ...detail, loading: true, gone: false };
  if (fresh) drawDetail();
  const spec = specPath(type ? nsName(type, ino) : String(ino));
  try {
    const doc = await get(spec, { signal: controller.signal });
    const lastView = detail.doc ? detail.doc.view : undefined;
    // What it sees is read by a helper process that enters it: read again only when
    // the namespace itself changed (or on request), not on every change of the host.
    // Its identity and processes: not its holders (a helper reading a view holds it
    // for a moment), the host's problems or each copy of its bind mounts.
    const text = JSON.stringify(["id", "owner", "parent", "hidden", "pids", "container"].map((k) => doc[k]));
    if (!fresh && lastView && detail.text === text) {
      state.detail = { ...detail, doc: { ...doc, view: lastView }, loading: false, gone: false, error: null, generation: gen };
      drawDetail();
      return;
    }
    state.detail = { ino, type: doc.type || type, doc: { ...doc, view: lastView }, loading: true, generation: gen, text };
    drawDetail();
    const seen = await get(`${spec}?view=1`, { signal: controller.signal });
    state.detail = { ino, type: seen.type || type, doc: seen, loading: false, generation: gen, text };
  } catch (err) {
    if (err.name === "AbortError" || !current()) return;
    const gone = err instanceof ApiError && err.status === 404;
    state.detail = { ...state.detail, loading: false, gone, error: err.message, generation: gen };
  } finally {
    if (detailFetch && detailFetch.controller === controller) detailFetch = null;
  }
  drawDetail();
  if (current() && state.generation !== gen) loadDetail(false);
}

// --- drawing -------------------------------------------------------------------------------

function context(tab) {
  return {
    tree: state.docs.tree, pidtree: state.docs.pidtree, net: state.docs.net,
    index: state.index, filter: state.filter,
    selected: state.selected ? state.selected.ino : null,
    current: state.hitAt >= 0 ? state.hits[state.hitAt] : null,
    loOpen: state.loOpen, onlyMatches: state.onlyMatches,
    ...(state.open[tab] || {}),
  };
}

/** A hidden tab out of date shows nothing until it is shown again (and redrawn):
 * what is on the page is always what the server has now. */
function retire(tab) {
  const pane = $(`pane-${tab}`);
  if (pane.dataset.retired || tab === "events") return;
  pane.dataset.retired = "1";
  pane.replaceChildren(h("p", { class: "empty" }, "Loading…"));
}

/** Redraw the visible tab if it changed, keeping scroll and focus. */
function renderTab() {
  const tab = state.tab;
  if (!state.dirty.has(tab)) return;
  const pane = $(`pane-${tab}`);
  const focused = pane.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = focused && (focused.dataset.key || focused.dataset.ns);
  const [top, left, inner] = state.scroll[tab] || paneScroll(pane);
  const pageY = window.scrollY;
  delete state.scroll[tab];
  const currentKey = state.hitAt >= 0 ? state.hits[state.hitAt] : null;
  const started = performance.now();
  const hits = TABS[tab].render(tab === "events" ? $("events-list") : pane, context(tab)) || [];
  // For bench/page.py: how long each redraw takes, and when the first tree came.
  performance.measure(`nsctl render ${tab}`, { start: started });
  if (tab === "users" && state.docs.tree && !performance.getEntriesByName("nsctl first tree").length) performance.mark("nsctl first tree");
  if (performance.getEntriesByType("measure").length > 2000) performance.clearMeasures();
  state.hits = hits;
  state.hitAt = currentKey ? hits.indexOf(currentKey) : -1;
  markCurrent(pane);
  delete pane.dataset.retired;
  state.dirty.delete(tab);
  pane.scrollTop = top;
  pane.scrollLeft = left;
  window.scrollTo(window.scrollX, pageY);
  const wrap = pane.querySelector(".netwrap");
  if (inner && wrap) [wrap.scrollTop, wrap.scrollLeft] = inner;
  if (focusKey) {
    const again = pane.querySelector(`[data-key="${CSS.escape(focusKey)}"]`) || pane.querySelector(`[data-ns="${CSS.escape(focusKey)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
  renderCount();
}

function markCurrent(pane) {
  for (const el of pane.querySelectorAll(".current")) el.classList.remove("current");
  const key = state.hitAt >= 0 ? state.hits[state.hitAt] : null;
  const el = key ? pane.querySelector(`[data-key="${CSS.escape(key)}"]`) : null;
  if (el) el.classList.add("current");
  return el;
}

/** Step to the next (or previous) match: redraw so that it is shown, scroll to it. */
function step(by) {
  if (!state.hits.length) return;
  state.hitAt = state.hitAt < 0 ? (by > 0 ? 0 : state.hits.length - 1) : (state.hitAt + by + state.hits.length) % state.hits.length;
  const key = state.hits[state.hitAt];
  const pane = $(`pane-${state.tab}`);
  let el = pane.querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (!el || el.offsetParent === null) {
    state.dirty.add(state.tab);   // behind a closed item or "show more": draw it
    renderTab();
  }
  el = markCurrent(pane);
  if (el) el.scrollIntoView({ block: "center", inline: "center" });
  renderCount();
}

/** [top, left, [top, left] of the topology's own scroller] of a visible pane. */
function paneScroll(pane) {
  const wrap = pane.querySelector(".netwrap");
  return [pane.scrollTop, pane.scrollLeft, wrap ? [wrap.scrollTop, wrap.scrollLeft] : null];
}

let drawnDetail = null;      // what the details panel shows, to redraw only on a change

/** Redraw the details if they changed, keeping the panel's scroll and an open JSON. */
function drawDetail() {
  const panel = $("details");
  const detail = state.selected ? state.detail : null;
  const node = detail ? state.index.byIno.get(detail.ino) : null;
  const drawn = detail ? JSON.stringify([detail.ino, detail.gone, detail.error, detail.loading, detail.doc, node && displayName(node, state.index)]) : "";
  document.body.classList.toggle("has-sel", Boolean(detail));
  if (drawn === drawnDetail) return;
  const same = detail && drawnDetail && panel.dataset.selected === String(detail.ino);
  const raw = panel.querySelector("details.raw");
  const [top, rawOpen] = same ? [panel.scrollTop, raw && raw.open] : [0, false];
  drawnDetail = drawn;
  renderDetails(panel, detail, { index: state.index });
  const newRaw = panel.querySelector("details.raw");
  if (rawOpen && newRaw) newRaw.open = true;
  panel.scrollTop = top;
}

function renderCount() {
  const f = state.filter;
  const all = state.index.byIno.size;
  let text = `${all} namespaces`;
  if (state.tab === "events") {
    text = `${all} namespaces`;
  } else if (filterActive(f)) {
    const n = state.hits.length;
    text = n ? `${state.hitAt >= 0 ? `${state.hitAt + 1} of ${n}` : `${n}`} match${n === 1 ? "" : "es"}` : "no match";
  }
  $("count").textContent = text;
  $("hit-prev").disabled = $("hit-next").disabled = !state.hits.length;
}

function age(seconds) {
  if (!Number.isFinite(seconds)) return "";
  return seconds < 90 ? `${seconds.toFixed(seconds < 10 ? 1 : 0)} s` : `${Math.round(seconds / 60)} min`;
}

function renderStatus() {
  const s = state.status;
  const live = $("live");
  live.dataset.state = state.live;
  live.textContent = { live: "live", connecting: "connecting…", disconnected: "disconnected" }[state.live];
  if (s) {
    $("host").textContent = `${s.host} · Linux ${s.kernel} · nsctl ${s.version}`;
    // The model's age as of now: the age the server gave, plus the time since it gave it.
    const now = s.age + (performance.now() - (state.statusAt || performance.now())) / 1000;
    $("generation").textContent = `generation ${s.generation} · scanned ${age(now)} ago in ${age(s.scan_seconds)}${s.stale ? " (stale: the last rescan failed or is late)" : ""}`;
  }
  const warn = $("partial");
  if (s && s.partial) {
    const problems = s.problems || [];
    const what = problems.filter((p) => p.reason !== "vanished").slice(0, 3).map((p) => p.what).join("; ");
    fill(warn, h("strong", {}, "Partial result: "),
      `${problems.length} item${problems.length === 1 ? "" : "s"} not read${what ? ` (${what})` : ""}. What is shown may be missing namespaces or processes.`);
    warn.hidden = false;
  } else {
    warn.hidden = true;
  }
  const err = $("error");
  err.hidden = !state.error;
  err.textContent = state.error || "";
}

// --- events --------------------------------------------------------------------------------

/**
 * Keep an event; a process's entered/left rows of one moment (one per type of
 * namespace) fold into one row that lists the types, and so do its held/released
 * rows (fds, sockets, threads to several namespaces, taken or dropped at once).
 */
const FOLD_BACK = 64;   // how far back a process's row of the same moment is looked for
const FOLDED = new Set(["entered", "left", "held", "released"]);

function addEvent(kind, ev) {
  if (FOLDED.has(kind) && ev.pid !== undefined && ev.pid !== null) {
    // Events of one moment come namespace by namespace, several processes interleaved.
    const same = state.events.slice(0, FOLD_BACK).find((e) => e.event === kind && e.pid === ev.pid && e.time === ev.time);
    if (same) {
      if (!same.types.includes(ev.type)) same.types.push(ev.type);
      same.nss.push([ev.ns, ev.type]);
      return;
    }
  }
  state.events.unshift({ ...ev, event: kind, types: [ev.type], nss: [[ev.ns, ev.type]] });
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
}

function eventShown(ev) {
  const { kind, type } = state.ev;
  if (kind === "all") { /* everything */ } else if (kind === "process") {
    if (ev.event !== "entered" && ev.event !== "left") return false;
  } else if (kind) {
    if (ev.event !== kind) return false;
  } else if (!NS_EVENTS.has(ev.event)) return false;
  if (type && !ev.types.includes(type)) return false;
  if (state.filter.q) {
    const node = state.index.byIno.get(ev.ns);
    const text = `${ev.cause || ""} ${ev.name || ""} ${ev.ns}`.toLowerCase();
    if (!text.includes(state.filter.q.toLowerCase()) && !(node && matches(node, { ...state.filter, type: "" }, state.index))) return false;
  }
  return true;
}

const EVENTS_DRAWN = 500;

function renderEvents(list) {
  const shown = state.events.filter(eventShown);
  $("ev-count").textContent = `${shown.length} of ${state.events.length} kept${state.ev.paused ? ` · paused (${state.ev.held.length} waiting)` : ""}`;
  if (!shown.length) {
    list.replaceChildren(h("p", { class: "empty" }, state.events.length
      ? "No event passes the filter: namespace events (born, gone, pinned, …) are shown unless you choose entered / left."
      : "No event yet: they appear here as namespaces come and go."));
    return [];
  }
  const name = (ino, type) => {
    const node = state.index.byIno.get(ino);
    return node ? displayName(node, state.index) : nsName(type, ino);
  };
  list.replaceChildren(h("ol", { class: "events", "aria-label": "recent events, newest first" },
    shown.slice(0, EVENTS_DRAWN).map((ev) => h("li", { class: `ev ev-${ev.event}` },
      h("time", {}, String(ev.time || "").slice(11, 23)), " ",
      h("span", { class: "kind" }, ev.event), " ",
      ev.nss.length > 1
        ? [h("span", { class: "types" }, `${ev.nss.length} namespaces (${ev.types.join(", ")})`), " "]
        : [h("span", { class: `badge t-${ev.type}` }, ev.type), " ",
          h("button", { type: "button", class: "goto", "data-goto": ev.ns, "data-goto-type": ev.type }, name(ev.ns, ev.type))],
      ev.cause ? h("span", { class: "cause" }, ` ${ev.cause}`) : null)),
    shown.length > EVENTS_DRAWN ? h("li", { class: "ev more" }, `… and ${shown.length - EVENTS_DRAWN} older`) : null));
  return [];
}

function fillContainers() {
  const select = $("filter-container");
  const labels = state.index.containers;
  const current = state.filter.container;
  fill(select, h("option", { value: "" }, "any container"),
    labels.map((l) => h("option", { value: l, selected: l === current }, l)),
    current && !labels.includes(current) ? h("option", { value: current, selected: true }, current) : null);
  $("container-field").hidden = !labels.length && !current;
}

// --- interaction ---------------------------------------------------------------------------

function markSelected() {
  const ino = state.selected ? String(state.selected.ino) : null;
  for (const el of document.querySelectorAll("main [data-ns]")) {
    const on = el.dataset.ns === ino;
    el.classList.toggle("selected", on);
    if (on) el.setAttribute("aria-current", "true");
    else el.removeAttribute("aria-current");
  }
}

function select(ino, type, { reveal = false, push = true } = {}) {
  ino = Number(ino);
  if (state.selected && state.selected.ino === ino) return;
  state.selected = { ino, type };
  state.detail = null;
  markSelected();
  state.dirty.add("net");   // its links highlight the selected box
  if (state.tab === "net") renderTab();
  loadDetail(true);
  if (push) remember(true);
  if (reveal && window.matchMedia("(max-width: 760px)").matches) $("details").scrollTop = 0;
}

function unselect({ push = true } = {}) {
  state.selected = null;
  state.detail = null;
  markSelected();
  drawDetail();
  state.dirty.add("net");
  if (state.tab === "net") renderTab();
  if (push) remember(true);
}

function showTab(tab, { focus = false, push = true } = {}) {
  const old = $(`pane-${state.tab}`);
  if (tab !== state.tab && !old.hidden) state.scroll[state.tab] = paneScroll(old);
  if (tab !== state.tab) {
    state.hitAt = -1;
    state.dirty.add(tab);
  }
  state.tab = tab;
  document.body.dataset.tab = tab;
  if (push) remember(true);
  for (const button of document.querySelectorAll("[role=tab]")) {
    const on = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    if (on && focus) button.focus();
    $(button.getAttribute("aria-controls")).hidden = !on;
  }
  if (state.dirty.has(tab)) renderTab();
  else restoreScroll(tab);
  if (TABS[tab].docs.some((name) => state.have[name] !== state.generation)) refresh();
}

function restoreScroll(tab) {
  const saved = state.scroll[tab];
  if (!saved) return;
  delete state.scroll[tab];
  const pane = $(`pane-${tab}`);
  [pane.scrollTop, pane.scrollLeft] = saved;
  const wrap = pane.querySelector(".netwrap");
  if (saved[2] && wrap) [wrap.scrollTop, wrap.scrollLeft] = saved[2];
}

/** The box nearest to ``from`` in direction [dx, dy] (straight ahead counts more than aside). */
function nearest(from, boxes, [dx, dy]) {
  const centre = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left + r.width / 2, r.top + r.height / 2];
  };
  const [x, y] = centre(from);
  let best = null;
  let bestScore = Infinity;
  for (const box of boxes) {
    if (box === from) continue;
    const [bx, by] = centre(box);
    const ahead = (bx - x) * dx + (by - y) * dy;
    if (ahead <= 1) continue;
    const aside = Math.abs((bx - x) * dy) + Math.abs((by - y) * dx);
    const score = ahead + 3 * aside;
    if (score < bestScore) {
      best = box;
      bestScore = score;
    }
  }
  return best;
}

function wire() {
  // Tabs: click, or arrow keys along the tab list.
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const button of tabs) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
    button.addEventListener("keydown", (e) => {
      const at = tabs.indexOf(button);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      showTab(tabs[(to + tabs.length) % tabs.length].dataset.tab, { focus: true });
    });
  }
  // Selecting: any [data-ns] in a pane, a process row (its PID namespace), an inode link.
  document.addEventListener("click", (e) => {
    const goto = e.target.closest("[data-goto]");
    if (goto) return select(goto.dataset.goto, goto.dataset.gotoType, { reveal: true });
    if (e.target.closest("[data-close]")) return unselect();
    if (e.target.closest("[data-reread]") && state.selected) return loadDetail(true);
    const el = e.target.closest("main [data-ns], main [data-in-ns]");
    if (!el) return;
    if (el.dataset.ns) select(el.dataset.ns, el.dataset.type, { reveal: true });
    else select(el.dataset.inNs, "pid", { reveal: true });
  });
  // SVG boxes are not buttons: Enter and Space select them; arrow keys move to
  // the nearest box in that direction.
  $("pane-net").addEventListener("keydown", (e) => {
    const box = e.target.closest("g[data-ns]");
    if (!box) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      select(box.dataset.ns, "net", { reveal: true });
      return;
    }
    const dir = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] }[e.key];
    if (!dir) return;
    e.preventDefault();
    const next = nearest(box, [...$("pane-net").querySelectorAll("g[data-ns]")], dir);
    if (next) {
      next.focus();
      next.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  });
  $("pane-net").addEventListener("change", (e) => {
    if (e.target.id === "only-matches") {
      state.onlyMatches = e.target.checked;
      state.dirty.add("net");
      renderTab();
      remember(false);
    }
  });
  $("pane-net").addEventListener("toggle", (e) => {
    if (e.target.classList && e.target.classList.contains("lo-group")) state.loOpen = e.target.open;
  }, true);
  netHover($("pane-net"));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.selected && e.target.id !== "search") unselect();
    if (e.key === "/" && !e.target.closest("input, select, textarea")) {
      e.preventDefault();
      $("search").focus();
    }
  });
  treeKeys($("pane-users"));
  treeKeys($("pane-pids"));
  // Search and filters: redraw as one types (briefly debounced).
  let timer = null;
  const apply = () => {
    clearTimeout(timer);
    const next = { q: $("search").value.trim(), type: $("filter-type").value, container: $("filter-container").value };
    if (JSON.stringify(next) === JSON.stringify(state.filter)) return;
    const started = next.q && !state.filter.q;
    state.filter = next;
    state.hitAt = -1;
    for (const tab of Object.keys(TABS)) state.dirty.add(tab);
    renderTab();
    remember(false);
    // A search looks in the processes too: those of the model shown (fetched as a
    // search starts; while it goes on, each model change brings them).
    if (started && !tabDocs().every((name) => state.have[name] === state.generation)) refresh();
  };
  for (const id of ["search", "filter-type", "filter-container"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(apply, 150);
    });
  }
  $("search").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    apply();
    step(e.shiftKey ? -1 : 1);
  });
  $("hit-next").addEventListener("click", () => step(1));
  $("hit-prev").addEventListener("click", () => step(-1));
  $("more-filters").addEventListener("click", () => {
    const open = !document.body.classList.contains("filters-open");
    document.body.classList.toggle("filters-open", open);
    $("more-filters").setAttribute("aria-expanded", String(open));
  });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filters").addEventListener("reset", () => setTimeout(apply, 0));
  // Events: kind, type, pause.
  for (const id of ["ev-kind", "ev-type"]) {
    $(id).addEventListener("change", () => {
      state.ev.kind = $("ev-kind").value;
      state.ev.type = $("ev-type").value;
      state.dirty.add("events");
      renderTab();
    });
  }
  $("ev-pause").addEventListener("click", () => {
    state.ev.paused = !state.ev.paused;
    $("ev-pause").setAttribute("aria-pressed", String(state.ev.paused));
    $("ev-pause").textContent = state.ev.paused ? "Resume" : "Pause";
    if (!state.ev.paused) {
      for (const [kind, ev] of state.ev.held) addEvent(kind, ev);
      state.ev.held = [];
    }
    state.dirty.add("events");
    renderTab();
  });
  $("event-filters").addEventListener("submit", (e) => e.preventDefault());
  window.addEventListener("popstate", fromUrl);
  // The topology wraps to the pane's width.
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      state.dirty.add("net");
      if (state.tab === "net") renderTab();
    }, 200);
  });
}

let eventsTimer = null;

function connect() {
  follow({
    onState: (live) => {
      const was = state.live;
      state.live = live;
      renderStatus();
      if (live === "live" && was !== "live") refresh();   // catch up on what we missed
      if (live === "disconnected") setTimeout(connect, 5000);
    },
    onEvent: (kind, ev) => {
      if (!ev) return;
      if (state.ev.paused) {
        state.ev.held.push([kind, ev]);
        if (state.ev.held.length > MAX_EVENTS) state.ev.held.shift();
      } else {
        addEvent(kind, ev);
      }
      state.dirty.add("events");
      // Events can come by the hundred: draw them at most a few times a second.
      if (state.tab === "events" && !eventsTimer) {
        eventsTimer = setTimeout(() => {
          eventsTimer = null;
          if (state.tab === "events") renderTab();
        }, 300);
      }
    },
    onGeneration: (gen) => {
      // A page nobody looks at (a background browser tab) catches up when it is shown.
      if (gen !== state.generation && !document.hidden) refresh();
    },
  });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
wire();
fromUrl();
drawDetail();
refresh().then(connect);
setInterval(refresh, STATUS_POLL_MS);
setInterval(renderStatus, 1000);   // the model's age keeps counting between polls
