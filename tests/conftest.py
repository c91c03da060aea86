"""Shared test setup: helper processes come back to us, and every test leaves nothing behind.

After each test, the autouse fixture ``leaves_nothing_behind`` fails the test
(an error at teardown) if it left any of these, and then removes them so the
next test starts clean:

- a process descended from this pytest process (running or unreaped; the
  pytest process is a child subreaper, so orphans of its children count too),
  or a thread of the pytest process;
- a mount under this session's temp dirs, or an nsfs mount / /run/netns entry
  of ours (see :class:`support.leaks.LeakScope`: only names under our tag unless
  NSCTL_TEST_STRICT_LEAKS=1, since others run tests on this machine too);
- a file under this session's temp dirs (tmp_path, tmp_path_factory and
  TMPDIR all point there);
- an fd of this pytest process, whatever it is open on (a namespace, a pipe,
  a socket, a memfd, an eventfd, a file...).

Resources therefore live in function-scoped fixtures (or ``with`` blocks):
a module- or session-scoped one would count as left behind by the test that
first used it.
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from support import leaks, syscalls  # noqa: E402  (needs the path above)


def pytest_configure(config: pytest.Config) -> None:
    syscalls.set_child_subreaper()   # needs no privilege


def pytest_unconfigure(config: pytest.Config) -> None:
    """pytest removes this session's temp dir (retention "none") but leaves its own
    /tmp/pytest-of-USER behind: remove that too when nothing else is in it."""
    import getpass

    try:
        os.rmdir(os.path.join(tempfile.gettempdir(), f"pytest-of-{getpass.getuser()}"))
    except OSError:
        pass   # gone already, or another session's temp dir is in it


@pytest.fixture(scope="session")
def leak_scope(tmp_path_factory: pytest.TempPathFactory) -> Iterator[leaks.LeakScope]:
    """Point TMPDIR at this session's temp dir, and say what counts as ours."""
    base = tmp_path_factory.getbasetemp()
    tmp = base / "TMPDIR"
    tmp.mkdir(exist_ok=True)
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    # Strict (every new nsfs mount and /run/netns entry counts) in CI, where nothing
    # else runs tests on the machine; scoped to our own names otherwise.
    strict = os.environ.get("NSCTL_TEST_STRICT_LEAKS", "1" if os.environ.get("CI") else "0") == "1"
    yield leaks.LeakScope([base], tag=netns_tag(), strict=strict)
    tempfile.tempdir = saved_tempdir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


def netns_tag() -> str:
    """Prefix for /run/netns names this session makes (use it: the leak check sees them)."""
    return f"nsctl-test-{os.getpid()}-"


@pytest.fixture(autouse=True)
def leaves_nothing_behind(leak_scope: leaks.LeakScope) -> Iterator[None]:
    before = leak_scope.capture()
    yield
    left = leak_scope.new_since(before, leak_scope.capture())
    if left:
        leak_scope.clean(left)
        pytest.fail(f"the test left behind: {left.describe()}", pytrace=False)


@pytest.fixture
def scratch(tmp_path):
    """tmp_path, emptied again at the end (the leak check counts files left there)."""
    yield tmp_path
    for dirpath, dirs, files in os.walk(tmp_path, topdown=False):
        for name in files:
            os.unlink(os.path.join(dirpath, name))
        for name in dirs:
            os.rmdir(os.path.join(dirpath, name))


@pytest.fixture
def scr(scratch):
    """``scratch`` as the kernel spells it (symlinks resolved), for comparing with paths
    nsctl and /proc print."""
    return scratch.resolve()
