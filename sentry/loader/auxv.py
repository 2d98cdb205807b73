"""The auxiliary vector of a new image, at its exec stop.

The host kernel runs every guest program as sentry's uid with no set-id
change, so it passes AT_SECURE 0.  When the emulated credentials changed at
exec (a set-user-id program, see Credentials.exec), the Sentry sets it, before
the image's first instruction, so that its loader and libc run in secure mode
(no LD_PRELOAD, no LD_LIBRARY_PATH, ...) as they would on Linux.
"""
import struct

from sentry.errors import SyscallError
from sentry.platform import memory

AT_NULL, AT_SECURE = 0, 23
MAX_AUXV = 64                  # pairs; the kernel writes about 25


def mark_secure(tid, sp):
    """Set AT_SECURE to 1 in the auxv of the image whose initial stack
    pointer is sp (argc, argv..., NULL, envp..., NULL, auxv pairs).  None,
    or why it could not (the caller kills the task: fail closed)."""
    try:
        (argc,) = struct.unpack("<Q", memory.read(tid, sp, 8))
        envp = sp + 8 * (argc + 2)
        addr = envp + 8 * (len(memory.read_pointer_array(tid, envp)) + 1)
        for _ in range(MAX_AUXV):
            kind, _value = struct.unpack("<QQ", memory.read(tid, addr, 16))
            if kind == AT_SECURE:
                memory.write(tid, addr + 8, struct.pack("<Q", 1))
                return None
            if kind == AT_NULL:
                break
            addr += 16
        return "its auxiliary vector has no AT_SECURE"
    except SyscallError as e:
        return f"its initial stack cannot be read ({e})"
