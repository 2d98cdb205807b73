"""What a guest learns about its outbound sockets: the sandbox's network,
never the host's.

An outbound connection (net/outbound.py) is a host socket in the guest's
table, so what the kernel says about it by itself comes from the host's
network namespace: its local address (one of the host's, and a host port),
the interfaces an ioctl on it lists (SIOCGIFCONF, SIOCGIFHWADDR...: the
host's, MACs and all), whether SO_BINDTODEVICE finds an interface name, the
IP_PKTINFO that IP_PKTOPTIONS gives.  Hence:

  - The guest's own socket, which the host socket replaced in its table, is
    kept by the Sentry while the connection lives (Names): bound to an
    ephemeral port of the sandbox if the guest had not bound it, it holds
    that port in the sandbox, and its name (10.0.2.15, or the address the
    guest bound, and that port) is the outbound socket's name.
  - A process gets one more seccomp filter before its first outbound socket
    is handed over (TRAPS, kernel/fdtraps.py; a process that cannot load it
    gets ECONNABORTED, not the socket); its children inherit it.  There
    getsockname, IP_PKTOPTIONS and SO_BINDTODEVICE trap (the interface
    ioctls trap everywhere: BPF allows no SIOCGIF*), and the Sentry answers
    them itself, on the object it borrowed:
    for a socket of the sandbox, that socket's own answer; for a host
    socket, the sandbox's (the name above; the interfaces through a socket
    of the sandbox's namespace).  Never by the guest's fd number, which a
    thread may have pointed elsewhere in between.  (A host socket the
    Sentry did not connect, one its caller passed in as stdin say, keeps
    its own name.)
  - SO_NETNS_COOKIE traps everywhere (table.py): every socket of the guest
    answers the sandbox namespace's cookie.

Known limit: a host socket passed (SCM_RIGHTS) to a process that never made
an outbound connection shows its host name there (getsockname,
IP_PKTOPTIONS; SO_BINDTODEVICE is the kernel's).
"""
import errno
import fcntl
import ipaddress
import os
import socket
import struct

from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.kernel import fdtraps
from sentry.vfs import netns

SYS_GETSOCKNAME, SYS_GETSOCKOPT, SYS_SETSOCKOPT = 51, 55, 54
SOL_IP, SOL_SOCKET, SOL_IPV6 = 0, 1, 41
IP_PKTOPTIONS, IP_PKTINFO = 9, 8
IPV6_2292PKTOPTIONS, IPV6_2292PKTINFO = 6, 2
SO_BINDTODEVICE, SO_NETNS_COOKIE, SO_BINDTOIFINDEX = 25, 71, 62
PKTOPTIONS = {(SOL_IP, IP_PKTOPTIONS), (SOL_IPV6, IPV6_2292PKTOPTIONS)}
BIND_TO_DEVICE = (SO_BINDTODEVICE, SO_BINDTOIFINDEX)
IFNAMSIZ, IFREQ_SIZE, IFCONF_MAX = 16, 40, 1 << 16
PKTOPTIONS_MAX = 1024           # a few control messages (and Python's getsockopt's limit)
SIOCGIFNAME, SIOCGIFCONF, SIOCGIFINDEX = 0x8910, 0x8912, 0x8933
# the interface queries (read only; syscalls/file.py passes them but where
# outbound sockets exist): all name the socket's network namespace, none the
# socket itself
INTERFACE_QUERIES = {0x8910, 0x8912, 0x8913, 0x8915, 0x8917, 0x8919, 0x891B, 0x891D, 0x8921, 0x8927,
                     0x8933, 0x8942, 0x8970}
TRAPS = {
    SYS_GETSOCKNAME: None,
    SYS_GETSOCKOPT: [[(1, SOL_IP, SOL_IP), (2, IP_PKTOPTIONS, IP_PKTOPTIONS)],
                     [(1, SOL_IPV6, SOL_IPV6), (2, IPV6_2292PKTOPTIONS, IPV6_2292PKTOPTIONS)]],
    SYS_SETSOCKOPT: [[(1, SOL_SOCKET, SOL_SOCKET), (2, SO_BINDTODEVICE, SO_BINDTODEVICE)]],
}
FILTER = fdtraps.process_program(TRAPS)


