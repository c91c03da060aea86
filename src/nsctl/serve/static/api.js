// Talking to nsctl serve: JSON GETs (with a bearer token when the server wants
// one) and the server-sent event stream.

const TOKEN_KEY = "nsctl-token";
let asked = false;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** The error the server sent ({"error": ...}), or the HTTP status. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Documents fetched with `tagged`: path -> {tag, doc}, the server's ETag and the
// parsed document it names.
const kept = new Map();

/**
 * GET /api/v1/PATH as JSON; on 401 ask for a token once and retry.  With `tagged`,
 * ask with the ETag of the copy kept from last time: a document that did not
 * change comes back as 304 and the very same object is returned (the caller can
 * tell by identity that there is nothing to index or draw).
 */
export async function get(path, { signal, tagged = false } = {}) {
  for (;;) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const copy = tagged ? kept.get(path) : undefined;
    if (copy) headers["If-None-Match"] = copy.tag;
    const resp = await fetch(`/api/v1/${path}`, { headers, cache: "no-store", signal });
    if (resp.status === 304 && copy) return copy.doc;
    if (resp.status === 401 && asked) sessionStorage.removeItem(TOKEN_KEY);   // wrong: ask again after a reload
    if (resp.status === 401 && !asked) {
      asked = true;
      const given = window.prompt("This nsctl server needs a token:");
      if (given) {
        sessionStorage.setItem(TOKEN_KEY, given.trim());
        continue;
      }
    }
    if (!resp.ok) {
      let message = `${resp.status} ${resp.statusText}`;
      try {
        const body = await resp.json();
        if (body && body.error) message = String(body.error);
      } catch (_) { /* not JSON */ }
      throw new ApiError(resp.status, message);
    }
    const doc = await resp.json();
    const tag = resp.headers.get("ETag");
    if (tagged && tag) kept.set(path, { tag, doc });
    else kept.delete(path);
    return doc;
  }
}

/** A namespace SPEC as one URL path segment. */
export function specPath(spec) {
  return `namespaces/${encodeURIComponent(spec)}`;
}

const EVENT_KINDS = ["born", "gone", "entered", "left", "pinned", "unpinned", "held", "released"];

/**
 * Follow /api/v1/events.  onState("live" | "connecting" | "disconnected"),
 * onEvent(kind, data) for watch events, onGeneration(n).  EventSource
 * reconnects by itself, sending the last generation it saw as Last-Event-ID:
 * the server replays what came meanwhile, or says "reset" (then everything is
 * fetched again, as for a new generation).  The token goes in the query (an
 * EventSource cannot send headers).
 */
export function follow({ onState, onEvent, onGeneration }) {
  const url = token() ? `/api/v1/events?token=${encodeURIComponent(token())}` : "/api/v1/events";
  const source = new EventSource(url);
  // Each failed try is an error event (the browser tries again every 2 s, as the
  // server's "retry" says): after FAILED_TRIES in a row the page says disconnected
  // rather than "connecting" for ever.
  const FAILED_TRIES = 3;
  let failed = 0;
  onState("connecting");
  source.onopen = () => {
    failed = 0;
    onState("live");
  };
  source.onerror = () => {
    failed += 1;
    onState(source.readyState === EventSource.CLOSED || failed >= FAILED_TRIES ? "disconnected" : "connecting");
  };
  const parse = (msg) => {
    try {
      return JSON.parse(msg.data);
    } catch (_) {
      return null;
    }
  };
  for (const kind of EVENT_KINDS) {
    source.addEventListener(kind, (msg) => onEvent(kind, parse(msg)));
  }
  for (const kind of ["generation", "reset"]) {
    source.addEventListener(kind, (msg) => {
      const data = parse(msg);
      if (data && Number.isFinite(data.generation)) onGeneration(data.generation);
    });
  }
  return source;
}
