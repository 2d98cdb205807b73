"""cffi build script for sentry's native tracer (``sentry._native``).

Run by setuptools at install time (``cffi_modules`` in setup.py); the header
is the single source of the declarations, so the cdef is read from it.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _cdef_from_header(path):
    # cffi's parser takes plain declarations and integer #defines only.
    keep = []
    for line in open(path):
        if line.startswith("#") and not re.match(r"#define SN_\w+ \d+", line):
            continue
        keep.append(line)
    return "".join(keep)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(os.path.join(HERE, "tracer.h")) + _cdef_from_header(os.path.join(HERE, "resolve.h")))
ffibuilder.set_source(
    "sentry._native",
    '#include "tracer.h"\n#include "resolve.h"',
    sources=[os.path.relpath(os.path.join(HERE, name))
             for name in ("tracer.c", "fastpath.c", "fastnet.c", "clone3.c", "resolve.c", "identity.c", "idmap.c", "image.c", "host.c",
                          "handover.c", "holder.c", "selfconfine.c")],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
