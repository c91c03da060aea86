// The nsctl web page: loads the model from nsctl serve, draws the user
// namespace tree, the PID namespace tree, the network topology and recent
// events, and follows the event stream.  On every change it refetches what the
// visible tab needs and redraws it, keeping selection, filter, open/closed
// items, focus and scroll position.

import { ApiError, follow, get, specPath } from "./api.js";
import { renderDetails } from "./details.js";
import { fill, h, nsName } from "./dom.js";
import { buildIndex, emptyFilter, filterActive, matches } from "./model.js";
import { renderNet } from "./netmap.js";
import { renderPids } from "./pids.js";
import { treeKeys } from "./treeview.js";
import { renderUsers } from "./users.js";

const MIN_GAP_MS = 700;        // at most one refetch per this, however many events come
const STATUS_POLL_MS = 15000;  // also poll status (ages, and changes missed while disconnected)
const MAX_EVENTS = 200;

const $ = (id) => document.getElementById(id);

const TABS = {
  users: { docs: ["tree", "pidtree"], render: renderUsers },
  pids: { docs: ["tree", "pidtree"], render: renderPids },
  net: { docs: ["tree", "pidtree", "net"], render: renderNet },
  events: { docs: ["tree", "pidtree"], render: renderEvents },   // the index: links and counts
};

const state = {
  tab: TABS[location.hash.slice(1)] ? location.hash.slice(1) : "users",
  filter: emptyFilter(),
  selected: null,            // {ino, type}
  detail: null,              // {ino, type, doc, error, gone, loading, generation}
  docs: { tree: null, pidtree: null, net: null },
  have: { tree: null, pidtree: null, net: null },   // generation each doc was fetched at
  status: null,
  generation: null,
  index: buildIndex(null, null, null),
  dirty: new Set(Object.keys(TABS)),
  events: [],
  scroll: {},                // tab -> [top, left] while it is hidden
  // Open/closed items per tree; the kernel threads (under kthreadd, PID 2) start closed.
  open: { users: { collapsed: new Set(), expanded: new Set() }, pids: { collapsed: new Set(["p2"]), expanded: new Set() } },
  live: "connecting",
  error: null,
};

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
}

async function load() {
  state.status = await get("status");
  state.statusAt = performance.now();
  const gen = state.status.generation;
  state.generation = gen;
  const wanted = TABS[state.tab].docs.filter((name) => state.have[name] !== gen);
  const fetched = await Promise.all(wanted.map((name) => get(name)));
  wanted.forEach((name, k) => {
    state.docs[name] = fetched[k];
    state.have[name] = gen;
  });
  if (wanted.length) {
    state.index = buildIndex(state.docs.tree, state.docs.pidtree, state.docs.net);
    for (const tab of Object.keys(TABS)) {
      state.dirty.add(tab);
      if (tab !== state.tab) retire(tab);
    }
    fillContainers();
  }
  renderTab();
  if (state.selected) loadDetail(false);   // not awaited: a slow view must not hold up the trees
}

let detailFetch = null;      // {ino, controller} of the details request on its way

/**
 * (Re)load the selected namespace's details: first `show` (from the server's
 * model, quick), then with its view (read live, slower; the last view stays up
 * meanwhile).  A new selection aborts the request on its way; a change while
 * one is on its way is fetched once it is done.
 */
async function loadDetail(fresh) {
  const { ino, type } = state.selected;
  const gen = state.generation;
  const current = () => state.selected && state.selected.ino === ino;
  const detail = state.detail && state.detail.ino === ino ? state.detail : { ino, type, doc: null };
  if (!fresh && (detail.generation === gen || (detailFetch && detailFetch.ino === ino))) return;
  if (state.docs.tree && !state.index.byIno.has(ino)) {
    state.detail = { ...detail, gone: true, loading: false, generation: gen };
    drawDetail();
    return;
  }
  if (detailFetch) detailFetch.controller.abort();
  const controller = new AbortController();
  detailFetch = { ino, controller };
  state.detail = { ...detail, loading: true, gone: false };
  if (fresh) drawDetail();
  const spec = specPath(nsName(type, ino));
  try {
    const doc = await get(spec, { signal: controller.signal });
    const lastView = detail.doc ? detail.doc.view : undefined;
    state.detail = { ino, type, doc: { ...doc, view: lastView }, loading: true, generation: gen };
    drawDetail();
    const seen = await get(`${spec}?view=1`, { signal: controller.signal });
    state.detail = { ino, type, doc: seen, loading: false, generation: gen };
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
    ...(state.open[tab] || {}),
  };
}

