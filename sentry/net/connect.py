"""connect(2) of an internet socket to an address outside the sandbox, with
--network=sandbox: the policy's verdict, then the steps of outbound.py, each
a call injected into the guest thread before its own connect, which traps
again and continues (as syscalls/pin.py does).  Also connect(AF_UNSPEC), the
one call that would make a connected host socket unconnected again."""
import errno
import ipaddress
import os
import socket
import struct

from sentry._native import lib
from sentry.vfs.mount import is_hidden_fd
from sentry.kernel.syscall import Inject
from sentry.errors import SyscallError
from sentry.net import hostsock

AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
SYS_CLOSE, SYS_SOCKET, SYS_CONNECT, SYS_RECVMSG, SYS_DUP3 = 3, 41, 42, 47, 292
SOCK_STREAM_CLOEXEC = 1 | 0o2000000
MSG_CMSG_CLOEXEC = 0x40000000
O_CLOEXEC = 0o2000000
RESTARTS = {errno.EINTR, 512, 513, 514, 516}      # -ERESTARTSYS and the rest: the kernel's to handle
# scratch for the injected recvmsg's msghdr, iov and control data: below the
# thread's stack pointer, past the red zone (the staging page is read-only to
# the guest, and the kernel writes a recvmsg's results)
SCRATCH_BELOW = 1024
MSGHDR, IOV_AT, DATA_AT, CONTROL_AT, CONTROL_LEN = 56, 64, 80, 96, 24


def destination(family, raw):
    """(ip address, port, flowinfo, scope) of an AF_INET/AF_INET6 sockaddr;
    None when it is too short (the kernel then says EINVAL itself)."""
    if family == AF_INET and len(raw) >= 8:
        port, = struct.unpack_from(">H", raw, 2)
        return ipaddress.IPv4Address(raw[4:8]), port, 0, 0
    if family == AF_INET6 and len(raw) >= 24:
        port, flow = struct.unpack_from(">HI", raw, 2)
        scope = struct.unpack_from("<I", raw, 24)[0] if len(raw) >= 28 else 0
        return ipaddress.IPv6Address(raw[8:24]), port, flow, scope
    return None


def _v4(ip):
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip


def inside(kernel, ip):
    """Whether ip is the sandbox's own: its loopback, "this host", or eth0's
    subnet (the sandbox itself and its gateway: vfs/netns.py)."""
    ip = _v4(ip)
    return ip.is_loopback or ip.is_unspecified or any(ip in n for n in kernel.sandbox_networks)


def _relayed(kernel, ip):
    return _v4(ip) in kernel.dns_addresses


def datagram_out(call, family, raw):
    """sendto/sendmsg of a datagram socket to an address outside the
    sandbox (--network=sandbox): it goes through that destination's UDP
    relay (net/udp.py) when --net-allow allows it, else ENETUNREACH (one
    audit line per destination).  Not a boundary: what passes, or what a
    racing thread sends instead from another socket, reaches a relay the
    policy allowed or goes out of eth0 to the gateway, which forwards
    nothing (vfs/netns.py).  Multicast, broadcast, the sandbox's own
    addresses and the DNS relay's pass."""
    kernel = call.kernel
    dest = destination(family, raw) if kernel.outbound is not None and family in (AF_INET, AF_INET6) else None
    if dest is None:
        return
    ip = _v4(dest[0])
    if inside(kernel, ip) or _relayed(kernel, ip) or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        return
    if kernel.udp_relays is not None and kernel.udp_relays.has(ip, dest[1]):
        return                                 # relayed already: nothing to borrow or ask
    dup = kernel.borrow_fd(call.process, call.fd(0))
    try:
        with socket.socket(fileno=os.dup(dup)) as sock:
            datagram = sock.type == socket.SOCK_DGRAM
    except OSError:
        return                                 # not a socket: the kernel's answer
    finally:
        os.close(dup)
    if not datagram:
        return
    why = _udp_relay(kernel, ip, dest[1])
    if why is None:
        return
    key = ("net-refused", ip, dest[1])
    if key not in kernel.warned:               # one audit line per destination, not per datagram
        kernel.warned.add(key)
        kernel.audit.event("net-refused", call.task, call=call, address=str(ip), port=dest[1],
                           why=why, errno=errno.ENETUNREACH)
    raise SyscallError(errno.ENETUNREACH)


