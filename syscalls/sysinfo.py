"""sysinfo(2): the machine's figures as the Sentry's own call reads them,
with the memory --memory sets, the number of the sandbox's own tasks and
the uptime of the caller's time namespace (syscalls/timens.py).

The Sentry answers and writes the struct itself: the kernel never writes
the host's figures into the guest, where a racing thread could read them
before they are changed."""
import struct

from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.kernel import timens
from syscalls.registry import handler

SYSINFO_SIZE, SYSINFO_UPTIME, SYSINFO_RAM, SYSINFO_PROCS, SYSINFO_UNIT = 112, 0, 32, 80, 104


@handler("sysinfo", note="memory as --memory sets it; procs counts the sandbox's tasks; uptime is the "
                         "caller's time namespace's")
def sys_sysinfo(call):
    kernel = call.kernel
    buf = ffi.new("char[]", SYSINFO_SIZE)
    r = lib.sn_sysinfo(buf)
    if r < 0:
        raise SyscallError(-r)
    raw = bytearray(ffi.buffer(buf)[:])
    total, free = struct.unpack_from("<QQ", raw, SYSINFO_RAM)
    (unit,) = struct.unpack_from("<I", raw, SYSINFO_UNIT)
    struct.pack_into("<QQ", raw, SYSINFO_RAM, *kernel.limits.sysinfo(
        total, free, unit, kernel.resident_bytes() if kernel.limits.memory else 0))
    struct.pack_into("<H", raw, SYSINFO_PROCS, min(len(kernel.tasks), 0xFFFF))
    ns = call.process.timens
    if ns is not None and ns.offset(timens.CLOCK_BOOTTIME):
        # do_sysinfo: the namespace's boottime, a started second counted whole
        sec, nsec = divmod(ns.now(timens.CLOCK_BOOTTIME), timens.NSEC)
        struct.pack_into("<q", raw, SYSINFO_UPTIME, sec + (1 if nsec else 0))
    call.write(call.args[0], bytes(raw))
    return 0
