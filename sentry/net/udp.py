"""UDP to the outside for --network=sandbox: a relay per destination, at the
destination's own address inside the sandbox (as the DNS relay, net/dns.py,
does for resolvers).

The guest's datagram sockets stay the sandbox's (a host UDP socket in the
guest's table could be made to send anywhere by a thread swapping fds), so
a destination comes to the sandbox instead.  When a guest first sends to,
or connects a datagram socket to, an address:port outside the sandbox
that --net-allow allows (net/connect.py):

  - the namespace helper adds a route that makes the address the sandbox's
    own for what it receives (`local ADDRESS dev lo src 10.0.2.15`: not an
    interface address, `ip addr` does not list it; what the guest sends
    there still leaves from 10.0.2.15, its name as on Linux);
  - the Sentry binds one of its sockets of the sandbox's namespace (made at
    set-up: there are RELAYS_MAX) to ADDRESS:PORT and hands it to the UDP
    relay, a process of its own (started at set-up, confined: profile
    "udp-relay", platform/selfconfine.py; the outbound helper keeps its
    rule of making no socket).

From then on the guest's datagrams to ADDRESS:PORT (sendto, sendmsg,
sendmmsg, a connected socket's send or write) arrive on that socket, on its
own loopback, untrapped past the first.  The relay sends each from a host
socket connected to ADDRESS:PORT, one per guest socket (its address and
port: a flow), so that the destination tells the sandbox's sockets apart
and each answer goes back, from the relay socket, hence from ADDRESS:PORT,
to the guest socket it is for.  Nothing else crosses: a host socket only
ever sends to its own destination, and what it receives goes to its own
flow.  A flow idle for IDLE seconds is closed (as a NAT forgets one);
beyond FLOWS_MAX the oldest gives way.

An IPv6 destination is relayed the same way (a route `local ADDRESS/128 dev
lo`, a relay socket bound with IPV6_FREEBIND, since IPv6 checks interface
addresses, not routes); the sandbox has no IPv6 address of its own beyond
::1, so a guest socket sends there from ::1 (getsockname says so).
A destination's (or a router's) ICMP or ICMPv6 "destination unreachable"
and "time exceeded" reach the guest: the flow's host socket queues each
(IP_RECVERR), and the relay sends the sandbox's kernel an error of the same
type and code quoting the guest's datagram, on a raw ICMP (ICMPv6) socket of
the sandbox's namespace its helper made at set-up (filtered to receive
nothing), so the guest's socket hears it by the kernel's own rules: a
connected one ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EACCES...; one with
IP_RECVERR every error.  Differs from Linux: such a queued error names the
sandbox as its sender; a ping to ADDRESS is answered by the sandbox itself.
"""
import json
import os
import select
import socket
import struct
import time

from sentry.platform import spawn

RELAYS_MAX = 64                 # IPv4 destinations (address, port) a sandbox may have relayed
RELAYS6_MAX = 16                # IPv6 ones
IPV6_FREEBIND = 78              # an IPv6 bind checks interface addresses, not local routes
FLOWS_MAX = 1024                # guest sockets talking through the relays at once
IDLE = 180.0                    # seconds after which a silent flow is closed
DATAGRAM_MAX = 65536
HOST_SOCKET = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


class Relays:
    """The Sentry's side: which destinations have a relay, and the sockets
    of the sandbox's namespace left for new ones."""

    def __init__(self, mountns, pool, pool6=(), icmp=None, icmp6=None):
        self.mountns, self.pools = mountns, {4: list(pool), 6: list(pool6)}
        self.made = set()       # (address, port)
        self.routed = set()     # addresses
        self.sock = spawn.helper(_serve)
        # the relay's raw ICMP and ICMPv6 sockets of the sandbox's namespace
        # (made by its helper at set-up): how a destination's "port
        # unreachable" reaches the guest socket it is for
        for kind, raw in (("icmp", icmp), ("icmp6", icmp6)):
            if raw is not None:
                try:
                    socket.send_fds(self.sock, [json.dumps({kind: True}).encode()], [raw])
                finally:
                    os.close(raw)

    def has(self, ip, port):
        return (ip, port) in self.made

    def ensure(self, ip, port):
        """A relay for ip:port (an address the policy allows); False if
        none can be had (all are taken, or the port is the guest's own)."""
        if (ip, port) in self.made:
            return True
        pool = self.pools[ip.version]
        if not pool:
            return False
        try:
            if ip not in self.routed:
                self.mountns.add_local_route(str(ip))
                self.routed.add(ip)
            fd = pool[-1]
            with socket.socket(fileno=os.dup(fd)) as s:
                if ip.version == 6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
                s.bind((str(ip), port))
        except OSError:
            return False
        pool.pop()
        try:
            socket.send_fds(self.sock, [json.dumps([str(ip), port]).encode()], [fd])
        except OSError:
            return False                    # the relay is gone (so is the Sentry, soon)
        finally:
            os.close(fd)
        self.made.add((ip, port))
        return True

    def close(self):
        self.sock.close()
        for pool in self.pools.values():
            for fd in pool:
                os.close(fd)