/** A hidden tab out of date shows nothing until it is shown again (and redrawn):
 * what is on the page is always what the server has now. */
function retire(tab) {
  const pane = $(`pane-${tab}`);
  if (pane.dataset.retired) return;
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
  TABS[tab].render(pane, context(tab));
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
  const drawn = detail ? JSON.stringify([detail.ino, detail.gone, detail.error, detail.loading, detail.doc]) : "";
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
  const all = [...state.index.byIno.values()];
  const shown = filterActive(f) ? all.filter((n) => matches(n, f, state.index)).length : all.length;
  $("count").textContent = filterActive(f) ? `${shown} of ${all.length} namespaces match` : `${all.length} namespaces`;
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

function renderEvents(pane) {
  if (!state.events.length) {
    pane.replaceChildren(h("p", { class: "empty" }, "No event yet: they appear here as namespaces come and go."));
    return;
  }
  pane.replaceChildren(h("ol", { class: "events", "aria-label": "recent events, newest first" },
    state.events.map((ev) => h("li", { class: `ev ev-${ev.event}` },
      h("time", {}, String(ev.time || "").slice(11, 23)), " ",
      h("span", { class: "kind" }, ev.event), " ",
      h("button", { type: "button", class: "goto", "data-goto": ev.ns, "data-goto-type": ev.type }, ev.name || nsName(ev.type, ev.ns)),
      ev.cause ? h("span", { class: "cause" }, ` ${ev.cause}`) : null))));
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

function select(ino, type, { reveal = false } = {}) {
  ino = Number(ino);
  if (state.selected && state.selected.ino === ino) return;
  state.selected = { ino, type };
  state.detail = null;
  markSelected();
  state.dirty.add("net");   // its links highlight the selected box
  loadDetail(true);
  if (reveal && window.matchMedia("(max-width: 760px)").matches) $("details").scrollIntoView({ block: "start" });
}

function unselect() {
  state.selected = null;
  state.detail = null;
  markSelected();
  drawDetail();
}

function showTab(tab, { focus = false } = {}) {
  const old = $(`pane-${state.tab}`);
  if (tab !== state.tab && !old.hidden) state.scroll[state.tab] = paneScroll(old);
  state.tab = tab;
  history.replaceState(null, "", `#${tab}`);
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
    const el = e.target.closest("main [data-ns], main [data-in-ns]");
    if (!el) return;
    if (el.dataset.ns) select(el.dataset.ns, el.dataset.type, { reveal: true });
    else select(el.dataset.inNs, "pid", { reveal: true });
  });
  // SVG boxes are not buttons: Enter and Space select them.
  $("pane-net").addEventListener("keydown", (e) => {
    const box = e.target.closest("g[data-ns]");
    if (box && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      select(box.dataset.ns, "net", { reveal: true });
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.selected && e.target.id !== "search") unselect();
    if (e.key === "/" && !e.target.closest("input, select, textarea")) {
      e.preventDefault();
      $("search").focus();
    }
  });
  treeKeys($("pane-users"));
  treeKeys($("pane-pids"));
  // Filters: redraw as one types (briefly debounced).
  let timer = null;
  const apply = () => {
    state.filter = {
      q: $("search").value.trim(),
      type: $("filter-type").value,
      container: $("filter-container").value,
      proc: $("filter-process").value.trim(),
    };
    for (const tab of Object.keys(TABS)) state.dirty.add(tab);
    renderTab();
  };
  for (const id of ["search", "filter-type", "filter-container", "filter-process"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(apply, 120);
    });
  }
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filters").addEventListener("reset", () => setTimeout(apply, 0));
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
      state.events.unshift({ ...ev, event: kind });
      state.events.length = Math.min(state.events.length, MAX_EVENTS);
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
      if (gen !== state.generation) refresh();
    },
  });
}

wire();
showTab(state.tab);
drawDetail();
refresh().then(connect);
setInterval(refresh, STATUS_POLL_MS);
setInterval(renderStatus, 1000);   // the model's age keeps counting between polls
