"""Socket calls that carry an address: bind, connect, sendto, sendmsg.

AF_UNIX paths are resolved in the sandbox and bound or connected by the
Sentry on a duplicate of the guest's socket (pidfd_getfd), from inside the
confined parent directory, so the kernel never looks a guest path up itself.
A bind goes through the private mount namespace's helper when there is one:
from a scratch view in which the guest's own name leads to that directory,
so the kernel records that name and reports it (getsockname, accept…).
Abstract names are namespaced per sandbox.  Internet sockets live in the
sandbox's network namespace (but --network=host); a connect to the outside
is sentry/net/connect.py's.
"""
import errno
import os
import stat
import struct

from sentry.kernel import fdtraps
from sentry.net import hostsock
from sentry.vfs import sockperm
from sentry.vfs.mount import CREATE
from sentry.kernel.syscall import AT_FDCWD, PASS, Handover, Rewrite, sint
from syscalls import owner, permission, pin, slots
from syscalls.fdutil import is_hidden
from sentry.errors import SyscallError
from syscalls.lookup import Parent, lookup
from syscalls.registry import handler

AF_UNIX = 1
SUN_PATH_MAX = 108


def read_sockaddr(call, addr, length):
    if length > 128 or length < 0:
        raise SyscallError(errno.EINVAL)
    if length == 0:
        return None, b""
    raw = call.read(addr, length)
    if length < 2:
        # names no family: the protocol's own refusal (EINVAL) is the kernel's
        return None, raw
    family = struct.unpack("<H", raw[:2])[0]
    if family == AF_UNIX and length > 2 + SUN_PATH_MAX:
        raise SyscallError(errno.EINVAL)          # as unix_mkname does
    return family, raw


def abstract_rewrite(call, raw):
    """\\0name -> \\0<sandbox prefix>name: the host's abstract sockets are out of reach."""
    name = call.kernel.abstract_prefix + raw[3:]
    if len(name) + 3 > 2 + SUN_PATH_MAX:
        raise SyscallError(errno.EINVAL)
    return raw[:2] + b"\0" + name


def _sun_path(raw):
    return raw[2:].split(b"\0", 1)[0]


def _with_guest_socket(call, fd, op):
    """op(sock) on a Sentry-side duplicate of guest socket fd (OSError as
    SyscallError; ENOTSOCK for another file)."""
    import socket      # rarely needed: not at start-up
    # fd: the guest's number, or a hidden slot the Sentry prepared (syscalls/slots.py)
    dup = call.kernel.borrow_fd(call.process, fd, hidden_ok=fd != call.fd(0))
    sock = None
    try:
        sock = socket.socket(fileno=dup)
        return op(sock)
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        if sock is not None:
            sock.detach()
        os.close(dup)


def _on_guest_socket(call, fd, loc, op):
    """Run op(sock, parent fd, name) on a Sentry-side duplicate of guest
    socket fd, from inside the confined parent directory of loc."""
    def in_parent(sock):
        with Parent(loc) as (pfd, name):
            os.fchdir(pfd)
            try:
                return op(sock, pfd, name)
            finally:
                os.chdir("/")
    return _with_guest_socket(call, fd, in_parent)


def _unix_path_call(call, fd, raw, bind):
    path = _sun_path(raw)
    if not path:
        raise SyscallError(errno.ENOENT)
    if not bind:
        return _connect_unix(call, raw)
    loc = lookup(call, AT_FDCWD, path, follow=False, must_exist=False)
    if loc.exists:
        raise SyscallError(errno.EADDRINUSE)
    loc = permission.change(call, loc, CREATE)
    ids, since = owner.creator(call), owner.now()

    def op(sock, pfd, name):
        bind(sock, pfd, name)
        # a guest not of sentry's uid: its own clients must pass the host's
        # check too (vfs/sockperm.py), on the very socket adopted
        owner.adopt_name(call, ids, pfd, name, stat.S_IFSOCK, since,
                         then=lambda fd, st: sockperm.grant(f"/proc/self/fd/{fd}", st.st_mode))

    def bind(sock, pfd, name):
        mountns = call.kernel.mountns
        if mountns is not None:
            try:
                # the kernel records the guest's own name: getsockname,
                # getpeername, accept and recvfrom report it as on Linux
                return mountns.bind_unix(sock.fileno(), pfd, path, call.umask())
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:
                    raise
        old = os.umask(call.umask())
        try:
            sock.bind(name)        # recorded as its last component only
        finally:
            os.umask(old)
    _on_guest_socket(call, fd, loc, op)
    return 0


SYS_SENDMSG = 46


def _via_magic_link(call, raw, check_write=True):
    """A call that names a unix socket by path (connect, sendto, sendmsg)
    runs in the guest's own context, so that the kernel sees the guest
    (SO_PEERCRED, SCM_CREDENTIALS, a blocking connect that waits), yet never
    looks a guest path up: it names the socket file by a magic link no
    guest thread can retarget (syscalls/pin.py).  Returns that sockaddr; the
    call's on_exit must be _unpinning(…)."""
    loc = lookup(call, AT_FDCWD, _sun_path(raw))
    if check_write:
        # write permission on the socket file, as unix_find_bsd asks it first
        permission.check(call, loc, permission.W)
    if not loc.mount.host_sockets:
        call.kernel.audit.event("connect-refused", call.task, call=call, path=loc.spath, errno=errno.ECONNREFUSED)
        raise SyscallError(errno.ECONNREFUSED)     # a host daemon's: no one listens, as far as the guest knows
    return raw[:2] + pin.pinned(call, loc) + b"\0"