def _serve(sock, sentry):
    """The relay: one thread, one poll loop over the Sentry's requests and
    the relays' sockets, run confined."""
    spawn.confine(sock, "udp-relay", "the UDP relay", sentry, "no datagram leaves the sandbox")
    fd = sock.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    relay = Relay(lambda f: poller.register(f, select.POLLIN), poller.unregister)
    while True:
        try:
            events = poller.poll(IDLE * 1000 / 4 if relay.busy() else None)
        except InterruptedError:
            continue
        for efd, _ in events:
            if efd != fd:
                relay.event(efd)
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 4096, 1)
            except OSError:
                msg, fds = b"", []
            if not msg:
                os._exit(0)             # the Sentry is gone
            req = json.loads(msg)
            if len(fds) == 1 and isinstance(req, dict) and req.get("icmp"):
                relay.icmp = socket.socket(fileno=fds[0])
            elif len(fds) == 1 and isinstance(req, dict) and req.get("icmp6"):
                relay.icmp6 = socket.socket(fileno=fds[0])
            elif len(fds) == 1:
                address, port = req
                relay.add(fds[0], address, port)
            else:
                for f in fds:
                    os.close(f)
        relay.expire()


IP_HDRINCL, IPV6_HDRINCL = 3, 36


def _hdrincl(sock):
    """Whether raw socket sock takes the IP header from its sender."""
    level, name = (socket.IPPROTO_IPV6, IPV6_HDRINCL) if sock.family == socket.AF_INET6 else \
        (socket.IPPROTO_IP, IP_HDRINCL)
    try:
        return bool(sock.getsockopt(level, name))
    except OSError:
        return False


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# A flow's host socket hears every ICMP error of its destination (IP_RECVERR,
# IPV6_RECVERR), each read from its error queue with its type and code; those
# passed on to the guest: "destination unreachable" and "time exceeded"
# (ICMP 3 and 11, ICMPv6 1 and 3; "fragmentation needed" and "packet too
# big" carry a path MTU the sandbox's own path does not have).
IP_RECVERR, IPV6_RECVERR, MSG_ERRQUEUE = 11, 25, 0x2000
SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6 = 2, 3
PASSED_ON = {SO_EE_ORIGIN_ICMP: {3, 11}, SO_EE_ORIGIN_ICMP6: {1, 3}}
FRAG_NEEDED = (3, 4)


def icmp6_error(src, dst, kind, code, offender=None):
    """An ICMPv6 error (type 1 "destination unreachable", code 4 "port"...)
    quoting a UDP datagram from src to dst ((address, port) each, IPv6):
    its IPv6 header and its UDP header.  Without an offender the checksum is
    left 0: the kernel computes it for every ICMPv6 raw socket (the
    pseudo-header needs the source it chooses).  With one (an IPv6 address),
    the whole packet, its IPv6 header from the offender to src, for a raw
    socket with IPV6_HDRINCL: the guest's error queue names the offender
    (SO_EE_OFFENDER) as a host's does."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8, 0)
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(udp), socket.IPPROTO_UDP, 64,
                     socket.inet_pton(socket.AF_INET6, src[0]), socket.inet_pton(socket.AF_INET6, dst[0]))
    message = struct.pack("!BBHI", kind, code, 0, 0) + ip + udp
    if offender is None:
        return message
    frm, to = socket.inet_pton(socket.AF_INET6, offender), socket.inet_pton(socket.AF_INET6, src[0])
    pseudo = frm + to + struct.pack("!I3xB", len(message), socket.IPPROTO_ICMPV6)
    message = message[:2] + struct.pack("!H", _checksum(pseudo + message)) + message[4:]
    return struct.pack("!IHBB16s16s", 6 << 28, len(message), socket.IPPROTO_ICMPV6, 64, frm, to) + message


def icmp_error(src, dst, kind, code, offender=None):
    """An ICMP error (type 3 "destination unreachable", code 3 "port"...)
    quoting a UDP datagram from src to dst ((address, port) each, IPv4): its
    IP header and the first 8 bytes, its UDP header, as a router's or
    host's kernel quotes it.  With an offender (an IPv4 address): behind an
    IP header from it to src, for a raw socket with IP_HDRINCL (the kernel
    fills in the length, id and checksum), so that the guest's error queue
    names it (SO_EE_OFFENDER)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    head = struct.pack("!BBHI", kind, code, 0, 0)
    body = ip + udp
    message = struct.pack("!BBHI", kind, code, _checksum(head + body), 0) + body
    if offender is None:
        return message
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, socket.IPPROTO_ICMP, 0,
                       socket.inet_aton(offender), socket.inet_aton(src[0])) + message


EE_SIZE = 16                     # struct sock_extended_err; SO_EE_OFFENDER's sockaddr follows


