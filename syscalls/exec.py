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
from sentry.kernel.syscall import AT_FDCWD, Rewrite
from syscalls import permission
from sentry.errors import SyscallError
from syscalls.lookup import fd_sandbox_path, lookup
from syscalls.registry import handler
from sentry.platform import memory

SYS_EXECVEAT = 322
AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = 0x1000, 0x100
RED_ZONE = 128


def exec_rewrite(call, dirfd, path, argv_addr, envp_addr, flags):
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

    prog = program.load(resolve, path, argv0)

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
    # Linux names the process after the file name it was asked to run
    comm = os.path.basename(path.rstrip(b"/")).decode(errors="replace")[:15]
    if not path and flags & AT_EMPTY_PATH:
        comm = os.path.basename(prog.exe)[:15]
    # ... while the kernel names it after the file the Sentry runs (ld.so, a
    # resolved path): /proc shows `comm` while the kernel's name is this one
    kernel_comm = os.path.basename(prog.loc.rel)[:15]
    call.process.pending_exec = (prog.exe, st.st_dev, st.st_ino, comm, kernel_comm, prog.busy)
    return Rewrite(SYS_EXECVEAT, {0: prog.loc.mount.guest_fd, 1: path_addr, 2: sp,
                                  3: envp_addr, 4: 0})


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