def _unpinning(kernel, then=None):
    """An on_exit callback: the pin is released, then the call returns
    (then(task, result)'s answer, if given).  A call the kernel restarts
    traps again with its own arguments, and pins again."""
    def done(t, result):
        pin.release(kernel, t)
        if then is not None:
            return then(t, result)
        return None
    return done


def _connect_unix(call, raw):
    name = _via_magic_link(call, raw)
    (addr,) = call.stage(name)
    return Rewrite(args={1: addr, 2: len(name)}, on_exit=_unpinning(call.kernel))


SO_DOMAIN, SO_TYPE, SOCK_DGRAM = 39, 3, 2


def _socket_domain(call, fd):
    """The family of the guest's socket fd (ENOTSOCK for another file)."""
    return _with_guest_socket(call, fd, lambda sock: sock.getsockopt(SOL_SOCKET, SO_DOMAIN))


def _wrong_family(domain, length):
    """What Linux answers a bind or connect of a unix path on a socket of
    another family: its own length check first, then the family's."""
    if domain in (AF_INET, AF_INET6):
        return errno.EINVAL if length < (16 if domain == AF_INET else 24) else errno.EAFNOSUPPORT
    return errno.EINVAL


def _bind_connect(call, bind):
    """bind and connect, which change a socket's state: decided on the
    Sentry's copy of the socket, and run by the kernel through a number no
    other thread can change (syscalls/slots.py: an outbound host socket
    that a racing thread put at the guest's number must never meet the
    kernel's connect or bind, net/connect.py).  On an outbound socket they
    are answered without the kernel, so without a slot either."""
    return slots.through(call, lambda call, fd: _bind_connect_on(call, fd, bind),
                         lambda call: _without_slot(call, bind))


def _without_slot(call, bind):
    """bind/connect answered on the Sentry's copy of the socket alone, so
    that a process sharing its fd table needs no slot: on an outbound host
    socket, and a connect to the outside of an unconnected TCP socket of
    the sandbox (the kernel never connects the guest's socket then:
    net/connect.py outbound); None where the kernel must act."""
    out = _on_host_socket(call, call.fd(0), bind)
    if out is not None or bind:
        return out
    from sentry.net import connect as _net
    family, raw = read_sockaddr(call, call.args[1], call.args[2] & 0xFFFFFFFF)
    dest = _net.destination(family, raw) if family in (_net.AF_INET, _net.AF_INET6) else None
    if dest is None or _net.inside(call.kernel, dest[0]):
        return None
    return _net.outbound(call, call.fd(0), family, raw, dest, lambda: None)


def _maybe_outbound(call, fd):
    """Whether fd may name an outbound host socket.  A hidden slot: its copy
    is checked (borrowed anyway).  The guest's own number, in a process
    whose fd table is its alone: what it names cannot change meanwhile, so
    its inode (one readlink, not a copy of the fd) tells, among those the
    Sentry ever handed over."""
    if fd != call.fd(0):
        return True
    try:
        link = os.readlink(f"/proc/{call.tid}/fd/{fd}")
    except OSError:
        return False                          # no such fd: the kernel's EBADF
    return not link.startswith("socket:[") or int(link[8:-1]) in call.kernel.outbound_names.handed


def _on_host_socket(call, fd, bind):
    """bind/connect's answer when fd names an outbound host socket (on the
    Sentry's copy, never the kernel's call); None for any other file."""
    from sentry.net import connect as _net
    family, _ = read_sockaddr(call, call.args[1], call.args[2] & 0xFFFFFFFF)
    dup = _net.borrow(call, fd)
    try:
        if not _net.host_inet(call, dup):
            return None
        # connecting or connected: bound already (EINVAL, as Linux says); its
        # connect is answered from its state
        if bind or family is None:
            raise SyscallError(errno.EINVAL)
        if family == _net.AF_UNSPEC:
            raise SyscallError(errno.EOPNOTSUPP)
        return _net.host_connect(call, fd, dup)
    finally:
        os.close(dup)


def _bind_connect_on(call, fd, bind):
    addr, length = call.args[1], call.args[2] & 0xFFFFFFFF
    family, raw = read_sockaddr(call, addr, length)
    kernel = call.kernel
    if kernel.outbound is not None and _maybe_outbound(call, fd):
        out = _on_host_socket(call, fd, bind)
        if out is not None:
            return out
    if family == AF_UNIX and len(raw) > 2 and raw[2] != 0:
        # never looked up for a socket that cannot take it (an fd swapped
        # meanwhile only gets the kernel's own refusal: the path is not passed)
        domain = _socket_domain(call, fd)
        if domain != AF_UNIX:
            raise SyscallError(_wrong_family(domain, length))
        return _unix_path_call(call, fd, raw, bind)
    if bind and family in (AF_INET, AF_INET6):
        _check_low_port(call, fd, family, raw)
    if not bind and kernel.mountns is not None and kernel.mountns.netns_fd is not None:
        from sentry.net import connect as _net
        if family == _net.AF_UNSPEC and raw:
            return _net.disconnect(call, fd, raw)
        dest = _net.destination(family, raw) if family in (_net.AF_INET, _net.AF_INET6) else None
        if dest is not None and kernel.outbound is not None and not _net.inside(kernel, dest[0]):
            return _net.outbound(call, fd, family, raw, dest, lambda: Rewrite(args=_staged_name(call, raw, 1, 2)))
    return Rewrite(args=_staged_name(call, raw, 1, 2))


