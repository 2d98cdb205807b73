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
from sentry.kernel.syscall import Handover, Inject
from sentry.errors import SyscallError
from sentry.net import hostsock
from sentry.host import fdinfo

AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
O_CLOEXEC = 0o2000000
RESTARTS = {errno.EINTR, 512, 513, 514, 516}      # -ERESTARTSYS and the rest: the kernel's to handle
# scratch for the injected poll's pollfd: below the thread's stack pointer,
# past the red zone (the staging page is read-only to the guest, and the
# kernel writes poll's revents)
SCRATCH_BELOW = 1024


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


def datagram_out(call, family, raw, fd):
    """sendto/sendmsg of a datagram socket to an address outside the
    sandbox (--network=sandbox): it goes through that destination's UDP
    relay (net/udp.py) when --net-allow allows it, else ENETUNREACH (one
    audit line per destination).  Not a boundary: what passes, or what a
    racing thread sends instead from another socket, reaches a relay the
    policy allowed or goes out of eth0 to the gateway, which forwards
    nothing (vfs/netns.py).  Multicast, broadcast, the sandbox's own
    addresses and the DNS relay's pass.  fd: the number the kernel names
    the socket by (the guest's, or a hidden slot: syscalls/slots.py)."""
    kernel = call.kernel
    dest = destination(family, raw) if kernel.outbound is not None and family in (AF_INET, AF_INET6) else None
    if dest is None:
        return
    ip = _v4(dest[0])
    if inside(kernel, ip) or _relayed(kernel, ip) or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        return
    if kernel.udp_relays is not None and kernel.udp_relays.has(ip, dest[1]):
        return                                 # relayed already: nothing to borrow or ask
    dup = kernel.borrow_fd(call.process, fd, hidden_ok=fd != call.fd(0))
    try:
        with socket.socket(fileno=os.dup(dup)) as sock:
            datagram = sock.type == socket.SOCK_DGRAM
        # a namespace a guest made has no relay: the kernel's ENETUNREACH there
        datagram = datagram and hostsock.in_sandbox(kernel, dup, own=True)
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
    not: the policy's verdict, or no relay left."""
    why = kernel.net_policy.verdict(ip, port)
    if why is not None:
        return why
    if kernel.udp_relays is None or not kernel.udp_relays.ensure(ip, port):
        return "no relay left"
    return None


def borrow(call, fd):
    """The Sentry's copy of the socket the call names by fd: the guest's
    own number, or the hidden slot syscalls/slots.py prepared."""
    return call.kernel.borrow_fd(call.process, fd, hidden_ok=fd != call.fd(0))


def disconnect(call, fd, raw):
    """connect(fd, AF_UNSPEC): done by the Sentry on the object it checked,
    never by the kernel on an fd number another thread can swap: on a host
    socket it would make an outbound connection free to listen on a host
    port.  Refused there (EOPNOTSUPP)."""
    dup = borrow(call, fd)
    try:
        if not hostsock.in_sandbox(call.kernel, dup):
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


# ---- the outbound socket, connecting or connected -----------------------------
#
# The guest holds its outbound host socket from the first connect on, while
# the handshake is still in flight (Linux's "connecting" socket state,
# SS_CONNECTING).  From that state a few kernel paths make a socket
# unconnected again -- free to be bound, listened on or connected anywhere
# on the host's network: connect(AF_UNSPEC); any connect once the handshake
# has failed, or a blocking one that waits for it to fail (the kernel's
# "sock_error" path); sendmsg with MSG_FASTOPEN, which connects the same
# way; shutdown while SYN_SENT.  None reaches the kernel on an outbound
# socket: connect and bind are decided on the Sentry's copy of the socket
# and run by the kernel only on a socket of the sandbox, named through a
# number no other thread can change (syscalls/slots.py); on an outbound
# socket connect is answered here, from its TCP state, without the
# kernel's connect; shutdown traps in every process and is done by the
# Sentry on its copy (while SYN_SENT: by the outbound helper once the
# handshake has ended); MSG_FASTOPEN traps and never reaches one.  So an
# outbound socket stays "connecting" or "connected" (or, failed and shut
# down, "disconnecting") until it is closed, and listen and bind fail on it.

TCP_SYN_SENT, TCP_SYN_RECV, TCP_CLOSE = 2, 3, 7
SYS_POLL = 7
POLLOUT = 4
ERESTARTSYS = 512


def host_inet(call, dup):
    """Whether dup is an internet socket that is not the sandbox's: an
    outbound socket of the Sentry's (or one sentry's caller passed in), on
    which the kernel's connect, bind or shutdown must never run."""
    if hostsock.in_sandbox(call.kernel, dup):
        return False
    try:
        with socket.socket(fileno=os.dup(dup)) as s:
            return s.family in (socket.AF_INET, socket.AF_INET6)
    except OSError:
        return False


