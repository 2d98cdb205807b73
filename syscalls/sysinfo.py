"""sysinfo(2): the host's answer, with the memory --memory sets and the
number of the sandbox's own tasks."""
import struct

from sentry.errors import SyscallError
from sentry.kernel.syscall import Rewrite
from syscalls.registry import handler

SYSINFO_RAM, SYSINFO_PROCS, SYSINFO_UNIT = 32, 80, 104


@handler("sysinfo", note="memory as --memory sets it; procs counts the sandbox's tasks")
def sys_sysinfo(call):
    info, kernel = call.args[0], call.kernel

    def done(task, result):
        if result == 0:
            try:
                raw = bytearray(call.read(info, 112))
                total, free = struct.unpack_from("<QQ", raw, SYSINFO_RAM)
                (unit,) = struct.unpack_from("<I", raw, SYSINFO_UNIT)
                struct.pack_into("<QQ", raw, SYSINFO_RAM, *kernel.limits.sysinfo(
                    total, free, unit, kernel.resident_bytes() if kernel.limits.memory else 0))
                struct.pack_into("<H", raw, SYSINFO_PROCS, min(len(kernel.tasks), 0xFFFF))
                call.write(info, bytes(raw))
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)