CAP_NET_BIND_SERVICE = 10


def _check_low_port(call, fd, family, raw):
    """A bind to a port below the sandbox's network namespace's
    ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE, as on Linux: the
    guest's emulated one.  The kernel there lets anyone bind any port (the
    guest holds no host capability: vfs/mountns.py _open_low_ports), so this
    is the check.  Decided on the copy the kernel is given (staged), after
    the kernel's own length and family checks would have passed; EACCES as
    inet_bind answers."""
    kernel = call.kernel
    ns = kernel.netns.own if kernel.netns is not None else None
    if ns is not None and kernel.netns.guest_made():
        # the socket's own namespace decides: its threshold, its owner's capability
        ns = _with_guest_socket(call, fd, lambda sock: hostsock.namespace_of(kernel, sock.fileno()))
        if ns is None:
            return                         # not a socket of the sandbox's: the kernel's answer
    start = ns.port_start if ns is not None else (kernel.mountns.port_start if kernel.mountns else None)
    if not start or len(raw) < (16 if family == AF_INET else 24):
        return
    port = struct.unpack(">H", raw[2:4])[0]
    creds = call.task.creds
    if not 0 < port < start or (ns.capable(creds, CAP_NET_BIND_SERVICE) if ns is not None
                                else creds.capable(CAP_NET_BIND_SERVICE)):
        return
    if _socket_domain(call, fd) == family:
        raise SyscallError(errno.EACCES)


def _staged_name(call, raw, addr_i, len_i):
    """The kernel reads the address again after the check: give it the
    checked copy, in the staging slot (abstract names namespaced)."""
    if not raw:
        return {}
    if raw[:2] == b"\x01\x00" and len(raw) > 2 and raw[2] == 0:
        raw = abstract_rewrite(call, raw)
    (addr,) = call.stage(raw)
    return {addr_i: addr, len_i: len(raw)}


@handler("bind", note="a unix path is bound by the Sentry, under the guest's own name (vfs/mountns.py)")
def sys_bind(call):
    return _bind_connect(call, True)


@handler("connect", note="--network=sandbox: AF_INET/AF_INET6 outside the sandbox are connected by the "
         "Sentry on the host under --net-allow (sentry/net/connect.py); AF_UNSPEC is done by the Sentry; "
         "the sandbox's own addresses are answered in C (native/fastnet.c)")
def sys_connect(call):
    return _bind_connect(call, False)


def _dest(call, ptr, length):
    """(family, sockaddr bytes) of a send's destination, read once; (None,
    b"") for none (a NULL address: the kernel ignores its length)."""
    return read_sockaddr(call, ptr, length) if ptr else (None, b"")


def _send_name(call, family, raw, fd):
    """(the destination to give the kernel, whether it pinned a file): a unix
    path goes through _via_magic_link; a datagram to the outside is refused
    (sentry/net/connect.py).  fd: the number the kernel names the socket by."""
    if family in (AF_INET, AF_INET6):
        from sentry.net import connect as _net
        _net.datagram_out(call, family, raw, fd)
    if family == AF_UNIX and len(raw) > 2 and raw[2] != 0:
        # a connection's socket ignores the name (EISCONN, EOPNOTSUPP): only
        # a datagram looks it up and needs write permission on it
        kind = _with_guest_socket(call, fd, lambda sock: sock.getsockopt(SOL_SOCKET, SO_TYPE))
        return _via_magic_link(call, raw, check_write=kind == SOCK_DGRAM), True
    if family == AF_UNIX and len(raw) > 2:
        raw = abstract_rewrite(call, raw)
    return raw, False


def _fastopen(call, flags, fd):
    """MSG_FASTOPEN connects as it sends (sentry/net/connect.py); fd: the
    number the kernel names the socket by."""
    if _connects(call, flags):
        from sentry.net import connect as _net
        _net.fastopen(call, fd)


def _connects(call, flags):
    """A send that connects as it sends, where a socket could turn harmful
    by it (--network=sandbox): run through slots.through, as connect is."""
    return bool(flags & MSG_FASTOPEN) and call.kernel.outbound is not None


MSG_FASTOPEN = 0x20000000


@handler("shutdown", note="--network=sandbox: done by the Sentry on its copy of the socket, never by fd number "
         "(an outbound socket still connecting is shut down once connected: sentry/net/connect.py)")