def ensure_traps(call, then):
    """Before a process's first outbound socket: its filter.  Raises the
    Inject that loads it (then(True) once it is there, then(False) if the
    process refused it); returns when the process has it already."""
    process = call.process
    if process.host_socket_traps:
        return

    def loaded(result):
        process.host_socket_traps = result == 0
        then(result == 0)
    fdtraps.install(call, FILTER, loaded)


# ---- the names of outbound sockets -----------------------------------------

class Names:
    """Host socket inode -> (the guest's former socket, kept -- None once
    given back, net/connect.py; its sockaddr as getsockname gives it).  Entries of closed connections go when the
    table has doubled since the last sweep (a sweep reads the host's whole
    TCP table: a few ms on a busy host, so not often); their names stay
    (`handed`), since a connection the host no longer lists (reset, or its
    handshake failed) may still be a guest's socket, which Linux names as
    before."""

    SWEEP_MIN = 1024

    def __init__(self):
        self.by_ino = {}
        self.reported = set()          # those whose connect has answered 0 (net/connect.py)
        # every outbound socket ever handed over, and its name, never
        # forgotten (sockfs inode numbers come from a counter, not reused
        # before it wraps): a guest fd naming none of them is no outbound
        # socket
        self.handed = {}
        self.sweep_at = self.SWEEP_MIN
        self.auto_ports = set()        # those whose port the guest had not bound

    def record(self, ino, guest_fd, v4):
        """Keep guest_fd (the Sentry's, a socket of the sandbox, no longer
        in the guest's table) as the name of host socket ino; v4: the
        connection is IPv4 (an AF_INET6 socket to a v4-mapped address too)."""
        self.auto_ports.discard(ino)
        sock = socket.socket(fileno=guest_fd)
        try:
            if _port(sock) == 0:
                sock.bind(("0.0.0.0", 0) if sock.family == socket.AF_INET else ("::", 0))
                self.auto_ports.add(ino)
            raw = _name(sock, v4)
        except OSError:
            # no port to hold (the sandbox's ephemeral ports are taken): still
            # never the host's name
            raw = _unspecified(sock.family)
        old = self.by_ino.pop(ino, None)
        if old is not None and old[0] is not None:
            old[0].close()
        self.reported.discard(ino)
        self.by_ino[ino] = (sock, raw)
        self.handed[ino] = raw
        if len(self.by_ino) >= self.sweep_at:
            self._sweep()

    def name(self, ino):
        """The sandbox name of outbound socket ino; None for a host socket
        the Sentry did not connect (one sentry's caller passed in: its stdin
        may be a socket), which keeps the kernel's answers."""
        return self.handed.get(ino)

    def connected(self, ino):
        """Whether the guest was told that outbound socket ino is connected."""
        return ino in self.reported

    def mark_connected(self, ino):
        self.reported.add(ino)

    def give_back(self, ino):
        """The guest's former socket, kept for outbound socket ino, to be
        the guest's again (an fd the caller owns; the Sentry keeps no
        reference, so that closing it is the guest's alone), or None.
        The name stays: another fd on the host socket still shows it."""
        entry = self.by_ino.get(ino)
        if entry is None or entry[0] is None:
            return None
        self.by_ino[ino] = (None, entry[1])
        return entry[0].detach()

    def _ours(self, table):
        """(host line, its fields, the sandbox name) of each outbound socket
        the host's /proc/net/<table> ("tcp" or "tcp6") lists."""
        if not self.by_ino:
            return
        try:
            with open(f"/proc/self/net/{table}", encoding="latin-1") as f:
                next(f, None)
                host = list(f)
        except OSError:
            return
        for line in host:
            fields = line.split()
            try:
                entry = self.by_ino.get(int(fields[9]))
            except (IndexError, ValueError):
                continue
            if entry is not None and _proc_address(entry[1], table) is not None:
                yield line, fields, entry[1]

    def proc_net(self, table, data):
        """The sandbox's /proc/net/<table> ("tcp" or "tcp6": data, as its
        namespace's kernel shows it) with the outbound sockets added: the
        host's lines for them, as the host's kernel shows them (state,
        queues, timers, inode: the guest's fd names that inode), renumbered
        after the sandbox's own, their local address the sandbox's name."""
        lines = data.decode("latin-1").splitlines(keepends=True)
        n = len(lines) - 1
        for line, fields, raw in self._ours(table):
            local = _proc_address(raw, table)
            if len(local) != len(fields[1]):
                continue
            head, rest = line.split(":", 1)
            at = rest.index(fields[1])
            lines.append(f"{n:{len(head)}d}:" + rest[:at] + local + rest[at + len(local):])
            n += 1
        return "".join(lines).encode("latin-1")

    def diag_view(self, ino):
        """(the sandbox name, whether its port was chosen by the kernel rather
        than bound by the guest) of outbound socket ino, as net/diag.py lists
        it; None for any other socket."""
        entry = self.by_ino.get(ino)
        return (entry[1], ino in self.auto_ports) if entry is not None else None

    def _sweep(self):
        live = set()
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/self/net/{table}") as f:
                    next(f, None)
                    live.update(int(line.split()[9]) for line in f)
            except (OSError, ValueError, IndexError):
                return                       # kept: a name must not go while its socket lives
        for ino in [i for i in self.by_ino if i not in live]:
            sock = self.by_ino.pop(ino)[0]
            if sock is not None:
                sock.close()
            self.reported.discard(ino)
            self.auto_ports.discard(ino)
        self.sweep_at = max(self.SWEEP_MIN, 2 * len(self.by_ino))


