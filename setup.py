"""Only the optional C part; everything else is in pyproject.toml.

nsctl.kernel._taskscan speeds up ``nsctl ls --threads`` on hosts with tens of
thousands of threads.  Where it can't be built (no compiler or no Python
headers) the install goes on without it and nsctl uses its Python loop.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("nsctl.kernel._taskscan", ["src/nsctl/kernel/_taskscan.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror=implicit-function-declaration"],
                             optional=True)])
