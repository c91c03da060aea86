"""Fixture helpers for the tests: real namespaces and processes, built and read without nsctl.

- :mod:`support.syscalls`: unshare, setns, mount, prctl and the kernel's constants (ctypes);
- :mod:`support.nsfacts`: what the kernel says about a namespace (stat, NS_GET_* ioctls, NSpid);
- :mod:`support.processes`: helper processes (:class:`~support.processes.Child`), process
  trees, killing and reaping;
- :mod:`support.namespaces`: topologies (nested user namespaces, a netns held by a bind
  mount, an fd, a socket, a thread...), each a context manager that undoes all it made;
- :mod:`support.churn`: namespaces and threads made and dropped while nsctl scans;
- :mod:`support.leaks`: what a test may leave behind, checked after every test (conftest.py);
- :mod:`support.cli`: ``python -m nsctl`` in a subprocess, as a user runs it;
- :mod:`support.ops`, :mod:`support.pid`, :mod:`support.serve`, :mod:`support.views`: what
  the tests of pin/enter/run, PID namespaces, ``nsctl serve`` and the views build on top;
- :mod:`support.hostile`: the hostile local user's client program (standard library only; run
  as text under ``setpriv``).
"""
from __future__ import annotations

import os

import pytest

root_only = pytest.mark.skipif(os.geteuid() != 0,
                               reason="needs root: builds namespaces, bind mounts and setns")