def _queued_errors(host):
    """(origin, type, code, offender) of each error in a host socket's error
    queue, which is emptied (a queue left full would keep poll saying
    POLLERR); offender: the address of who sent it, or None."""
    out = []
    while True:
        try:
            _, anc, _, _ = host.recvmsg(1, 512, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except OSError:
            return out
        for _, _, data in anc:
            if len(data) >= 8:
                _, origin, kind, code = struct.unpack_from("=IBBB", data)
                out.append((origin, kind, code, _offender(data[EE_SIZE:])))


def _offender(raw):
    """The address of SO_EE_OFFENDER's sockaddr, or None (AF_UNSPEC)."""
    family = struct.unpack_from("=H", raw)[0] if len(raw) >= 2 else 0
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


class Relay:
    """The outbound helper's side: what it polls and what it does on each
    event.  register/unregister: the helper's poller's."""

    def __init__(self, register, unregister):
        self.register, self.unregister = register, unregister
        self.inside = {}        # fd -> (socket bound to ADDRESS:PORT inside, (ADDRESS, PORT))
        self.flows = {}         # (inside fd, guest address) -> host socket
        self.upstream = {}      # host fd -> (host socket, inside socket, guest address)
        self.used = {}          # host fd -> when it last carried a datagram
        self.swept = time.monotonic()
        self.icmp = None        # a raw ICMP socket of the sandbox's namespace, or None
        self.icmp6 = None       # a raw ICMPv6 one, or None

    def add(self, fd, address, port):
        self.inside[fd] = (socket.socket(fileno=fd), (address, port))
        self.register(fd)

    def handles(self, fd):
        return fd in self.inside or fd in self.upstream

    def busy(self):
        return bool(self.upstream)

    def event(self, fd):
        try:
            if fd in self.inside:
                self._out(fd)
            else:
                self._back(fd)
        except OSError:
            pass                # a datagram lost, as UDP may lose it

    def _out(self, fd):
        inside, dest = self.inside[fd]
        data, guest = inside.recvfrom(DATAGRAM_MAX, socket.MSG_DONTWAIT)
        host = self.flows.get((fd, guest))
        if host is None:
            host = self._flow(fd, inside, dest, guest)
        self.used[host.fileno()] = time.monotonic()
        host.send(data)

    def _flow(self, fd, inside, dest, guest):
        if len(self.flows) >= FLOWS_MAX:
            self._close(min(self.used, key=self.used.get))
        v6 = ":" in dest[0]
        host = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, HOST_SOCKET)
        try:
            host.setsockopt(socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP, IPV6_RECVERR if v6 else IP_RECVERR, 1)
            host.connect(dest)
        except OSError:
            host.close()
            raise
        self.flows[(fd, guest)] = host
        self.upstream[host.fileno()] = (host, inside, guest)
        self.register(host.fileno())
        return host

    def _back(self, fd):
        host, inside, guest = self.upstream[fd]
        for origin, kind, code, offender in _queued_errors(host):
            if kind in PASSED_ON.get(origin, ()) and (kind, code) != FRAG_NEEDED:
                self._icmp(inside, guest, kind, code, offender)
        try:
            data = host.recv(DATAGRAM_MAX, socket.MSG_DONTWAIT)
        except OSError:
            return                  # nothing, or the error just passed on
        self.used[fd] = time.monotonic()
        inside.sendto(data, guest)

    def _icmp(self, inside, guest, kind, code, offender=None):
        """The destination, or a router on the way, answered with an ICMP
        error (port or host unreachable, a firewall's rejection, time
        exceeded...): the sandbox's kernel gets the same type and code,
        quoting the guest's datagram (from guest to the relay's address), and
        tells the guest's socket as a host's kernel would (a connected
        socket the "hard" errors, a socket with IP_RECVERR all of them),
        from the offender's address where the raw socket lets the relay
        write the IP header (the Sentry set IP_HDRINCL at set-up)."""
        dest = inside.getsockname()
        if ":" in dest[0]:
            if self.icmp6 is not None:
                offender = offender if _hdrincl(self.icmp6) and offender and ":" in offender else None
                self.icmp6.sendto(icmp6_error(guest, dest, kind, code, offender), (guest[0], 0, 0, guest[3]))
        elif self.icmp is not None:
            offender = offender if _hdrincl(self.icmp) and offender and ":" not in offender else None
            self.icmp.sendto(icmp_error(guest, dest, kind, code, offender), (guest[0], 0))

    def expire(self):
        now = time.monotonic()
        if now - self.swept < IDLE / 4:
            return
        self.swept = now
        for fd in [f for f, t in self.used.items() if now - t > IDLE]:
            self._close(fd)

    def _close(self, fd):
        host, inside, guest = self.upstream.pop(fd)
        self.flows.pop((inside.fileno(), guest), None)
        self.used.pop(fd, None)
        self.unregister(fd)
        host.close()
