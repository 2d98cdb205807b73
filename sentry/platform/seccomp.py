"""The seccomp-bpf filter, built with libseccomp from the rules it is given
(syscalls/table.py makes them from the syscall table).

Default action TRACE: every call no rule allows stops at the Sentry.
A foreign architecture (i386 `int 0x80`) kills the process; x32 numbers share
the x86-64 audit arch and are killed by the native tracer (tracer.c).
"""
import os

from sentry.platform.libseccomp import pyseccomp

from sentry._native import ffi, lib


def build(rules):
    """rules: (nr, errno or None to allow, [pyseccomp.Arg, ...] all to match)."""
    f = pyseccomp.SyscallFilter(pyseccomp.TRACE(0))
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 1)
    for nr, err, args in rules:
        f.add_rule(pyseccomp.ALLOW if err is None else pyseccomp.ERRNO(err), nr, *args)
    return f


_OPS = {pyseccomp.EQ: lambda v, a, b: v == a, pyseccomp.LT: lambda v, a, b: v < a,
        pyseccomp.GE: lambda v, a, b: v >= a, pyseccomp.MASKED_EQ: lambda v, a, b: v & a == b}


def allowed_by(rules, raw):
    """Whether BPF would have allowed a call with registers `raw` under
    `rules` (OR-ed lists of AND-ed pyseccomp.Arg checks, as given to build):
    for a call trapped only so that --strace can show it."""
    return any(all(_OPS[a._op](raw[a._arg], a._data_a, a._data_b) for a in rule) for rule in rules)


def configure_native(staging_base, staging_size, mounts, mm_checked, fast_paths=True):
    """Tell the native fast path which trapped calls it answers alone, and
    the mount table its path lookups use (every mount: a path under /dev must
    never be served from the root mount's host directory).  mm_checked: the
    numbers of the calls it checks against the staging area."""
    lib.sn_fast_enable(1 if fast_paths else 0)
    groups = os.getgroups()
    lib.sn_set_host_ids(os.geteuid(), os.getegid(), ffi.new("uint32_t[]", groups or [0]), len(groups))
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
    for nr in mm_checked:
        lib.sn_set_mm_check(nr, 1)