def sys_shutdown(call):
    if call.kernel.outbound is None:
        return PASS                  # no outbound socket anywhere: nothing it could turn
    if call.process.alone() and not _maybe_outbound(call, call.fd(0)):
        return PASS                  # and none at that number, which nothing can change meanwhile
    from sentry.net import connect as _net
    return _net.shutdown(call)


def _send_rewrite(call, args, pinned, then=None, nr=None):
    return Rewrite(nr, args, on_exit=_unpinning(call.kernel, then) if pinned else then)


@handler("sendto", note="a datagram to a unix path is sent as connect(2) is (_via_magic_link); a guest "
         "root's link change on its own interfaces is carried out (sentry/net/links.py)")
def sys_sendto(call):
    if _connects(call, call.args[3]):
        return slots.through(call, _sendto_on)
    return _sendto_on(call, call.fd(0))


def _sendto_on(call, fd):
    """sendto with the kernel naming the socket by fd (the guest's number,
    or a hidden slot holding the Sentry's copy: syscalls/slots.py)."""
    _fastopen(call, call.args[3], fd)
    dest = _dest(call, call.args[4], call.args[5] & 0xFFFFFFFF)
    done = _link_change(call, dest, [(call.args[1], call.args[2])], call.args[3] & 0xFFFFFFFF, fd)
    if done is not None:
        return done
    raw, via = _send_name(call, *dest, fd)
    if not raw:
        if call.args[4]:
            # a name of length 0 is still a name (udp: EINVAL): a pointer to
            # nothing, read from the staging slot (the kernel copies 0 bytes)
            (addr,) = call.stage(b"\0")
            return Rewrite(args={4: addr, 5: 0})
        return Rewrite(args={4: 0, 5: 0})
    (addr,) = call.stage(raw)
    return _send_rewrite(call, {4: addr, 5: len(raw)}, via)


MSGHDR = 56


SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
CONTROL_MAX = 4096


def _check_control(call, control):
    """SCM_RIGHTS may not pass the Sentry's own fds; SCM_CREDENTIALS names
    the sender by virtual pid and emulated ids, which the host is given as
    its own (it checks them against the sending process).  Returns the
    control data to stage."""
    out = bytearray(control)
    off = 0
    while off + 16 <= len(control):
        length, level, kind = struct.unpack_from("<Qii", control, off)
        if length < 16 or off + length > len(control):
            break
        if level == SOL_SOCKET and kind == SCM_RIGHTS:
            n = (length - 16) // 4
            if any(is_hidden(fd) for fd in struct.unpack_from(f"<{n}i", control, off + 16)):
                raise SyscallError(errno.EBADF)
        elif level == SOL_SOCKET and kind == SCM_CREDENTIALS and length >= 16 + 12:
            struct.pack_into("<iII", out, off + 16, *_host_ucred(call, *struct.unpack_from(
                "<iII", control, off + 16)))
        off += (length + 7) & ~7
    return bytes(out)


def _host_ucred(call, pid, uid, gid):
    """Linux lets a process send only its own pid and one of its own ids
    unless it holds CAP_SYS_ADMIN / CAP_SETUID / CAP_SETGID."""
    from sentry.kernel import userns
    from sentry.kernel.credentials import CAP_SETGID, CAP_SETUID
    c = call.task.creds
    # ids in the sender's user namespace's terms (EINVAL for one it does not map)
    uid, gid = userns.kernel_id(c, "u", uid), userns.kernel_id(c, "g", gid)
    if pid != call.kernel.vpid_of(call.process):
        raise SyscallError(errno.EPERM)
    if uid not in (c.ruid, c.euid, c.suid) and not c.capable(CAP_SETUID):
        raise SyscallError(errno.EPERM)
    if gid not in (c.rgid, c.egid, c.sgid) and not c.capable(CAP_SETGID):
        raise SyscallError(errno.EPERM)
    return call.process.tgid, os.getuid(), os.getgid()


IOVEC = struct.Struct("<QQ")
IOV_MAX_CHECKED = 64


def _link_change(call, dest, iov, flags, fd):
    """A send that may be a guest root's `ip link set` on the sandbox's own
    interfaces (sentry/net/links.py): its result, or None for the usual
    way.  dest: _dest's; only a send that names the kernel (AF_NETLINK) is
    looked at, so that no other send pays a read.  iov: [(address,
    length)] of the data; fd: the number the kernel names the socket by."""
    if dest[0] != AF_NETLINK:
        return None
    from sentry.net import diag, links
    total = sum(n for _, n in iov)
    want = diag.REQUEST_MAX if call.kernel.outbound is not None else links.HDR.size
    try:
        head = _gather(call, iov, want)
        if call.kernel.outbound is not None:
            longer = diag.request_length(head)
            if longer > want:
                head = _gather(call, iov, longer)
            _diag_request(call, head, fd)
        if not links.maybe(call.kernel, head[:links.HDR.size], total):
            return None
        data = b"".join(call.read(a, n) for a, n in iov if n)
    except SyscallError:
        return None                       # the kernel's own answer (EFAULT...)
    return links.send(call, fd, dest[1], data, flags)


def _gather(call, iov, want):
    """The first `want` bytes of a send's data (iov: [(address, length)])."""
    head = b""
    for a, n in iov:
        if len(head) >= want:
            break
        head += call.read(a, min(n, want - len(head)))
    return head


