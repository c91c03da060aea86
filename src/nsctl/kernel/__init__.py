"""Thin typed wrappers over the kernel's namespace interfaces.

This package is the only place that knows errno values, ioctl numbers and
syscall numbers.  Everything above it sees a few clear exceptions
(:mod:`nsctl.kernel.errors`) and plain Python values.
"""
