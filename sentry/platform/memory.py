"""Guest memory: copy in once, check the copy; copy out to guest or staging.

Every read is one `process_vm_readv` into Sentry memory; the Sentry never
re-reads guest memory after checking it.  Writes that the host kernel will read
on the guest's behalf go to the task's staging slot instead (staging.py).
"""
import errno
import struct

from sentry._native import ffi, lib
from sentry.errors import SyscallError

PATH_MAX = 4096
# No call the Sentry handles reads more than this of guest memory at once (the
# largest: an xattr value, 64 KiB): a guest's huge length is EFAULT here, never
# an allocation of that size in the Sentry.
READ_MAX = 1 << 24


def read(tid, addr, length):
    if length == 0:
        return b""
    if length > READ_MAX:
        raise SyscallError(errno.EFAULT)
    buf = ffi.new("char[]", length)
    n = lib.sn_read_mem(tid, addr, buf, length)
    if n != length:
        raise SyscallError(errno.EFAULT)
    return ffi.buffer(buf, length)[:]


def read_string(tid, addr, limit=PATH_MAX):
    """A C string of at most `limit` bytes including the NUL (ENAMETOOLONG past it)."""
    if addr == 0:
        raise SyscallError(errno.EFAULT)
    buf = ffi.new("char[]", limit)
    n = lib.sn_read_string(tid, addr, buf, limit)
    if n < 0:
        raise SyscallError(-n)
    return ffi.buffer(buf, n)[:]


def read_pointer_array(tid, addr, limit=1 << 17):
    """A NULL-terminated array of pointers (argv, envp), read a page at a time
    so that an array ending just before an unmapped page is still read."""
    out = []
    while addr:
        chunk = read(tid, addr, min(4096 - (addr & 4095), 512))
        for (p,) in struct.iter_unpack("<Q", chunk):
            if p == 0:
                return out
            out.append(p)
        if len(out) > limit:
            raise SyscallError(errno.E2BIG)
        addr += len(chunk)
    return out


def write(tid, addr, data):
    """Write to ordinary (writable) guest memory: a syscall's output buffer."""
    n = lib.sn_write_vm(tid, addr, data, len(data))
    if n != len(data):
        raise SyscallError(errno.EFAULT)