def _diag_request(call, head, fd):
    """A send naming the kernel on a sock_diag socket: its TCP dump request
    noted (sentry/net/diag.py), by the socket's inode."""
    import socket
    from sentry.net import diag
    try:
        dup = call.kernel.borrow_fd(call.process, fd, hidden_ok=fd != call.fd(0))
    except SyscallError:
        return
    try:
        with socket.socket(fileno=os.dup(dup)) as sock:
            if sock.family == AF_NETLINK and sock.proto == NETLINK_SOCK_DIAG:
                diag.note_request(call.kernel, os.fstat(dup).st_ino, head)
    except OSError:
        pass
    finally:
        os.close(dup)


def _link_change_msg(call, hdr, dest, flags, fd):
    """_link_change for a sendmsg header (bytes): one without control data."""
    iov, iovlen, _, controllen = struct.unpack("<QQQQ", hdr[16:48])
    if dest[0] != AF_NETLINK or controllen or not 0 < iovlen <= IOV_MAX_CHECKED:
        return None
    try:
        vec = [IOVEC.unpack_from(call.read(iov, iovlen * IOVEC.size), i * IOVEC.size) for i in range(iovlen)]
    except SyscallError:
        return None
    return _link_change(call, dest, vec, flags, fd)


def _msg_dest(call, hdr):
    name_ptr, namelen = struct.unpack("<QI", hdr[:12])
    return _dest(call, name_ptr, namelen)


def _staged_msghdr(call, hdr, dest, fd):
    """A checked copy of a msghdr (hdr: its bytes; dest: its destination,
    _dest's), of its name and of its control data in the staging slot (the
    kernel never writes back into a sendmsg header), and whether its name
    pinned a file (a unix path's).  fd: the number the kernel names the
    socket by."""
    iov, iovlen, control_ptr, controllen, flags = struct.unpack("<QQQQI", hdr[16:52])
    raw, via = _send_name(call, *dest, fd) if dest[1] else (b"", False)
    control = b""
    if control_ptr and controllen:
        if controllen > CONTROL_MAX:
            raise SyscallError(errno.ENOBUFS)
        control = _check_control(call, call.read(control_ptr, controllen))
    slot = call.slot()
    name_addr = slot + MSGHDR if raw else 0
    control_addr = slot + MSGHDR + ((len(raw) + 7) & ~7) if control else 0
    new = struct.pack("<QI", name_addr, len(raw)) + hdr[12:16] + struct.pack(
        "<QQQQI", iov, iovlen, control_addr, len(control), flags) + hdr[52:]
    addrs = call.stage(new, raw, control) if raw else call.stage(new, control)
    assert addrs[-1] == (control_addr or addrs[-1])
    return addrs[0], via


@handler("sendmsg", note="a datagram to a unix path is sent as connect(2) is (_via_magic_link); a guest "
         "root's link change on its own interfaces is carried out (sentry/net/links.py)")
def sys_sendmsg(call):
    if _connects(call, call.args[2]):
        return slots.through(call, _sendmsg_on)
    return _sendmsg_on(call, call.fd(0))


def _sendmsg_on(call, fd):
    """sendmsg with the kernel naming the socket by fd (as _sendto_on)."""
    _fastopen(call, call.args[2], fd)
    raw = call.read(call.args[1], MSGHDR)
    dest = _msg_dest(call, raw)
    done = _link_change_msg(call, raw, dest, call.args[2] & 0xFFFFFFFF, fd)
    if done is not None:
        return done
    hdr, via = _staged_msghdr(call, raw, dest, fd)
    return _send_rewrite(call, {1: hdr}, via)


UIO_MAXIOV = 1024


@handler("sendmmsg", note="each message is a sendmsg(2) of its own, checked as one: the call runs "
         "again for the next until all are sent or one fails (the count sent so far, as Linux)")
def sys_sendmmsg(call):
    if call.args[2] & 0xFFFFFFFF == 0:
        return 0
    if _connects(call, call.args[3]):
        # through a slot (a threaded process) the first message only: the one
        # that connects; on TCP, Linux's next one is EISCONN and the count 1 too
        return slots.through(call, _sendmmsg_on)
    return _sendmmsg_on(call, call.fd(0))


def _sendmmsg_on(call, fd):
    """sendmmsg with the kernel naming the socket by fd (as _sendto_on)."""
    vlen = min(call.args[2] & 0xFFFFFFFF, UIO_MAXIOV)
    vec, flags, task = call.args[1], call.args[3] & 0xFFFFFFFF, call.task
    _fastopen(call, flags, fd)
    key = (call.fd(0), vec, vlen, flags)
    progress, task.mmsg_progress = getattr(task, "mmsg_progress", None), None
    i = progress[1] if progress is not None and progress[0] == key else 0
    entry = vec + i * MMSGHDR
    try:
        raw = call.read(entry, MSGHDR)
    except SyscallError:
        if i:
            return i                      # those sent count, as Linux's
        raise
    dest = _msg_dest(call, raw)
    if i == 0:
        done = _link_change_msg(call, raw, dest, flags, fd)
        if done is not None:
            call.write(vec + MSGHDR, struct.pack("<I", done))
            return 1
    hdr, via = _staged_msghdr(call, raw, dest, fd)

    def record(t, result):
        # msg_len of the message sent; then the next, or the count
        if result < 0:
            return i if i else None
        call.write(entry + MSGHDR, struct.pack("<I", result))
        if i + 1 < vlen and fd == call.fd(0):
            t.mmsg_progress = (key, i + 1)
            call.kernel.rerun(t)
            return None
        return i + 1
    return _send_rewrite(call, {1: hdr, 2: flags}, via, record, nr=SYS_SENDMSG)