def _udp_relay(kernel, ip, port):
    """None once ip:port (outside the sandbox) has a UDP relay, else why
    not: the policy's verdict, an IPv6 destination (the sandbox has no IPv6
    route), or no relay left."""
    if ip.version != 4:
        return "no route"
    why = kernel.net_policy.verdict(ip, port)
    if why is not None:
        return why
    if kernel.udp_relays is None or not kernel.udp_relays.ensure(ip, port):
        return "no relay left"
    return None


def disconnect(call, raw):
    """connect(fd, AF_UNSPEC): done by the Sentry on the object it checked,
    never by the kernel on an fd number another thread can swap: on a host
    socket it would make an outbound connection free to listen on a host
    port.  Refused there (EOPNOTSUPP)."""
    kernel = call.kernel
    dup = kernel.borrow_fd(call.process, call.fd(0))
    try:
        if not hostsock.in_sandbox(kernel, dup):
            raise SyscallError(errno.EOPNOTSUPP if _is_socket(dup) else errno.ENOTSOCK)
        err = lib.sn_connect(dup, raw, len(raw))
        if err < 0:
            raise SyscallError(-err)
        return 0
    finally:
        os.close(dup)


def _is_socket(fd):
    import stat
    return stat.S_ISSOCK(os.fstat(fd).st_mode)


class _Outbound:
    __slots__ = ("key", "stage", "args", "s_ino", "wfd", "n", "err", "cloexec", "kept", "v4")

    def __init__(self, key):
        self.key, self.stage = key, "traps"
        self.args = self.s_ino = self.wfd = self.n = self.kept = None
        self.err, self.cloexec, self.v4 = 0, False, True


def _let_go(st):
    """The guest's former socket, kept for its name: not needed after all."""
    if st.kept is not None:
        os.close(st.kept)
        st.kept = None


def outbound(call, family, raw, dest, staged_rewrite):
    """connect(fd, raw) to dest, outside the sandbox.  staged_rewrite():
    the plain rewrite, for a call the kernel answers itself (a socket that is
    not an unconnected TCP socket of the sandbox)."""
    kernel, task, fd = call.kernel, call.task, call.fd(0)
    key = (fd, raw)
    st = getattr(task, "net", None)
    if st is not None and st.key != key:
        _let_go(st)
        task.net = st = None          # abandoned (a signal, then another call): its fds are the guest's
    if st is None:
        ip, port, flow, scope = dest
        why = kernel.net_policy.verdict(ip, port)
        if why is not None:
            kernel.audit.event("net-refused", task, call=call, address=str(ip), port=port,
                               why=why, errno=errno.ECONNREFUSED)
            raise SyscallError(errno.ECONNREFUSED)
        dup = kernel.borrow_fd(call.process, fd)
        try:
            sock = socket.socket(fileno=os.dup(dup))
        except OSError:
            os.close(dup)
            raise SyscallError(errno.ENOTSOCK)
        with sock:
            try:
                mine = hostsock.in_sandbox(kernel, dup)
                if sock.family != family or not mine:
                    return staged_rewrite()         # EAFNOSUPPORT, EISCONN...: the kernel's answer
                if sock.type != socket.SOCK_STREAM:
                    # a datagram socket's connect: the kernel's, by eth0's default route
                    # (the `connect(("8.8.8.8", 80)); getsockname()` idiom), or ENETUNREACH
                    # where there is none; what it sends later goes through the
                    # destination's UDP relay if the policy allows one, else stops at
                    # the gateway
                    if sock.type == socket.SOCK_DGRAM and kernel.udp_relays is not None:
                        _udp_relay(kernel, _v4(ip), port)
                    return staged_rewrite()
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    return staged_rewrite()
                try:
                    sock.getpeername()
                    return staged_rewrite()         # EISCONN
                except OSError:
                    pass
                nonblock = not os.get_blocking(dup)
                nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                # the guest's socket itself: the outbound socket's name once it is
                # replaced (net/hostsock.py)
                kept = os.dup(dup)
            finally:
                os.close(dup)
        address = (str(ip), port) if family == AF_INET else (str(ip), port, flow, scope)
        st = _Outbound(key)
        st.kept, st.v4 = kept, _v4(ip).version == 4
        st.cloexec = _cloexec(call.tid, fd)
        st.args = (family, address, nonblock, nodelay, keepalive)
        task.net = st
    return _step(call, st, fd)


