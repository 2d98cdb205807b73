"""pyseccomp, imported without its start-up tax.

pyseccomp finds libc and libseccomp with ctypes.util.find_library, which runs
`ldconfig -p` in a subprocess for each (two forks of the Sentry at every
start).  Their sonames are fixed by the ABI, so they are given directly; any
other lookup goes to find_library as before.
"""
import ctypes.util

SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}

_find_library = ctypes.util.find_library
ctypes.util.find_library = lambda name: SONAMES.get(name) or _find_library(name)
try:
    import pyseccomp  # noqa: E402
finally:
    ctypes.util.find_library = _find_library

__all__ = ["pyseccomp"]