SOL_SOCKET, SO_PEERCRED, SO_PEERPIDFD = 1, 17, 77
OVERFLOW_ID = 65534


@handler("getsockname", note="allowed in BPF; trapped in a process holding an outbound socket "
         "(sentry/net/hostsock.py), answered on the socket the Sentry borrowed: the sandbox's name")
def sys_getsockname(call):
    if call.kernel.outbound_names is None:
        return PASS
    return hostsock.getsockname(call)


@handler("getsockopt", support="partial",
         note="SO_PEERCRED names the peer by virtual pid (0 when the Sentry connected for it); "
              "SO_PEERPIDFD is refused (ENOPROTOOPT); SO_NETNS_COOKIE is the sandbox's; IP_PKTOPTIONS of "
              "an outbound socket names the sandbox's address (sentry/net/hostsock.py)")
def sys_getsockopt(call):
    level, name, optval = sint(call.args[1]), sint(call.args[2]), call.args[3]
    if level == SOL_SOCKET and name == hostsock.SO_NETNS_COOKIE and call.kernel.netns_cookie is not None:
        return hostsock.netns_cookie(call)
    if (level, name) in hostsock.PKTOPTIONS and call.kernel.outbound_names is not None:
        return hostsock.pktoptions(call, level)
    if level != SOL_SOCKET or name not in (SO_PEERCRED, SO_PEERPIDFD):
        return PASS
    if name == SO_PEERPIDFD:
        # a pidfd could name the Sentry, which made the connection
        raise SyscallError(errno.ENOPROTOOPT)
    kernel = call.kernel

    def done(task, result):
        if result == 0 and optval:
            try:
                pid, _, _ = struct.unpack("<iII", call.read(optval, 12))
                creds, me = kernel.creds_of(pid), task.creds
                ucred = struct.pack("<iII", kernel.vpid(pid),
                                    me.view("u", creds.euid) if creds else OVERFLOW_ID,
                                    me.view("g", creds.egid) if creds else OVERFLOW_ID)
                call.write(optval, ucred)
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)


# ---- SO_PASSCRED: received credentials name the sender in sandbox terms ---

SO_PASSCRED = 16
CMSG_HEADER = 16


def _trap_passcred_fd(call):
    """An on_exit callback: the fd the call returns (or names) gets traps."""
    call.slot()                          # the exit stop will stage a filter
    kernel, fd = call.kernel, call.fd(0)

    def done(task, result):
        if result >= 0:
            # an accepted socket inherits SO_PASSCRED: it is trapped too
            accepted = call.nr in (fdtraps.SYS_ACCEPT, fdtraps.SYS_ACCEPT4)
            fdtraps.trap_after(kernel, task, result if accepted else fd, fdtraps.PASSCRED_TRAPS, result)
    return done


@handler("setsockopt", support="partial",
         note="SO_PASSCRED makes the socket's recvmsg trap (kernel/fdtraps.py): its SCM_CREDENTIALS are virtual; "
              "SO_BINDTODEVICE of an outbound socket and SO_BINDTOIFINDEX know the sandbox's interfaces only")
def sys_setsockopt(call):
    level, name = sint(call.args[1]), sint(call.args[2])
    if level == SOL_SOCKET and name in hostsock.BIND_TO_DEVICE and call.kernel.outbound_names is not None:
        return hostsock.bind_to_device(call, name == hostsock.SO_BINDTOIFINDEX)
    if level != SOL_SOCKET or name != SO_PASSCRED:
        return PASS
    return Rewrite(on_exit=_trap_passcred_fd(call))


@handler("accept", "accept4", note="allowed in BPF; trapped only on SO_PASSCRED sockets, whose "
         "accepted sockets get the same traps")
def sys_accept(call):
    return Rewrite(on_exit=_trap_passcred_fd(call))


def _translate_creds(call, control_ptr, controllen):
    """Rewrite the SCM_CREDENTIALS the kernel wrote into a received control buffer."""
    kernel = call.kernel
    control = bytearray(call.read(control_ptr, controllen))
    off, changed = 0, False
    while off + CMSG_HEADER <= len(control):
        length, level, kind = struct.unpack_from("<Qii", control, off)
        if length < CMSG_HEADER or off + length > len(control):
            break
        if level == SOL_SOCKET and kind == SCM_CREDENTIALS and length >= CMSG_HEADER + 12:
            pid = struct.unpack_from("<i", control, off + CMSG_HEADER)[0]
            creds, me = kernel.creds_of(pid), call.task.creds
            struct.pack_into("<iII", control, off + CMSG_HEADER, kernel.vpid(pid),
                             me.view("u", creds.euid) if creds else OVERFLOW_ID,
                             me.view("g", creds.egid) if creds else OVERFLOW_ID)
            changed = True
        off += (length + 7) & ~7
    if changed:
        call.write(control_ptr, bytes(control))


