"""The few exceptions that the kernel layer raises, and one errno translator.

Discovery and operations catch these, never raw errno values, so the list of
"normal" failures (a process exits mid-read, a supervisor refuses even root)
lives in exactly one place: :func:`classify`.

Each exception carries its facts as attributes, as psutil's do: ``reason``
(why, one of :data:`REASONS`: the ``reason`` of a problem record), ``what``
(what was being read or done, when the raiser knows) and ``pid`` (the process
it concerns, when there is one).  The message (``str(exc)``) is the one line
shown to the user.
"""
from __future__ import annotations

import errno

# Why something could not be read: the ``reason`` of a problem record (the
# ``problems`` of every JSON document), each with the words a warning uses for it.
VANISHED = "vanished"        # the process exited, or the thing read of it is gone
DENIED = "denied"            # the kernel refused
UNSUPPORTED = "unsupported"  # this kernel lacks the interface
ERROR = "error"              # anything else (text the kernel gave that makes no sense)
ENGINE = "engine"            # a container engine could not be asked for names
REASONS: dict[str, str] = {
    VANISHED: "exited during the scan",
    DENIED: "permission denied",
    UNSUPPORTED: "not supported by this kernel",
    ERROR: "error",
    ENGINE: "container engine not asked",
}


class NsctlError(Exception):
    """An error with a one-line message meant for the user; ``exit_status`` is what
    the command exits with (1 unless the error says otherwise, e.g. 127 for a
    command that could not be run)."""

    exit_status = 1
    reason = ERROR

    def __init__(self, message: str = "", *args: object, what: str | None = None,
                 pid: int | None = None) -> None:
        super().__init__(message, *args)
        self.what = what
        self.pid = pid


class NoSuchProcess(NsctlError):
    """The process (or the file we read of it) is gone: ENOENT, ESRCH."""

    reason = VANISHED


class AccessDenied(NsctlError):
    """The kernel refused: EACCES, EPERM."""

    reason = DENIED


class Unsupported(NsctlError):
    """This kernel lacks the interface: ENOSYS, ENOTTY, EINVAL on a known-good call."""

    reason = UNSUPPORTED


class NotANamespace(NsctlError):
    """A path or fd that is not a namespace file."""


class Unparsable(NsctlError):
    """A /proc text that does not have the form the kernel documents (a truncated or
    garbled line): that one item is not read, the rest of the scan goes on."""


GONE_ERRNOS = frozenset({errno.ENOENT, errno.ESRCH})
DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
MISSING_INTERFACE_ERRNOS = frozenset({errno.ENOSYS, errno.ENOTTY, errno.EOPNOTSUPP})


def classify(exc: OSError, what: str, pid: int | None = None) -> NsctlError:
    """Turn an OSError into the matching domain exception, message included."""
    detail = exc.strerror or str(exc)
    if exc.errno in GONE_ERRNOS:
        return NoSuchProcess(f"{what}: {detail}", what=what, pid=pid)
    if exc.errno in DENIED_ERRNOS:
        return AccessDenied(f"{what}: {detail}", what=what, pid=pid)
    if exc.errno in MISSING_INTERFACE_ERRNOS:
        return Unsupported(f"{what}: not supported by this kernel ({detail})", what=what,
                           pid=pid)
    return NsctlError(f"{what}: {detail}", what=what, pid=pid)
