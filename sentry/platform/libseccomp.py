"""pyseccomp, imported without its start-up tax.

pyseccomp finds libc and libseccomp with ctypes.util.find_library, which runs
`ldconfig -p` in a subprocess for each (two forks of the Sentry at every
start), and importing ctypes.util imports subprocess and locale (~2 ms).
Their sonames are fixed by the ABI, so they are given directly: while
pyseccomp imports, `ctypes.util` is a stand-in that knows these two, and
sends any other lookup to the real module, imported then.  Where ctypes.util
is imported already, its find_library is wrapped the same way.
"""
import ctypes
import sys
import types

SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _import():
    real = sys.modules.get("ctypes.util")
    if real is not None:
        find = real.find_library
        real.find_library = lambda name: SONAMES.get(name) or find(name)
        try:
            import pyseccomp
        finally:
            real.find_library = find
        return pyseccomp
    stand_in = types.ModuleType("ctypes.util")

    def restore():
        if sys.modules.get("ctypes.util") is stand_in:
            del sys.modules["ctypes.util"]
        if getattr(ctypes, "util", None) is stand_in:
            del ctypes.util

    def find_library(name):
        if name in SONAMES:
            return SONAMES[name]
        restore()
        import ctypes.util
        return ctypes.util.find_library(name)

    stand_in.find_library = find_library
    sys.modules["ctypes.util"] = ctypes.util = stand_in
    try:
        import pyseccomp
    finally:
        restore()
    return pyseccomp


pyseccomp = _import()

__all__ = ["pyseccomp"]


_syscall_names = None


def syscall_names():
    """{number: name} of every x86-64 syscall libseccomp knows (the kernel's
    own table).  Asked once per process tree: the helpers forked after it
    inherit the answer (512 lookups through ctypes, ~0.6 ms, were made again
    by the table and by each process that confines itself)."""
    global _syscall_names
    if _syscall_names is None:
        names = {}
        for nr in range(512):
            try:
                name = pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, nr)
            except Exception:
                continue        # a hole in the numbering, or newer than libseccomp
            if name:
                names[nr] = name.decode() if isinstance(name, bytes) else name
        _syscall_names = names
    return _syscall_names


def library_version():
    """libseccomp's own version, (major, minor, micro): what compiles a
    filter, so what a compiled program depends on."""
    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]
    fn = ctypes.CDLL(SONAMES["seccomp"]).seccomp_version
    fn.restype = ctypes.POINTER(Version)
    v = fn().contents
    return v.major, v.minor, v.micro