def _received(call, hdr_addr):
    hdr = call.read(hdr_addr, MSGHDR)
    control_ptr, controllen = struct.unpack_from("<QQ", hdr, 32)
    if control_ptr and controllen:
        _translate_creds(call, control_ptr, min(controllen, CONTROL_MAX))


@handler("recvmsg", note="allowed in BPF; trapped only on SO_PASSCRED sockets (credentials translated) and, "
         "with --network=sandbox, sock_diag sockets (outbound sockets added to TCP dumps: sentry/net/diag.py)")
def sys_recvmsg(call):
    hdr_addr, flags = call.args[1], call.args[2] & 0xFFFFFFFF
    diag_ino = _diag_socket(call)

    def done(task, result):
        if result > 0 and diag_ino is not None:
            try:
                return _diag_received(call, diag_ino, hdr_addr, flags, result)
            except (SyscallError, OSError):
                return result
        if result >= 0:
            try:
                _received(call, hdr_addr)
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)


MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT = 2, 0x20, 0x40


def _diag_socket(call):
    """The inode of the sock_diag socket a trapped recvmsg reads, where
    dumps may need outbound sockets added; None for any other."""
    import socket
    if call.kernel.outbound is None:
        return None
    try:
        dup = call.kernel.borrow_fd(call.process, call.fd(0))
    except SyscallError:
        return None
    try:
        with socket.socket(fileno=os.dup(dup)) as sock:
            if sock.family == AF_NETLINK and sock.proto == NETLINK_SOCK_DIAG:
                return os.fstat(dup).st_ino
    except OSError:
        pass
    finally:
        os.close(dup)
    return None


def _diag_received(call, diag_ino, hdr_addr, flags, result):
    """A sock_diag datagram received: if it ends a TCP dump, the outbound
    sockets go before its end (sentry/net/diag.py).  The datagram is the
    kernel's, read back from the guest's buffer, or (a peek of its length
    alone) peeked again on the Sentry's copy of the socket."""
    import socket
    from sentry.net import diag
    ino = diag_ino
    dup = call.kernel.borrow_fd(call.process, call.fd(0))
    try:
        if os.fstat(dup).st_ino != ino:
            return result                      # another socket by now: as the kernel gave it
        iov, iovlen = struct.unpack("<QQ", call.read(hdr_addr + 16, 16))
        base, room = (IOVEC.unpack(call.read(iov, IOVEC.size)) if iovlen else (0, 0))
        if flags & MSG_PEEK:
            if not flags & MSG_TRUNC:
                return result
            with socket.socket(fileno=os.dup(dup)) as sock:
                datagram = sock.recv(result, MSG_PEEK | MSG_DONTWAIT)
            add = diag.extra(call.kernel, ino, datagram)
            return result + len(add[1]) if add else result
        if iovlen != 1 or result > room:
            return result
        datagram = call.read(base, result)
        add = diag.extra(call.kernel, ino, datagram)
        if add is None:
            return result
        at, more = add
        if result + len(more) > room:
            return result                      # no room: the dump as the kernel gave it
        call.write(base + at, more + datagram[at:])
        diag.done(call.kernel, ino)
        return result + len(more)
    finally:
        os.close(dup)


MMSGHDR = MSGHDR + 8


@handler("recvmmsg", note="allowed in BPF; trapped only on SO_PASSCRED sockets (credentials translated)")
def sys_recvmmsg(call):
    vec = call.args[1]

    def done(task, result):
        for i in range(max(result, 0)):
            try:
                _received(call, vec + i * MMSGHDR)
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)


# ---- socket families ---------------------------------------------------------

AF_INET, AF_INET6, AF_NETLINK, AF_KEY, AF_PACKET, AF_MAX = 2, 10, 16, 15, 17, 46
SOCK_RAW, SOCK_PACKET, SOCK_MAX, SOCK_TYPE_MASK = 3, 10, 11, 0xF
SOCK_CLOEXEC = 0o2000000
SOCK_FLAGS = SOCK_CLOEXEC | 0o4000               # and SOCK_NONBLOCK
IPPROTO_MAX = 263
NETLINK_ROUTE, NETLINK_SOCK_DIAG = 0, 4


