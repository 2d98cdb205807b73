"""execve and execveat.

The Sentry resolves the program in the sandbox (sentry/loader), then rewrites
the call to `execveat(<mount's hidden fd>, <staged relative path>, argv, envp)`.
execveat has no RESOLVE_* flags, so the kernel could follow a symlink that a
racing guest planted meanwhile; the check is therefore repeated after the
fact: at PTRACE_EVENT_EXEC, before the new image runs one instruction, the
kernel's /proc/<tid>/exe must be the file the Sentry read, and nothing else
may be mapped (no interpreter of the kernel's choosing), or the task is
killed (kernel.on_exec, sentry/loader/image.py).
"""
import errno
import os
import stat
import struct

from sentry.loader import program
from sentry.kernel import idmap
from sentry.kernel.syscall import AT_FDCWD, Rewrite
from sentry.kernel.task import PendingExec
from syscalls import permission
from syscalls import timens as clocks
from sentry.errors import SyscallError
from syscalls.lookup import fd_sandbox_path, lookup, view_from
from syscalls.registry import handler
from sentry.platform import memory

SYS_EXECVEAT = 322
AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = 0x1000, 0x100
RED_ZONE = 128


def _enter_container_timens(call):
    """The OCI spec's time namespace (Kernel.container_timens): a process in
    none of a guest's enters it at this execve, as a namespace a guest
    made is entered -- its clock calls trap from now on (the filter is
    injected and the call runs again).  So the container's init and each
    process `exec` adds run in it, as runc's do."""
    ns, proc = call.kernel.container_timens, call.process
    if ns is None or proc.timens_children is not None:
        return
    clocks.ensure_traps(call)
    proc.timens_children = ns


def exec_rewrite(call, dirfd, path, argv_addr, envp_addr, flags):
    # the staging slot first: where the process has no staging area yet (a
    # child of a program that never staged a call), the area is mapped and
    # the call runs again, and the work below would be done twice
    call.slot()
    _enter_container_timens(call)
    call.kernel.nproc_at_exec(call.task)       # RLIMIT_NPROC after a set*uid: EAGAIN first
    argv_ptrs = memory.read_pointer_array(call.tid, argv_addr) if argv_addr else []
    argv0 = memory.read_string(call.tid, argv_ptrs[0], 1 << 17) if argv_ptrs else b""
    first = [True]

    def resolve(p):
        if first[0]:
            first[0] = False
            if not p and flags & AT_EMPTY_PATH:
                spath = fd_sandbox_path(call, dirfd)
                return lookup(call, AT_FDCWD, os.fsencode(spath))
            loc = lookup(call, dirfd, p, follow=not flags & AT_SYMLINK_NOFOLLOW)
            if loc.exists and stat.S_ISLNK(loc.st.st_mode):
                raise SyscallError(errno.ELOOP)     # AT_SYMLINK_NOFOLLOW on a symlink, as O_NOFOLLOW
        else:
            loc = lookup(call, AT_FDCWD, p)
        if not loc.mount.allows_exec:
            raise SyscallError(errno.EACCES)
        permission.check(call, loc, permission.X)
        return loc

    root = call.process.root
    prog = program.load(resolve, path, argv0, seen=lambda spath: view_from(root, spath) or spath)

    # Strings go to the staging slot; the pointer array (any length) goes on
    # the guest's stack below the red zone: if a racing thread rewrites it,
    # only argv changes, which is the guest's business.
    # The guest's own argv[0] is passed by pointer too (it may be long).
    def own(a):
        return a is None or (a is argv0 and argv_ptrs)
    strings = [a for a in prog.argv if not own(a)]
    addrs = call.stage(os.fsencode(prog.loc.rel) + b"\0", *(s + b"\0" for s in strings))
    path_addr, str_addrs = addrs[0], iter(addrs[1:])
    ptrs = []
    for a in prog.argv:
        if a is None:
            ptrs.extend(argv_ptrs[1:])
        elif own(a):
            ptrs.append(argv_ptrs[0])
        else:
            ptrs.append(next(str_addrs))
    array = struct.pack(f"<{len(ptrs) + 1}Q", *ptrs, 0)
    sp = (call.regs.rsp - RED_ZONE - len(array)) & ~15
    call.write(sp, array)

    st = prog.st
    setid = _setid(call, prog)
    secure = call.task.creds.copy().exec(*setid)
    if secure and prog.by_loader:
        envp_addr = _secure_environment(call, envp_addr, sp)
    # Linux names the process after the file name it was asked to run
    comm = os.path.basename(path.rstrip(b"/")).decode(errors="replace")[:15]
    if not path and flags & AT_EMPTY_PATH:
        comm = os.path.basename(prog.exe)[:15]
    # ... while the kernel names it after the file the Sentry runs (ld.so, a
    # resolved path): /proc shows `comm` while the kernel's name is this one
    kernel_comm = os.path.basename(prog.loc.rel)[:15]
    call.process.pending_exec = PendingExec(prog.exe, st.st_dev, st.st_ino, comm, kernel_comm, prog.busy, setid)
    return Rewrite(SYS_EXECVEAT, {0: prog.loc.mount.guest_fd, 1: path_addr, 2: sp,
                                  3: envp_addr, 4: 0}, restore=False)


