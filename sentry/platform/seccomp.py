"""The seccomp-bpf filter, built with libseccomp from the rules it is given
(syscalls/table.py makes them from the syscall table).

Default action TRACE: every call no rule allows stops at the Sentry.
A foreign architecture (i386 `int 0x80`) kills the process; x32 numbers share
the x86-64 audit arch and are killed by the native tracer (tracer.c).
"""
import os
import struct

from sentry.platform import staging
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
    lib.sn_set_staging_mmap(staging.PROT_READ, staging.MAP_FLAGS)
    release = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit())
    lib.sn_set_statx_null(release >= (6, 11))
    for nr in mm_checked:
        lib.sn_set_mm_check(nr, 1)


# -- a guest's own profile (the OCI runtime's linux.seccomp) ------------------

SYS_SECCOMP, SECCOMP_SET_MODE_FILTER = 317, 1
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
BPF_CLASS_RET, BPF_RVAL_K = 0x06, 0x00
# What a profile may return.  Each either keeps the call from running --
# the kernel answers (ERRNO), signals (TRAP) or kills before any tracer sees
# the call, as these rank above RET_TRACE -- or ranks below the Sentry's
# RET_TRACE (LOG, ALLOW), which then still applies.  Not TRACE (a guest has
# no tracer but the Sentry, which must not take a profile's stops for its
# own) and never USER_NOTIF: it outranks RET_TRACE, and a supervisor's
# "continue" would run the call unchecked.
PROFILE_ACTIONS = {0x80000000: "KILL_PROCESS", 0x00000000: "KILL_THREAD", 0x00030000: "TRAP",
                   0x00050000: "ERRNO", 0x7FFC0000: "LOG", 0x7FFF0000: "ALLOW"}


class GuestProfile:
    """A seccomp filter the guest runs under, stacked on the Sentry's:
    compiled and checked in the Sentry (`compile_profile`), loaded by the
    guest's process just before its execve (`load`)."""

    def __init__(self, code, flags=0):
        check_profile(code)
        self.code = code
        self.flags = flags

    def load(self):
        """In the guest's process, after the Sentry's filter: seccomp(2)
        itself (trapped: the Sentry's handler lets it through, as any
        guest's own filter).  Raises OSError."""
        import ctypes
        buf = ctypes.create_string_buffer(self.code, len(self.code))

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
        prog = SockFprog(len(self.code) // 8, ctypes.addressof(buf))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        if libc.syscall(ctypes.c_long(SYS_SECCOMP), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                        ctypes.c_long(self.flags), ctypes.byref(prog)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))


def compile_profile(filt):
    """The BPF program of a libseccomp filter, as the kernel will run it."""
    fd = os.memfd_create("sentry-profile", os.MFD_CLOEXEC)
    try:
        with open(fd, "wb", closefd=False) as f:
            filt.export_bpf(f)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def check_profile(code):
    """Every way out of the program returns a constant in PROFILE_ACTIONS;
    ValueError otherwise.  What the guest loads is what was checked."""
    if not code or len(code) % 8:
        raise ValueError("not a BPF program")
    for at in range(0, len(code), 8):
        op, _, _, k = struct.unpack_from("<HBBI", code, at)
        if op & 0x07 != BPF_CLASS_RET:
            continue
        if op & 0x18 != BPF_RVAL_K:
            raise ValueError(f"instruction {at // 8} returns a computed action")
        if k & SECCOMP_RET_ACTION_FULL not in PROFILE_ACTIONS:
            raise ValueError(f"instruction {at // 8} returns action {k & SECCOMP_RET_ACTION_FULL:#x}, "
                             "which a profile may not use under the Sentry")