def family_errno(family, kind, proto):
    """None for a socket sentry offers, else the errno Linux gives a process
    without capabilities (raw and packet sockets, AF_KEY: EPERM), or a kernel
    without the family (EAFNOSUPPORT) or netlink protocol (EPROTONOSUPPORT).
    The arguments' own errors first, in the kernel's order (__sys_socket,
    __sock_create, inet_create), as they come before any capability check."""
    if kind & ~SOCK_TYPE_MASK & ~SOCK_FLAGS:
        return errno.EINVAL
    kind &= SOCK_TYPE_MASK
    if not 0 <= family < AF_MAX:
        return errno.EAFNOSUPPORT
    if kind >= SOCK_MAX:
        return errno.EINVAL
    if family == AF_UNIX:
        return None
    if family == AF_INET and kind == SOCK_PACKET:
        return errno.EPERM                       # made an AF_PACKET socket, as Linux does
    if family in (AF_INET, AF_INET6):
        if kind != SOCK_RAW:
            return None if kind != SOCK_PACKET else errno.ESOCKTNOSUPPORT
        if not 0 <= proto < IPPROTO_MAX:
            return errno.EINVAL
        # raw's protocol is a wildcard that 0 does not match
        return errno.EPERM if proto else errno.EPROTONOSUPPORT
    if family == AF_NETLINK:
        return None if proto in (NETLINK_ROUTE, NETLINK_SOCK_DIAG) else errno.EPROTONOSUPPORT
    if family in (AF_PACKET, AF_KEY):
        return errno.EPERM
    return errno.EAFNOSUPPORT         # AF_VSOCK, AF_ALG, and every family not named


SYS_SOCKET, SYS_SOCKETPAIR = 41, 53
NETNS_SOCKETS = "network namespace sockets"


def ensure_netns_traps(call):
    """Before a process (or its child) leaves the sandbox's network
    namespace for one a guest made (kernel/netns.py): its socket(2) and
    socketpair(2) trap from then on, so that the namespace helper makes each
    socket there."""
    fdtraps.ensure_process_filter(call, NETNS_SOCKETS, {SYS_SOCKET: None, SYS_SOCKETPAIR: None})


@handler("socket", note="unix, internet (not raw) and netlink route/sock_diag sockets; raw, packet and "
         "AF_KEY are EPERM, other netlink protocols EPROTONOSUPPORT, other families EAFNOSUPPORT; in a "
         "network namespace a guest made, made there by the namespace helper and handed over")
def sys_socket(call):
    family, kind, proto = sint(call.args[0]), sint(call.args[1]), sint(call.args[2])
    err = family_errno(family, kind, proto)
    if err is not None:
        raise SyscallError(err)
    netns = call.process.netns
    if netns is not None:
        return _socket_in(call, netns, family, kind, proto)
    if family == AF_NETLINK and proto == NETLINK_SOCK_DIAG and call.kernel.outbound is not None:
        # its reads trap: TCP dumps list the outbound sockets too (sentry/net/diag.py)
        return fdtraps.trap_result(call, fdtraps.DIAG_TRAPS)
    return PASS                   # high bits the kernel ignores made it trap


def _socket_in(call, netns, family, kind, proto):
    """socket(2) in a network namespace a guest made: the helper makes it
    there; it lands at the guest's lowest free number (Handover), with
    SOCK_CLOEXEC as asked (SOCK_NONBLOCK is the socket's own)."""
    try:
        fd = call.kernel.mountns.socket(family, kind & ~SOCK_CLOEXEC, proto, netns=netns.fd)
    except OSError as e:
        raise SyscallError(e.errno or errno.ENOMEM)
    raise Handover(fd, lambda result: result, cloexec=bool(kind & SOCK_CLOEXEC))


@handler("socketpair", note="as socket(2) for the family; unix only runs free; in a network namespace a "
         "guest made, made there by the namespace helper and handed over")
def sys_socketpair(call):
    family, kind, proto = sint(call.args[0]), sint(call.args[1]), sint(call.args[2])
    err = family_errno(family, kind, proto)
    if err is not None:
        raise SyscallError(err)
    netns = call.process.netns
    if netns is not None and family == AF_UNIX:
        return _socketpair_in(call, netns, kind, proto)
    return PASS                   # the kernel's own EOPNOTSUPP for internet and netlink families


def _socketpair_in(call, netns, kind, proto):
    """socketpair(2) of unix sockets in a network namespace a guest made
    (their abstract names and /proc/net/unix are that namespace's): the
    helper makes the pair there, and each end is handed over in turn, at
    the lowest free number (the call runs again for the second; a call
    ended between the two leaves the first in the table, as a signal
    after socketpair's first fd would not on Linux).  The numbers are
    written to sv last, as Linux's put_user does."""
    task, sv, key = call.task, call.args[3], call.raw
    cloexec = bool(kind & SOCK_CLOEXEC)
    pending, task.pair_pending = getattr(task, "pair_pending", None), None
    if pending is not None and pending[0] == key:
        _, first, second = pending

        def placed(result):
            if result < 0:
                return result
            try:
                call.write(sv, struct.pack("<ii", first, result))
            except SyscallError as e:
                return -e.errno
            return 0
        raise Handover(second, placed, cloexec=cloexec)
    if pending is not None:
        os.close(pending[2])                  # left by a call that ended meanwhile
    call.write(sv, call.read(sv, 8))          # EFAULT before anything is made, as Linux's copy would be
    try:
        fds = call.kernel.mountns.socketpair(kind & ~SOCK_CLOEXEC, proto, netns=netns.fd)
    except OSError as e:
        raise SyscallError(e.errno or errno.ENOMEM)

    def first_placed(result):
        if result < 0:
            os.close(fds[1])
            return result
        task.pair_pending = (key, result, fds[1])
        return None                           # the call runs again, for the second end
    raise Handover(fds[0], first_placed, cloexec=cloexec)
