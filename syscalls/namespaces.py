"""unshare(2): the namespaces a guest may make of its own.

A new UTS namespace is emulated (sentry/kernel/task.py UtsNamespace): the
caller's process gets its own copy of the names, which its children
inherit, so `unshare -u hostname x` changes the names it and they see
only.  It takes CAP_SYS_ADMIN, as on Linux.  The other namespaces are not
offered yet: EPERM, as for a process without the capability (undoing
sharing with CLONE_FILES or CLONE_FS would split a process's fd table or
cwd between its threads, which the Kernel keeps per process).
"""
import errno

from sentry.kernel.credentials import CAP_SYS_ADMIN
from sentry.errors import SyscallError
from syscalls.registry import handler

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_NEWCGROUP = 0x10000, 0x20000, 0x40000, 0x02000000
CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x04000000, 0x08000000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWTIME = 0x40000000, 0x80
UNSHARE_FLAGS = (CLONE_THREAD | CLONE_FS | CLONE_NEWNS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES
                 | CLONE_SYSVSEM | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUSER
                 | CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWTIME)


@handler("unshare", support="partial",
         note="CLONE_NEWUTS emulated (a UTS namespace of the process's own, CAP_SYS_ADMIN); "
              "the rest EPERM, as without the capability")
def sys_unshare(call):
    flags = call.args[0] & 0xFFFFFFFF          # an int: its low half, as the kernel reads it
    if flags & ~UNSHARE_FLAGS:
        raise SyscallError(errno.EINVAL)
    if flags & ~CLONE_NEWUTS:
        raise SyscallError(errno.EPERM)
    if flags & CLONE_NEWUTS:
        if not call.task.creds.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        call.process.uts = call.process.uts.unshared()
    return 0