def tcp_state(dup):
    """The TCP state (tcpi_state) of socket dup; TCP_CLOSE when unreadable."""
    try:
        with socket.socket(fileno=os.dup(dup)) as s:
            return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return TCP_CLOSE


def host_connect(call, fd, dup):
    """connect(2) on a host socket (dup, the Sentry's copy), answered
    as Linux answers it on a socket connecting or connected, from the
    socket's TCP state, without the kernel's connect: EALREADY while the
    handshake runs (a blocking socket waits for it, in the guest's own
    context); 0 once, when it is over, then EISCONN; its error when it
    failed, after which the socket is unconnected: the guest's own
    socket of the sandbox, kept since (net/hostsock.py), is put back at its
    number, as a socket the guest may connect again (another fd on the
    failed host socket answers its error and stays as it is).  A host
    socket the Sentry keeps no name for (one sentry's caller passed in)
    answers as a connected one, or with its error, and changes nothing."""
    kernel, task = call.kernel, call.task
    names = kernel.outbound_names
    ino = os.fstat(dup).st_ino
    known = names is not None and names.name(ino) is not None
    first = getattr(task, "net_wait", None) == (call.fd(0), call.args[1])
    state = tcp_state(dup)
    if state in (TCP_SYN_SENT, TCP_SYN_RECV):
        if not os.get_blocking(dup):
            task.net_wait = None
            raise SyscallError(errno.EALREADY)
        return _wait(call, fd, dup, first)
    task.net_wait = None
    if not known or names.connected(ino):
        if state != TCP_CLOSE or known:
            raise SyscallError(errno.EISCONN)
    elif state != TCP_CLOSE:
        names.mark_connected(ino)
        return 0
    with socket.socket(fileno=os.dup(dup)) as s:
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNABORTED
    kept = names.give_back(ino) if known else None
    if kept is None:
        return -err
    cloexec = _cloexec(call.tid, call.fd(0))
    raise Handover(kept, lambda result: -err, at=call.fd(0), cloexec=cloexec)


def _wait(call, fd, dup, first):
    """A blocking connect while the handshake runs: the guest thread polls
    the socket (through fd, the number the call names it by) for as long
    as its SO_SNDTIMEO says, then its connect runs again.  A signal
    interrupts it as it interrupts connect(2)."""
    with socket.socket(fileno=os.dup(dup)) as s:
        sec, usec = struct.unpack("<qq", s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16))
    timeout = sec * 1000 + (usec + 999) // 1000 if sec or usec else -1
    base = (call.regs.rsp - SCRATCH_BELOW) & ~15
    call.write(base, struct.pack("<ihh", fd, POLLOUT, 0))
    task = call.task

    def polled(result):
        if -result in RESTARTS:
            task.net_wait = None
            return -ERESTARTSYS if timeout < 0 else -errno.EINTR
        if result == 0:
            task.net_wait = None
            return -errno.EINPROGRESS if first else -errno.EALREADY
        return None                        # over (or the fd changed): the connect decides again
    raise Inject(SYS_POLL, (base, 1, timeout & 0xFFFFFFFF), polled)


def _of_a_guest_namespace(call, fd):
    """Whether fd names a socket of a network namespace a guest made
    (kernel/netns.py), where nothing leads outside.  Asked only once a
    guest has made one."""
    nets = call.kernel.netns
    if nets is None or not nets.guest_made():
        return False
    dup = borrow(call, fd)
    try:
        cookie = hostsock.cookie_of(dup)
        return cookie is not None and cookie != nets.own.cookie and cookie in nets.cookies
    finally:
        os.close(dup)


