"""Open the namespace a SPEC names without scanning the host, where the SPEC allows it.

``enter`` and ``pin`` need one fd per namespace, not the whole map: a path to a
namespace file (``/run/netns/NAME``, ``/proc/PID/ns/net``) is opened through the
checked opener (nsctl.kernel.nsfs.open_ns); ``PID/TYPE`` through the process's
pidfd (PIDFD_GET_*_NAMESPACE, else its /proc link); a namespace id (a number
below every namespace inode) by its nsfs file handle, after finding its type and
inode among the ns links of the processes and our own nsfs mounts; an inode
(``type:[inode]`` or a bare one) among the same links.  :func:`open_spec`
answers None when the SPEC needs a scan (container names, stable paths, a
namespace nothing cheap reaches): the caller then discovers and resolves as
nsctl.query.spec does.
"""
from __future__ import annotations

import os

from ..kernel import nsfs
from ..kernel.errors import AccessDenied, NoSuchProcess, NotANamespace, NsctlError, Unsupported

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Iterator



def _pid_type(spec: str) -> tuple[int, str] | None:
    """``PID/LINK`` split, or None."""
    pid, sep, link = spec.partition("/")
    if sep and pid.isdigit() and link and all(c.isalpha() and c.islower() or c == "_"
                                              for c in link):
        return int(pid), link
    return None


def _typed(spec: str) -> tuple[str, int] | None:
    """``type:[inode]`` split, or None."""
    kind, sep, rest = spec.partition(":[")
    if sep and kind.isalpha() and kind.islower() and rest.endswith("]") and rest[:-1].isdigit():
        return kind, int(rest[:-1])
    return None


class Found:
    """The identity of a namespace opened directly: what a scan's Namespace has of it
    (nsctl.model, not imported here: a command that enters one namespace need not pay
    for building the model's classes)."""

    __slots__ = ("ino", "type", "dev", "id")

    def __init__(self, ino: int, ns_type: str, dev: int, ns_id: int | None) -> None:
        self.ino, self.type, self.dev, self.id = ino, ns_type, dev, ns_id

    @property
    def label(self) -> str:
        return f"{self.type}:[{self.ino}]"


def names_a_namespace(text: str) -> bool:
    """Whether ``text`` is written as ``PID/TYPE`` or ``type:[inode]``, a SPEC that is
    no file name (to catch arguments given in the wrong order)."""
    return (_pid_type(text) is not None and text.partition("/")[2] in nsfs.LINK_TYPE) or \
        _typed(text) is not None


def _spec_error(message: str, not_found: bool = False) -> NsctlError:
    """nsctl.query.spec's SpecError (or NotFound), imported only on the way out."""
    from .spec import NotFound, SpecError

    return NotFound(message) if not_found else SpecError(message)


def namespace_of(fd: int, what: str) -> Found:
    """The identity of the namespace open at ``fd`` (SpecError if it is none)."""
    try:
        ns_type = nsfs.ns_type(fd)
    except NotANamespace:
        raise _spec_error(f"{what}: not a namespace file") from None
    st = os.fstat(fd)
    return Found(st.st_ino, ns_type, st.st_dev, nsfs.ns_id(fd))


def open_spec(spec: str) -> tuple[Found, int] | None:
    """(namespace, read-only fd on it) for ``spec`` opened directly, or None when
    ``spec`` needs a scan.  SpecError (or NoSuchProcess) when the SPEC is wrong in a
    way no scan changes."""
    spec = spec.strip()
    if not spec:
        raise _spec_error("empty namespace spec")
    if spec.startswith("container:"):
        return None
    pid_link = _pid_type(spec)
    if pid_link:
        return _by_pid(pid_link[0], pid_link[1], spec)
    by_id = spec[0] == ":" and spec[1:].isdigit()   # ``:ID``, as ``--net=:ID`` writes an id
    if by_id or spec.isdigit():
        number = int(spec[1:] if by_id else spec)
        if by_id or number < nsfs.MIN_INODE:
            return _by_id(number, spec)
        return _by_inode(number, None, spec)
    typed = _typed(spec)
    if typed:
        if typed[0] not in nsfs.CLONE_FLAGS:
            raise _spec_error(f"unknown namespace type {typed[0]!r} in {spec!r}")
        return _by_inode(typed[1], typed[0], spec)
    if "/" in spec and (os.path.lexists(spec) or not _stable_path_form(spec)):
        try:
            fd = nsfs.open_ns(spec)   # (a missing file says so here, with no scan)
        except NsctlError as exc:
            raise _spec_error(str(exc)) from None
        return _checked(fd, spec)
    return None


