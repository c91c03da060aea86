"""Source: the container each process is in, from /proc/PID/cgroup
(see nsctl.discovery.cgroup_names).

Which processes are read.  /proc/PID/cgroup costs one more open, read and
parse per process, a few percent of a scan (bench/README.md, "Costs behind
thresholds in the code").  So it is read only for processes that can be in a
container:

- whose mount namespace differs from nsctl's, or
- whose cgroup namespace differs from nsctl's, or
- every process (but kernel threads), when nsctl itself runs in a container.

Every engine that :mod:`nsctl.discovery.cgroup_names` knows gives its containers a mount
namespace of their own (the container's root file system), also with
``--cgroupns=host``, ``--pid=host``, ``--net=host`` or ``--privileged``; a
process joined with ``docker exec`` enters it too.  What the rule skips is in
the host's mount and cgroup namespaces, so not a container's payload: the
engines' shims and monitors, and ``nsenter -n`` sessions.  On a host whose
processes are all in its own mount namespace this costs nothing at all.
When nsctl runs inside a container its own mount namespace is that
container's, so the rule can't tell; then every process is read.

Afterwards (``finish``) the containers get their names from their engines
(:mod:`nsctl.discovery.engines`; only engines whose containers were seen are
asked) and namespaces are labelled, by the rule of
:func:`nsctl.discovery.cgroup_names.namespace_container`.
"""
from __future__ import annotations

from ..kernel import procfs
from ..kernel.errors import ENGINE
from .scan import ProcHandle, Scan


def read(scan: Scan, proc: ProcHandle) -> None:
    """The container the process is in, from its cgroup (for which processes: see above)."""
    process = proc.process
    if process is None:
        return
    own = scan.snap.own
    if scan.cgroup_everywhere is None:
        scan.cgroup_everywhere = _in_container("/proc/self")
    if process.ns.get("mnt") == own.get("mnt") and \
            process.ns.get("cgroup") == own.get("cgroup") and \
            not (scan.cgroup_everywhere and process.cmdline):
        return
    # The table compiles on first use: hosts without any container pay nothing.
    from . import cgroup_names as containers

    process.container = containers.parse(procfs.read_text("cgroup", proc.view))


def finish(scan: Scan) -> None:
    """Name the containers (asking their engines: nsctl.discovery.engines), then
    label the namespaces with the containers of the processes in them."""
    snap = scan.snap
    if any(p.container is not None for p in snap.processes.values()):
        from . import cgroup_names as containers
        from . import engines

        engines.name_containers(snap.processes.values(),
                                lambda what: scan.problem(ENGINE, what))
        containers.label_namespaces(snap)


def _in_container(path: str) -> bool:
    """Whether the process at ``path`` (a /proc/PID directory) is in a container's cgroup."""
    try:
        text = procfs.read_text(f"{path}/cgroup")
    except OSError:
        return False
    from . import cgroup_names as containers

    if not containers.may_be_in_container(text):
        return False  # no engine's name anywhere: no need to compile the table
    return containers.parse(text) is not None