def outbound(call, fd, family, raw, dest, staged_rewrite):
    """connect(fd, raw) to dest, outside the sandbox.  staged_rewrite():
    the plain rewrite, for a call the kernel answers itself (a socket that is
    not an unconnected TCP socket of the sandbox)."""
    kernel, task, process = call.kernel, call.task, call.process
    ip, port, flow, scope = dest
    if _of_a_guest_namespace(call, fd):
        return staged_rewrite()                # no way out of it: the kernel's ENETUNREACH, as on Linux
    why = kernel.net_policy.verdict(ip, port)
    if why is not None:
        kernel.audit.event("net-refused", task, call=call, address=str(ip), port=port,
                           why=why, errno=errno.ECONNREFUSED)
        raise SyscallError(errno.ECONNREFUSED)
    dup = borrow(call, fd)
    try:
        sock = socket.socket(fileno=os.dup(dup))
    except OSError:
        os.close(dup)
        raise SyscallError(errno.ENOTSOCK)
    with sock:
        try:
            # a socket of a namespace a guest made has no way out: the kernel's ENETUNREACH
            mine = hostsock.in_sandbox(kernel, dup, own=True)
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
            if not process.host_socket_traps:
                _traps(call, ip, port)
            nonblock = not os.get_blocking(dup)
            address = (str(ip), port) if family == AF_INET else (str(ip), port, flow, scope)
            try:
                host, ino = kernel.outbound.start(family, address, sock, nonblock)
            except OSError as e:
                raise SyscallError(e.errno or errno.ECONNABORTED)
            # the guest's socket itself: the outbound socket's name once it is
            # replaced (net/hostsock.py)
            kept = os.dup(dup)
        finally:
            os.close(dup)
    v4, key, cloexec = _v4(ip).version == 4, (call.fd(0), call.args[1]), _cloexec(call.tid, call.fd(0))

    def placed(result):
        if result < 0:
            os.close(kept)
            return result
        kernel.outbound_names.record(ino, kept, v4)
        if nonblock:
            return -errno.EINPROGRESS
        task.net_wait = key                 # a blocking connect waits: host_connect, when it traps again
        # a hidden slot holding the guest's former socket (syscalls/slots.py)
        # must name the new one when it traps again
        task.sock_slot_renew = True
        return None
    # at the guest's own number, replacing its socket there (as dup2 would)
    raise Handover(host, placed, at=call.fd(0), cloexec=cloexec)


def _traps(call, ip, port):
    """Before a process's first outbound socket: its filter
    (net/hostsock.py); the call runs again once it is there.  A process
    that refused it gets no host socket."""
    task = call.task
    key = (call.fd(0), call.args[1])
    if getattr(task, "net_refused", None) == key:
        task.net_refused = None
        # its getsockname would show the host's address: no host socket
        call.kernel.audit.event("net-refused", task, call=call, address=str(ip), port=port,
                                why="no filter", errno=errno.ECONNABORTED)
        raise SyscallError(errno.ECONNABORTED)

    def loaded(ok):
        task.net_refused = None if ok else key
    hostsock.ensure_traps(call, loaded)


def shutdown(call):
    """shutdown(2), done by the Sentry on its copy of the socket, never by
    the kernel on a number another thread can swap; on an outbound socket
    whose handshake is in flight (SYN_SENT, where the kernel's shutdown
    would make it unconnected), carried out by the outbound helper once
    the handshake has ended."""
    how = call.args[1]                     # an int
    dup = borrow(call, call.fd(0))
    try:
        try:
            sock = socket.socket(fileno=os.dup(dup))
        except OSError as e:
            raise SyscallError(e.errno)
        with sock:
            if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
                raise SyscallError(errno.EINVAL)
            if host_inet(call, dup) and tcp_state(dup) == TCP_SYN_SENT:
                call.kernel.outbound.shut_later(os.dup(dup), how)
                return 0
            try:
                sock.shutdown(how)
            except OSError as e:
                raise SyscallError(e.errno)
            return 0
    finally:
        os.close(dup)


def fastopen(call, fd):
    """A send with MSG_FASTOPEN connects as it sends: on an outbound socket
    it could make it unconnected (the kernel's sock_error path), so it
    never reaches one (EALREADY while connecting, else EISCONN, as Linux
    answers on a socket connecting or connected).  On a socket of the
    sandbox it runs as it is where nothing can change what fd names
    meanwhile: a hidden slot holding the Sentry's copy (syscalls/slots.py),
    or the guest's own number in a process whose fd table is its alone
    (sendto, sendmsg and sendmmsg all take a slot where it is not); else,
    failing closed, EOPNOTSUPP, as on a host whose TCP Fast Open client side
    is off."""
    own = fd == call.fd(0)
    dup = call.kernel.borrow_fd(call.process, fd, hidden_ok=not own)
    try:
        if not _is_socket(dup):
            raise SyscallError(errno.ENOTSOCK)
        if hostsock.in_sandbox(call.kernel, dup):
            if not own or call.process.alone():
                return
            raise SyscallError(errno.EOPNOTSUPP)
        raise SyscallError(errno.EALREADY if tcp_state(dup) in (TCP_SYN_SENT, TCP_SYN_RECV) else errno.EISCONN)
    finally:
        os.close(dup)


def _cloexec(tid, fd):
    try:
        return bool(int(fdinfo(tid, fd)["flags"], 8) & O_CLOEXEC)
    except (OSError, KeyError, ValueError):
        return False