def _port(sock):
    return sock.getsockname()[1]


def _name(sock, v4):
    """The sockaddr the outbound socket shows: the kept socket's own, its
    unspecified address replaced by eth0's (the source Linux would choose)."""
    got = sock.getsockname()
    ip, port = ipaddress.ip_address(got[0].split("%")[0]), got[1]
    if sock.family == socket.AF_INET:
        if ip.is_unspecified:
            ip = netns.ETH0.ip
        return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + ip.packed + bytes(8)
    if ip.is_unspecified and v4:
        ip = ipaddress.IPv6Address("::ffff:" + str(netns.ETH0.ip))
    return struct.pack("<H", socket.AF_INET6) + struct.pack(">HI", port, 0) + ip.packed + bytes(4)


def _proc_address(raw, table):
    """A sockaddr as /proc/net/<table> prints a local address (the kernel's
    %08X of each 32-bit word, in the machine's byte order, then :%04X of
    the port); None when it is not of that table's family."""
    family, = struct.unpack_from("<H", raw)
    port, = struct.unpack_from(">H", raw, 2)
    if table == "tcp" and family == socket.AF_INET:
        return "%08X:%04X" % (struct.unpack_from("<I", raw, 4)[0], port)
    if table == "tcp6" and family == socket.AF_INET6:
        return "".join("%08X" % w for w in struct.unpack_from("<4I", raw, 8)) + ":%04X" % port
    return None


def _unspecified(family):
    if family == socket.AF_INET6:
        return struct.pack("<H", family) + bytes(26)
    return struct.pack("<H", socket.AF_INET) + bytes(14)


# ---- the answers -------------------------------------------------------------

def cookie_of(sock):
    """The SO_NETNS_COOKIE of socket sock (a Sentry-side fd; no privilege
    needed), or None for another file."""
    try:
        with socket.socket(fileno=os.dup(sock)) as s:
            return s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
    except OSError:
        return None


def in_sandbox(kernel, sock, own=False):
    """Whether socket sock (a Sentry-side fd) belongs to a network namespace
    of the sandbox's -- its own, or one a guest made (kernel/netns.py); with
    own, the sandbox's own only -- told by the namespace's cookie.  Anything
    else (the host's: an outbound connection) or any doubt: False."""
    cookie = cookie_of(sock)
    if cookie is None:
        return False
    nets = getattr(kernel, "netns", None)
    if own or nets is None:
        return cookie == getattr(kernel, "netns_cookie", None)
    return cookie in nets.cookies


def namespace_of(kernel, sock):
    """The NetNamespace (kernel/netns.py) socket sock belongs to, or None:
    a host socket, a namespace no process of the sandbox is in any more."""
    nets, cookie = getattr(kernel, "netns", None), cookie_of(sock)
    return nets.by_cookie(cookie) if cookie is not None and nets is not None else None


