"""Only the optional C part; everything else is in pyproject.toml.

nsctl.kernel._native makes a few system calls Python 3.11 lacks without
importing ctypes, and runs the thread scan of ``nsctl ls --threads`` (tens of
thousands of threads) at the kernel's pace.  Where it can't be built (no
compiler or no Python headers) the install goes on without it, and nsctl uses
ctypes and its Python loop.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("nsctl.kernel._native", ["src/nsctl/kernel/_native.c"],
                             extra_compile_args=["-O2", "-Wall",
                                                 "-Werror=implicit-function-declaration"],
                             optional=True)])
