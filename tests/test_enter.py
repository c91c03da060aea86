"""nsctl.kernel.enter.visit_each: work done inside other namespaces by forked children.

Real network namespaces (unshare'd children); each child of visit_each reports
the namespace it stands in, which must be the target's (os.fstat of the fd the
test opened), in the target's place, whether one child visits them all or
several share them.
"""
from __future__ import annotations

import os
from contextlib import ExitStack

import pytest
from support import namespaces, processes, root_only, syscalls

from nsctl.kernel.enter import visit_each
from nsctl.kernel.errors import NsctlError


def _where(self_dir: int):
    """The work: which network namespace the child is in, and a file handed back."""
    yield {"net": os.stat("ns/net", dir_fd=self_dir).st_ino}, None
    yield {"fd": "ns/net"}, os.open("ns/net", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self_dir)


@root_only
@pytest.mark.parametrize("workers", [1, 3])
def test_each_target_is_visited_in_its_place(workers):
    with ExitStack() as stack:
        fds = []
        for _ in range(7):
            child = stack.enter_context(processes.Child(namespaces.unshare_and_wait,
                                                        syscalls.CLONE_NEWNET))
            fd = os.open(f"/proc/{child.ready()['pid']}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, fd)
            fds.append(fd)
        not_a_namespace = os.open("/", os.O_RDONLY | os.O_CLOEXEC)
        stack.callback(os.close, not_a_namespace)
        targets = [[(fd, syscalls.CLONE_NEWNET)] for fd in fds]
        targets.insert(3, [(not_a_namespace, syscalls.CLONE_NEWNET)])
        results = visit_each(targets, _where, workers)

        assert len(results) == len(targets)
        assert isinstance(results[3], NsctlError)   # setns refused that one, only that one
        del results[3]
        passed = [fd for items in results for _item, fd in items if fd is not None]
        for fd in passed:
            stack.callback(os.close, fd)
        for fd, items in zip(fds, results):
            expected = os.fstat(fd).st_ino
            # (items without an fd travel batched, after the ones with one)
            assert [item for item, fd in items if fd is None] == [{"net": expected}]
            handed = [fd for _item, fd in items if fd is not None]
            assert [os.fstat(h).st_ino for h in handed] == [expected]   # over SCM_RIGHTS
