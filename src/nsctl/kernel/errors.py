"""The few exceptions that the kernel layer raises, and one errno translator.

Discovery and operations catch these, never raw errno values, so the list of
"normal" failures (a process exits mid-read, a supervisor refuses even root)
lives in exactly one place: :func:`classify`.
"""
from __future__ import annotations

import errno


class NsctlError(Exception):
    """An error with a one-line message meant for the user; ``exit_status`` is what
    the command exits with (1 unless the error says otherwise, e.g. 127 for a
    command that could not be run)."""

    exit_status = 1


class NoSuchProcess(NsctlError):
    """The process (or the file we read of it) is gone: ENOENT, ESRCH."""


class AccessDenied(NsctlError):
    """The kernel refused: EACCES, EPERM."""


class Unsupported(NsctlError):
    """This kernel lacks the interface: ENOSYS, ENOTTY, EINVAL on a known-good call."""


class NotANamespace(NsctlError):
    """A path or fd that is not a namespace file."""


GONE = frozenset({errno.ENOENT, errno.ESRCH})
DENIED = frozenset({errno.EACCES, errno.EPERM})
MISSING_INTERFACE = frozenset({errno.ENOSYS, errno.ENOTTY, errno.EOPNOTSUPP})


def classify(exc: OSError, what: str) -> NsctlError:
    """Turn an OSError into the matching domain exception, message included."""
    reason = exc.strerror or str(exc)
    if exc.errno in GONE:
        return NoSuchProcess(f"{what}: {reason}")
    if exc.errno in DENIED:
        return AccessDenied(f"{what}: {reason}")
    if exc.errno in MISSING_INTERFACE:
        return Unsupported(f"{what}: not supported by this kernel ({reason})")
    return NsctlError(f"{what}: {reason}")