def _swappable(call, loc):
    """Whether the calling task could put another file at the program's
    path.  The kernel runs an image by the file it opened; a dynamic
    program is opened again by its loader, by path, after the exec: a
    program in a directory the task may write (a hard link it made to a
    set-id file) could be swapped for its own in between and run with the
    program's ids.  Its set-id bits are then ignored, as on a nosuid mount.
    (A task that overrides permissions could swap any file: it gains
    nothing.)"""
    creds = call.task.creds
    if not creds.checks_files:
        return False
    spath = os.path.dirname(loc.spath)
    while True:
        mount, rel = call.mounts.locate(spath)
        try:
            st = mount.find(rel)[1]
        except (OSError, SyscallError):
            return True                    # fail closed: no set-id
        if st is None or creds.permits(st, permission.W):
            return True
        if spath == "/":
            return False
        spath = os.path.dirname(spath)


def _setid(call, prog):
    """The (uid, gid) in the sandbox a set-user-id (set-group-id and
    group-executable) program runs with, None for each it does not set, as
    the kernel's bprm_fill_uid: not on a nosuid mount, nor for an owner the
    sandbox does not map."""
    loc, st, nosuid = prog.image
    if not st.st_mode & (stat.S_ISUID | stat.S_ISGID) or nosuid:
        return None, None
    ids = idmap.current
    if not ids.maps(st.st_uid, st.st_gid) or _swappable(call, loc):
        return None, None
    uid, gid = ids.uid_view(st.st_uid), ids.gid_view(st.st_gid)
    sgid = st.st_mode & (stat.S_ISGID | stat.S_IXGRP) == stat.S_ISGID | stat.S_IXGRP
    return (uid if st.st_mode & stat.S_ISUID else None), (gid if sgid else None)


# What glibc's loader removes from a secure program's environment
# (unsecvars.h, and MALLOC_CHECK_ without /etc/suid-debug).  The Sentry runs
# a dynamic program by running its loader as a program, and glibc's loader
# so run asserts ("_dl_start_args_adjust") when it must remove one: the
# Sentry passes the environment without them, as the loader would leave it.
UNSECURE_ENV = frozenset(
    b"GCONV_PATH GETCONF_DIR HOSTALIASES LD_AUDIT LD_DEBUG LD_DEBUG_OUTPUT LD_DYNAMIC_WEAK "
    b"LD_HWCAP_MASK LD_LIBRARY_PATH LD_ORIGIN_PATH LD_PRELOAD LD_PROFILE LD_SHOW_AUXV "
    b"LD_USE_LOAD_BIAS LOCALDOMAIN LOCPATH MALLOC_TRACE NIS_PATH NLSPATH RESOLV_HOST_CONF "
    b"RES_OPTIONS TMPDIR TZDIR MALLOC_CHECK_".split())
ENV_NAME_MAX = 64


def _secure_environment(call, envp_addr, below):
    """A copy of the guest's envp array without UNSECURE_ENV, written on its
    stack below `below`; its address.  A string a racing thread changes
    after this reads it is the guest's business: the loader still runs
    secure, and would stop on an unsecure name it finds."""
    ptrs = memory.read_pointer_array(call.tid, envp_addr) if envp_addr else []
    kept = []
    for p in ptrs:
        try:
            head = memory.read_string(call.tid, p, 1 << 17)[:ENV_NAME_MAX + 1]
        except SyscallError:
            kept.append(p)          # the kernel's EFAULT, as without the copy
            continue
        if head.partition(b"=")[0] not in UNSECURE_ENV:
            kept.append(p)
    array = struct.pack(f"<{len(kept) + 1}Q", *kept, 0)
    addr = (below - len(array)) & ~15
    call.write(addr, array)
    return addr


@handler("execve")
def sys_execve(call):
    return exec_rewrite(call, AT_FDCWD, call.path(0), call.args[1], call.args[2], 0)


@handler("execveat")
def sys_execveat(call):
    flags = call.args[4]
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        raise SyscallError(errno.EINVAL)
    path = call.string(1)
    if not path and not flags & AT_EMPTY_PATH:
        raise SyscallError(errno.ENOENT)
    return exec_rewrite(call, call.fd(0), path, call.args[2], call.args[3], flags)