def _borrowed(call, fd):
    """(a Sentry-side copy of guest fd, whether it is a socket of the
    sandbox); ENOTSOCK for another file."""
    dup = call.kernel.borrow_fd(call.process, fd)
    try:
        if not _is_socket(dup):
            raise SyscallError(errno.ENOTSOCK)
        return dup, in_sandbox(call.kernel, dup)
    except BaseException:
        os.close(dup)
        raise


def _is_socket(fd):
    import stat
    return stat.S_ISSOCK(os.fstat(fd).st_mode)


def _family(fd):
    with socket.socket(fileno=os.dup(fd)) as s:
        return s.family


def _put_sized(call, ptr, len_ptr, data):
    """Write data at ptr as the kernel answers into a buffer the caller sized
    with *len_ptr (an int): EINVAL below 0, truncated, the full length told."""
    room, = struct.unpack("<i", call.read(len_ptr, 4))
    if room < 0:
        raise SyscallError(errno.EINVAL)
    if data[:room]:
        call.write(ptr, data[:room])
    call.write(len_ptr, struct.pack("<i", len(data)))


def getsockname(call):
    fd, addr, addrlen = call.fd(0), call.args[1], call.args[2]
    dup, mine = _borrowed(call, fd)
    try:
        raw = None if mine else call.kernel.outbound_names.name(os.fstat(dup).st_ino)
        if raw is None:
            buf, n = ffi.new("char[128]"), ffi.new("unsigned *", 128)
            err = lib.sn_getsockname(dup, buf, n)
            if err < 0:
                raise SyscallError(-err)
            raw = ffi.buffer(buf, min(n[0], 128))[:]
    finally:
        os.close(dup)
    _put_sized(call, addr, addrlen, raw)
    return 0


def _probe(call, dup, mine):
    """The socket an interface query runs on: the guest's own (borrowed) if
    it is the sandbox's, else the Sentry's socket of the sandbox's
    namespace of its family."""
    if mine:
        return dup
    probes = call.kernel.netns_probes
    return probes.get(_family(dup), probes[socket.AF_INET])


def interface_query(call, req):
    """SIOCGIF*: answered by the sandbox's network namespace."""
    fd, arg = call.fd(0), call.args[2]
    try:
        dup, mine = _borrowed(call, fd)
    except SyscallError as e:
        if e.errno == errno.ENOTSOCK:
            raise SyscallError(errno.ENOTTY)     # as for any file but a socket
        raise
    try:
        target = _probe(call, dup, mine)
        if req == SIOCGIFCONF:
            return _ifconf(call, target, arg)
        ifr = bytearray(call.read(arg, IFREQ_SIZE))
        try:
            fcntl.ioctl(target, req, ifr, True)
        except OSError as e:
            raise SyscallError(e.errno)
        call.write(arg, bytes(ifr))
        return 0
    finally:
        os.close(dup)


def _ifconf(call, target, arg):
    length, buf = struct.unpack("<i4xQ", call.read(arg, 16))
    room = max(0, min(length, IFCONF_MAX))
    space = ffi.new("char[]", max(room, 1))
    ifc = bytearray(struct.pack("<i4xQ", room, int(ffi.cast("uintptr_t", space)) if buf else 0))
    try:
        fcntl.ioctl(target, SIOCGIFCONF, ifc, True)
    except OSError as e:
        raise SyscallError(e.errno)
    got, = struct.unpack_from("<i", ifc)
    if buf and got > 0:
        call.write(buf, ffi.buffer(space, got)[:])
    call.write(arg, struct.pack("<i", got))
    return 0


def netns_cookie(call):
    """SO_NETNS_COOKIE: the sandbox namespace's, for any socket of the guest
    (its own sockets' is that one; an outbound socket's would be the host's),
    but one of a namespace a guest made (kernel/netns.py): that one's."""
    fd, optval, optlen = call.fd(0), call.args[3], call.args[4]
    dup, _ = _borrowed(call, fd)
    try:
        ns = namespace_of(call.kernel, dup)
    finally:
        os.close(dup)
    room, = struct.unpack("<i", call.read(optlen, 4))
    if room != 8:
        raise SyscallError(errno.EINVAL)
    call.write(optval, ns.cookie if ns is not None else call.kernel.netns_cookie)
    call.write(optlen, struct.pack("<i", 8))
    return 0


