"""``/metrics``: the Prometheus text exposition format (version 0.0.4), written here
(a few families need no client library at run time)."""
from __future__ import annotations

from .. import __version__
from ..kernel import nsfs
from ..model import REF_KINDS
from .security import Guard
from .state import Histogram, Model, Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Families in order: ``family`` starts one, ``sample`` adds to it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        text = ",".join(f'{k}="{_label_value(str(v))}"' for k, v in labels.items())
        number = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")

    def gauge(self, name: str, help_text: str, value: float) -> None:
        self.family(name, "gauge", help_text)
        self.sample(name, value)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _model_counts(model: Model) -> tuple[dict[str, int], dict[str, int], int]:
    """(namespaces by type, by kind of holder, hidden ones), counted in the model's
    document (each entry names the kinds that hold it) once per model."""
    def count() -> tuple[dict[str, int], dict[str, int], int]:
        by_type = dict.fromkeys(nsfs.NS_TYPES, 0)
        by_holder = dict.fromkeys(REF_KINDS, 0)
        hidden = 0
        for entry in model.doc["namespaces"]:
            by_type[entry["type"]] = by_type.get(entry["type"], 0) + 1
            for kind in entry.get("held_by") or ():
                by_holder[kind] = by_holder.get(kind, 0) + 1
            hidden += bool(entry.get("hidden"))
        return by_type, by_holder, hidden

    return model.cached("metrics-counts", count)


def _model_families(out: Exposition, model: Model) -> None:
    by_type, by_holder, hidden = _model_counts(model)
    out.family("nsctl_namespaces", "gauge", "Namespaces found, by type.")
    for t, n in sorted(by_type.items()):
        out.sample("nsctl_namespaces", n, type=t)
    out.family("nsctl_namespaces_held", "gauge",
               "Namespaces with at least one reference of this kind (process, thread, fd, "
               "socket, bindmount, child); a namespace counts once per kind.")
    for kind, n in by_holder.items():
        out.sample("nsctl_namespaces_held", n, kind=kind)
    out.gauge("nsctl_namespaces_hidden", "Namespaces kept alive only by a child namespace.",
              hidden)
    out.gauge("nsctl_processes", "Processes read.", len(model.doc.get("processes") or ()))
    reasons: dict[str, int] = {}
    for p in model.doc.get("problems") or ():
        reasons[p["reason"]] = reasons.get(p["reason"], 0) + 1
    out.family("nsctl_discovery_problems", "gauge",
               "Things the last scan could not read, by reason.")
    for reason in ("denied", "vanished", "unsupported", "error"):
        out.sample("nsctl_discovery_problems", reasons.pop(reason, 0), reason=reason)
    for reason, n in sorted(reasons.items()):
        out.sample("nsctl_discovery_problems", n, reason=reason)
    out.gauge("nsctl_model_generation", "Bumps each time the model changes.", model.generation)


def histogram(out: Exposition, name: str, help_text: str,
              series: dict[tuple[tuple[str, str], ...], Histogram]) -> None:
    """One histogram family: for each label set, its buckets, +Inf, sum and count."""
    out.family(name, "histogram", help_text)
    for labels, h in series.items():
        for bound, count in zip(h.bounds, h.buckets, strict=True):
            out.sample(f"{name}_bucket", count, **dict(labels), le=repr(float(bound)))
        out.sample(f"{name}_bucket", h.count, **dict(labels), le="+Inf")
        out.sample(f"{name}_sum", round(h.sum, 6), **dict(labels))
        out.sample(f"{name}_count", h.count, **dict(labels))


def render(store: Store, guard: Guard | None = None) -> str:
    out = Exposition()
    out.family("nsctl_build_info", "gauge", "nsctl version (the value is always 1).")
    out.sample("nsctl_build_info", 1, version=__version__)
    model = store.current
    if model is not None:
        _model_families(out, model)
    stats = store.stats
    age = store.age()
    out.gauge("nsctl_model_age_seconds", "Seconds since the last scan ended (-1: none yet).",
              round(age, 3) if age is not None else -1)
    out.gauge("nsctl_discovery_last_duration_seconds", "How long the last scan took.",
              round(stats.scan_seconds, 6))
    histogram(out, "nsctl_discovery_duration_seconds", "How long scans take.",
              {(): stats.scan_durations})
    out.family("nsctl_refresh_errors_total", "counter",
               "Rescans that failed, and refresher processes that died.")
    out.sample("nsctl_refresh_errors_total", stats.refresh_errors)
    out.family("nsctl_events_total", "counter", "Namespace events (as nsctl watch reports them).")
    for kind, n in stats.events.items():
        out.sample("nsctl_events_total", n, kind=kind)
    out.gauge("nsctl_cnproc", "1 when rescans are triggered by process events, 0 when "
              "polling only.", int(stats.trigger == "cn_proc"))
    if guard is not None:
        out.family("nsctl_http_requests_total", "counter",
                   "HTTP requests answered, by status class.")
        for code, n in sorted(guard.answered.items()):
            out.sample("nsctl_http_requests_total", n, code=code)
        out.family("nsctl_http_connections_refused_total", "counter",
                   "Connections closed at once: their peer held its maximum already.")
        out.sample("nsctl_http_connections_refused_total", guard.policy.refused_connections)
        out.family("nsctl_http_connections_timed_out_total", "counter",
                   "Connections closed for sending no complete request headers in time.")
        out.sample("nsctl_http_connections_timed_out_total",
                   guard.policy.timed_out_connections)
        histogram(out, "nsctl_http_request_duration_seconds",
                  "Time to the first byte of the answer, by route.",
                  {(("route", r),): h for r, h in sorted(guard.latency.items())})
    return out.text()
