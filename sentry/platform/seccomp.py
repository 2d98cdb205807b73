"""The seccomp-bpf filter, generated from the syscall table with libseccomp.

Default action TRACE: every call the table does not ALLOW stops at the Sentry.
A foreign architecture (i386 `int 0x80`) kills the process; x32 numbers share
the x86-64 audit arch and are killed by the native tracer (tracer.c).
"""
import os

from sentry.platform.libseccomp import pyseccomp

from sentry._native import lib
from syscalls import table


def build(trace_all=False):
    """trace_all (--strace): the calls allowed in BPF trap too, so that they
    can be shown; the Sentry lets them run as BPF would have (Kernel.on_syscall).
    Allowed calls with a handler are the exception, but read: their handlers
    assume the trap came from a per-fd filter (kernel/fdtraps.py); read's
    checks the fd itself."""
    f = pyseccomp.SyscallFilter(pyseccomp.TRACE(0))
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 1)
    for e in table.TABLE.values():
        if e.outcome == "allow":
            if not (trace_all and (e.handler is None or e.name == "read")):
                f.add_rule(pyseccomp.ALLOW, e.nr)
        elif e.outcome == "allow-if":
            for args in () if trace_all else table.ALLOW_IF[e.name]:
                f.add_rule(pyseccomp.ALLOW, e.nr, *args)
        elif e.outcome == "errno":
            f.add_rule(pyseccomp.ERRNO(table.BPF_ERRNO[e.name]), e.nr)
        for err, args in table.ERRNO_IF.get(e.name, ()):
            f.add_rule(pyseccomp.ERRNO(err), e.nr, *args)
    return f


_OPS = {pyseccomp.EQ: lambda v, a, b: v == a, pyseccomp.LT: lambda v, a, b: v < a,
        pyseccomp.GE: lambda v, a, b: v >= a, pyseccomp.MASKED_EQ: lambda v, a, b: v & a == b}


def allowed_by(rules, raw):
    """Whether BPF would have allowed a call with registers `raw` under
    `rules` (OR-ed lists of AND-ed pyseccomp.Arg checks, as given to build):
    for a call trapped only so that --strace can show it."""
    return any(all(_OPS[a._op](raw[a._arg], a._data_a, a._data_b) for a in rule) for rule in rules)


def configure_native(staging_base, staging_size, mounts, fast_paths=True):
    """Tell the native fast path which trapped calls it answers alone, and
    the mount table its path lookups use (every mount: a path under /dev must
    never be served from the root mount's host directory)."""
    lib.sn_fast_enable(1 if fast_paths else 0)
    kinds = {"bind": lib.SN_MOUNT_DIR, "tmpfs": lib.SN_MOUNT_DIR, "dev": lib.SN_MOUNT_DEV}
    for m in mounts.backings():     # an overlay's upper layer comes before its lower one
        if m.kind == "dev":
            lib.sn_set_dev_nodes(" ".join(sorted(m.FAST_NODES)).encode())
        kind = kinds.get(m.kind, lib.SN_MOUNT_PYTHON)
        if m.kind == "layer":
            kind = lib.SN_MOUNT_LOWER if m.readonly else lib.SN_MOUNT_UPPER
        if lib.sn_add_mount(m.path.encode(), m.host_root.encode(), m.fd, m.guest_fd,
                            int(m.readonly), kind):
            raise ValueError(f"mount {m.path}: too many mounts or path too long")
    lib.sn_set_staging(staging_base, staging_size)
    release = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit())
    lib.sn_set_statx_null(release >= (6, 11))
    for e in table.TABLE.values():
        if e.name in table.MM_CALLS or e.name == "mmap":
            lib.sn_set_mm_check(e.nr, 1)