def pktoptions(call, level):
    """IP_PKTOPTIONS / IPV6_2292PKTOPTIONS: the kernel's answer on the
    borrowed socket; for a host socket, its IP_PKTINFO names the sandbox's
    address and no interface."""
    fd, optval, optlen = call.fd(0), call.args[3], call.args[4]
    dup, mine = _borrowed(call, fd)
    try:
        room, = struct.unpack("<i", call.read(optlen, 4))
        if room < 0:
            raise SyscallError(errno.EINVAL)
        name = IP_PKTOPTIONS if level == SOL_IP else IPV6_2292PKTOPTIONS
        with socket.socket(fileno=os.dup(dup)) as s:
            try:
                data = s.getsockopt(level, name, min(room, PKTOPTIONS_MAX)) if room else b""
            except OSError as e:
                raise SyscallError(e.errno)
            name = None if mine else call.kernel.outbound_names.name(os.fstat(dup).st_ino)
            if name is not None:
                data = _sandbox_pktinfo(data, name)
    finally:
        os.close(dup)
    if data:
        call.write(optval, data)
    call.write(optlen, struct.pack("<i", len(data)))
    return 0


def _sandbox_pktinfo(control, raw_name):
    """control messages with every IP_PKTINFO / IPV6_2292PKTINFO address the
    socket's sandbox name's, and interface index 0."""
    out, at = bytearray(control), 0
    while at + 16 <= len(out):
        clen, level, kind = struct.unpack_from("<Qii", out, at)
        if clen < 16 or at + clen > len(out):
            break
        if level == SOL_IP and kind == IP_PKTINFO and clen >= 28 and len(raw_name) == 16:
            struct.pack_into("<i4s4s", out, at + 16, 0, raw_name[4:8], raw_name[4:8])
        elif level == SOL_IPV6 and kind == IPV6_2292PKTINFO and clen >= 36 and len(raw_name) == 28:
            struct.pack_into("<16si", out, at + 16, raw_name[8:24], 0)
        at += (clen + 7) & ~7
    return bytes(out)


def bind_to_device(call, by_index):
    """SO_BINDTODEVICE / SO_BINDTOIFINDEX.  A socket of the sandbox: done on
    the borrowed socket (a second binding needs CAP_NET_RAW, which the
    guest lacks: EPERM, as the kernel would say).  A host socket: 0 for an
    interface of the sandbox (or none), without binding it to the host's
    interface of that name; ENODEV for any other."""
    fd, optval, optlen = call.fd(0), call.args[3], call.args[4] & 0xFFFFFFFF
    dup, mine = _borrowed(call, fd)
    try:
        if by_index:
            if optlen < 4:
                raise SyscallError(errno.EINVAL)
            value = call.read(optval, 4)
            index, = struct.unpack("<i", value)
            name = _index_name(call, index) if index else b""
        else:
            value = call.read(optval, min(optlen, IFNAMSIZ - 1)) if optlen else b""
            name = value.split(b"\0", 1)[0]
            if name and _name_index(call, name) is None:
                raise SyscallError(errno.ENODEV)
        if not mine:
            return 0
        with socket.socket(fileno=os.dup(dup)) as s:
            if s.getsockopt(SOL_SOCKET, SO_BINDTOIFINDEX):
                raise SyscallError(errno.EPERM)
            try:
                s.setsockopt(SOL_SOCKET, SO_BINDTODEVICE, name)
            except OSError as e:
                raise SyscallError(e.errno)
        return 0
    finally:
        os.close(dup)


def _name_index(call, name):
    try:
        got = fcntl.ioctl(call.kernel.netns_probes[socket.AF_INET], SIOCGIFINDEX,
                          struct.pack("16si20x", name, 0))
    except OSError:
        return None
    return struct.unpack_from("16si", got)[1]


def _index_name(call, index):
    try:
        got = fcntl.ioctl(call.kernel.netns_probes[socket.AF_INET], SIOCGIFNAME,
                          struct.pack("16si20x", b"", index))
    except OSError:
        raise SyscallError(errno.ENODEV)
    return got[:IFNAMSIZ].split(b"\0", 1)[0]