def _cloexec(tid, fd):
    try:
        with open(f"/proc/{tid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return bool(int(line.split()[1], 8) & O_CLOEXEC)
    except OSError:
        pass
    return False


def _scratch(call, data_len):
    """A msghdr on the thread's stack for one received fd and data_len bytes."""
    base = (call.regs.rsp - SCRATCH_BELOW) & ~15
    hdr = struct.pack("<QI4xQQQQI4x", 0, 0, base + IOV_AT, 1, base + CONTROL_AT, CONTROL_LEN, 0)
    iov = struct.pack("<QQ", base + DATA_AT, data_len)
    call.write(base, hdr + b"\0" * (IOV_AT - MSGHDR) + iov + b"\0" * (CONTROL_AT - DATA_AT)
               + b"\0" * CONTROL_LEN)
    return base


def _received_fd(call, base):
    length, level, kind, fd = struct.unpack("<QiiI", call.read(base + CONTROL_AT, 20))
    if length < 20 or level != socket.SOL_SOCKET or kind != 1:     # SCM_RIGHTS
        return None
    return fd


def _is(call, fd, ino):
    """Whether guest fd `fd` (a number read back from guest memory) is the
    object with inode ino, and not one of the Sentry's."""
    if fd is None or fd < 0 or is_hidden_fd(fd):
        return False
    try:
        return os.stat(f"/proc/{call.tid}/fd/{fd}").st_ino == ino
    except OSError:
        return False


def _fail(st, err):
    _let_go(st)
    st.err = err
    st.stage = "close_n" if st.n is not None else ("close_w" if st.wfd is not None else "done")


def _step(call, st, fd):
    kernel, task = call.kernel, call.task
    out = kernel.outbound
    if st.stage == "traps":
        def loaded(ok):
            if ok:
                st.stage = "socket"
            else:
                # its getsockname would show the host's address: no host socket
                kernel.audit.event("net-refused", task, call=call, address=str(st.args[1][0]),
                                   port=st.args[1][1], why="no filter", errno=errno.ECONNABORTED)
                _fail(st, errno.ECONNABORTED)
        hostsock.ensure_traps(call, loaded)
        st.stage = "socket"
    if st.stage == "socket":
        def made(result):
            if result < 0:
                _fail(st, -result)
            else:
                st.wfd, st.stage = result, "dial"
        raise Inject(SYS_SOCKET, (1, SOCK_STREAM_CLOEXEC, 0), made)
    if st.stage == "dial":
        addr = struct.pack("<H", socket.AF_UNIX) + os.fsencode(out.path) + b"\0"
        (staged,) = call.stage(addr)
        tgid = call.process.tgid

        def dialed(result):
            conn = out.accept(tgid) if result == 0 else None
            if conn is None:
                _fail(st, errno.ECONNABORTED)
                return None
            try:
                st.s_ino = out.start(*st.args, conn)
                st.stage = "wait"
            except OSError as e:
                _fail(st, e.errno or errno.ECONNABORTED)
            return None
        raise Inject(SYS_CONNECT, (st.wfd, staged, len(addr)), dialed)
    if st.stage == "wait":
        base = _scratch(call, 4)

        def answered(result):
            if -result in RESTARTS:
                return result              # as connect(2) interrupted: restarted, or EINTR
            if result < 4:
                _fail(st, errno.ECONNABORTED)
                return None
            err, = struct.unpack("<i", call.read(base + DATA_AT, 4))
            n = _received_fd(call, base)
            if err == 0 and n is not None and _is(call, n, st.s_ino):
                st.n, st.stage = n, "place"
            else:
                if n is not None and not is_hidden_fd(n):
                    st.n = n
                _fail(st, err if err > 0 else errno.ECONNABORTED)
            return None
        raise Inject(SYS_RECVMSG, (st.wfd, base, MSG_CMSG_CLOEXEC), answered)
    if st.stage == "place":
        def placed(result):
            if result != fd:
                _fail(st, -result if result < 0 else errno.ECONNABORTED)
            else:
                kernel.outbound_names.record(st.s_ino, st.kept, st.v4)
                st.kept = None
                st.stage = "close_n"
        raise Inject(SYS_DUP3, (st.n, fd, O_CLOEXEC if st.cloexec else 0), placed)
    if st.stage == "close_n":
        def closed_n(result):
            st.n = None
            st.stage = "close_w" if st.wfd is not None else "done"
        raise Inject(SYS_CLOSE, (st.n,), closed_n)
    if st.stage == "close_w":
        def closed_w(result):
            st.wfd = None
            task.net = None
            return -st.err if st.err else 0
        raise Inject(SYS_CLOSE, (st.wfd,), closed_w)
    task.net = None
    _let_go(st)
    raise SyscallError(st.err or errno.ECONNABORTED)
