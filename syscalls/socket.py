"""Socket calls that carry an address: bind, connect, sendto, sendmsg.

AF_UNIX paths are resolved in the sandbox and bound or connected by the
Sentry on a duplicate of the guest's socket (pidfd_getfd), from inside the
confined parent directory, so the kernel never looks a guest path up itself.
Abstract names are namespaced per sandbox.  Internet sockets pass through
to the host network until the network namespace exists (see README).
"""
import errno
import fcntl
import os
import socket
import struct

from syscalls.call import AT_FDCWD
from syscalls.errors import SyscallError
from syscalls.lookup import Parent, lookup
from syscalls.registry import PASS, Rewrite, handler

AF_UNIX = 1
SUN_PATH_MAX = 108


def read_sockaddr(call, addr, length):
    if length > 128 or length < 0:
        raise SyscallError(errno.EINVAL)
    if length < 2:
        return None, b""
    raw = call.read(addr, length)
    return struct.unpack("<H", raw[:2])[0], raw


def abstract_rewrite(call, raw):
    """\\0name -> \\0<sandbox prefix>name: the host's abstract sockets are out of reach."""
    name = call.kernel.abstract_prefix + raw[3:]
    if len(name) + 3 > 2 + SUN_PATH_MAX:
        raise SyscallError(errno.EINVAL)
    return raw[:2] + b"\0" + name


def _sun_path(raw):
    return raw[2:].split(b"\0", 1)[0]


def _on_guest_socket(call, fd, loc, op):
    """Run op(sock, name) on a Sentry-side duplicate of guest socket fd, from
    inside the confined parent directory of loc."""
    dup = call.kernel.borrow_fd(call.process, fd)
    sock = None
    try:
        sock = socket.socket(fileno=dup)
        with Parent(loc) as (pfd, name):
            os.fchdir(pfd)
            try:
                return op(sock, name)
            except OSError as e:
                raise SyscallError(e.errno)
            finally:
                os.chdir("/")
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        if sock is not None:
            sock.detach()
        os.close(dup)


def _unix_path_call(call, raw, bind):
    path = _sun_path(raw)
    if not path:
        raise SyscallError(errno.ENOENT)
    if bind:
        loc = lookup(call, AT_FDCWD, path, follow=False, must_exist=False)
        if loc.exists:
            raise SyscallError(errno.EADDRINUSE)
        loc.mount.check_writable()

        def op(sock, name):
            old = os.umask(call.umask())
            try:
                sock.bind(name)
            finally:
                os.umask(old)
    else:
        loc = lookup(call, AT_FDCWD, path)

        def op(sock, name):
            # never block the Sentry: a full backlog answers EAGAIN
            flags = fcntl.fcntl(sock.fileno(), fcntl.F_GETFL)
            fcntl.fcntl(sock.fileno(), fcntl.F_SETFL, flags | os.O_NONBLOCK)
            try:
                sock.connect(name)
            finally:
                fcntl.fcntl(sock.fileno(), fcntl.F_SETFL, flags)
    _on_guest_socket(call, call.fd(0), loc, op)
    return 0


def _bind_connect(call, bind):
    family, raw = read_sockaddr(call, call.args[1], call.args[2] & 0xFFFFFFFF)
    if family != AF_UNIX or len(raw) <= 2:
        return PASS
    if raw[2] == 0:
        new = abstract_rewrite(call, raw)
        (addr,) = call.stage(new)
        return Rewrite(args={1: addr, 2: len(new)})
    return _unix_path_call(call, raw, bind)


@handler("bind", stages=True)
def sys_bind(call):
    return _bind_connect(call, True)


@handler("connect", stages=True, note="AF_INET/AF_INET6 reach the host network until the network namespace exists")
def sys_connect(call):
    return _bind_connect(call, False)


@handler("sendto", stages=True, support="partial",
         note="a datagram to an AF_UNIX path is refused (EOPNOTSUPP); connect first")
def sys_sendto(call):
    family, raw = read_sockaddr(call, call.args[4], call.args[5] & 0xFFFFFFFF)
    if family != AF_UNIX or len(raw) <= 2:
        return PASS
    if raw[2] != 0:
        raise SyscallError(errno.EOPNOTSUPP)
    new = abstract_rewrite(call, raw)
    (addr,) = call.stage(new)
    return Rewrite(args={4: addr, 5: len(new)})


@handler("sendmsg", stages=True, support="partial",
         note="a datagram to an AF_UNIX path is refused (EOPNOTSUPP); connect first")
def sys_sendmsg(call):
    hdr = call.read(call.args[1], 56)
    name_ptr, namelen = struct.unpack("<QI", hdr[:12])
    if not name_ptr:
        return PASS
    family, raw = read_sockaddr(call, name_ptr, namelen)
    if family != AF_UNIX or len(raw) <= 2:
        return PASS
    if raw[2] != 0:
        raise SyscallError(errno.EOPNOTSUPP)
    new = abstract_rewrite(call, raw)
    # the header follows the name in the slot: its address is known in advance
    name_addr = call.slot()
    hdr_offset = (len(new) + 7) & ~7
    newhdr = struct.pack("<QI", name_addr, len(new)) + hdr[12:]
    _, hdr_addr = call.stage(new, newhdr)
    assert hdr_addr == name_addr + hdr_offset
    return Rewrite(args={1: hdr_addr})


@handler("sendmmsg", support="partial", note="only the connected form (no addresses) is offered")
def sys_sendmmsg(call):
    n = min(call.args[2] & 0xFFFFFFFF, 1024)
    for i in range(n):
        name_ptr = struct.unpack("<Q", call.read(call.args[1] + i * 64, 8))[0]
        if name_ptr:
            raise SyscallError(errno.EOPNOTSUPP)
    return PASS