def _stable_path_form(spec: str) -> bool:
    """Whether ``spec`` is written like a stable path (/user.0/net.1), which only a scan
    resolves."""
    from .naming import parse

    return parse(spec) is not None


def _checked(fd: int, what: str) -> tuple[Found, int]:
    try:
        return namespace_of(fd, what), fd
    except BaseException:
        os.close(fd)
        raise


def _by_pid(pid: int, link: str, spec: str) -> tuple[Found, int]:
    """``PID/LINK`` through the pidfd: the process, not whatever has its PID by now."""
    from ..kernel import pidfd, procfs  # (here: a path SPEC needs neither)

    if link not in nsfs.LINK_TYPE:
        raise _spec_error(f"unknown namespace type {link!r} in {spec!r} "
                        f"(one of {', '.join(nsfs.LINK_TYPE)})")
    try:
        pfd = pidfd.open_task_pidfd(pid)
    except NoSuchProcess:
        raise NoSuchProcess(f"{spec}: no process with PID {pid}") from None
    except NsctlError as exc:
        raise type(exc)(f"{spec}: {exc}") from None
    try:
        try:
            fd = pidfd.namespace_fd(pfd, link)
        except Unsupported:
            fd = None   # a kernel before PIDFD_GET_*_NAMESPACE: the /proc link
        except NoSuchProcess:
            raise NoSuchProcess(f"{spec}: process {pid} exited") from None
        except NsctlError as exc:
            raise type(exc)(f"{spec}: {exc}") from None
        if fd is None:
            try:
                fd = nsfs.open_ns(f"{procfs.PROC}/{pid}/ns/{link}")
            except NsctlError as exc:
                raise type(exc)(f"{spec}: {exc}") from None
            if not pidfd.is_alive(pfd):   # the PID may name another process now
                os.close(fd)
                raise _spec_error(f"{spec}: process {pid} exited", not_found=True)
    finally:
        os.close(pfd)
    return _checked(fd, spec)


def _candidates(ns_type: str | None) -> Iterator[tuple[str, int, str]]:
    """(type, inode, path) of the namespaces the processes' ns links and our own nsfs
    mounts name, each once, read with readlink only (nothing opened)."""
    from ..kernel import procfs

    seen: set[tuple[str, int]] = set()
    try:
        for root, point in procfs.nsfs_mounts(procfs.read_text("/proc/self/mountinfo",
                                                               records=True)):
            parsed = nsfs.parse_link(root)
            if parsed and (ns_type is None or parsed[0] == ns_type) and parsed not in seen:
                seen.add(parsed)
                yield parsed[0], parsed[1], point
    except OSError:
        pass
    links = nsfs.NS_TYPES if ns_type is None else (ns_type,)
    for name in os.listdir(procfs.PROC):
        if not name.isdigit():
            continue
        for link in links:
            path = f"{procfs.PROC}/{name}/ns/{link}"
            try:
                parsed = nsfs.parse_link(os.readlink(path))
            except OSError:
                continue
            if parsed and parsed not in seen:
                seen.add(parsed)
                yield parsed[0], parsed[1], path


def _by_id(ns_id: int, spec: str) -> tuple[Found, int] | None:
    """A namespace id: its file handle wants the type and inode too; the links and
    mounts that name some namespace give the candidates, the kernel says which one has
    this id.  None (scan) where handles don't work or no candidate has it."""
    for ns_type, ino, _path in _candidates(None):
        try:
            fd = nsfs.open_by_id(ns_id, ns_type, ino)
        except AccessDenied:
            return None   # (not ours to open by handle: a scan may reach it another way)
        if fd is not None:
            return _checked(fd, spec)
        if nsfs.handles_work() is False:
            return None
    return None


def _by_inode(ino: int, ns_type: str | None, spec: str) -> tuple[Found, int] | None:
    """An inode: the first process link or own mount that names it, opened only once it
    is that namespace; None (scan) when none does."""
    from ..kernel import procfs

    for found_type, found_ino, path in _candidates(ns_type):
        if found_ino != ino:
            continue
        try:
            if path.startswith(procfs.PROC + "/"):
                fd = nsfs.open_ns(path, expect_ino=ino)
            else:
                fd = nsfs.open_mounted_ns("/", path, expect_ino=ino)
        except NsctlError:
            continue   # gone meanwhile, or not ours to open: another holder may do
        if ns_type is not None and found_type != ns_type:
            os.close(fd)
            raise _spec_error(f"{spec}: namespace {ino} is a {found_type} namespace, "
                            f"not {ns_type}")
        return _checked(fd, spec)
    return None
