"""DNS for --network=sandbox: the sandbox's resolvers are relayed, at their
own addresses, inside the sandbox's network namespace.

Name resolution needs UDP to a resolver, and the guest's UDP never leaves
its namespace (a host UDP socket in the guest's table could be made to send
anywhere by a thread swapping fds, see docs/design.md).  So, as Docker's
embedded DNS does, a resolver comes to the sandbox instead:

  - The resolvers are those of the host's /etc/resolv.conf (the host's
    administrator chose them: 127.0.0.53 of systemd-resolved, a VPC's
    resolver...), or the --dns addresses instead; the guest's own
    /etc/resolv.conf names them (with the default root it is the host's).
  - For each, the namespace helper adds the address to the sandbox's `lo`
    (a /32 or /128; loopback ones are there already) and the Sentry binds a
    UDP socket of the sandbox's namespace to ADDRESS:53.  A guest's query is
    then an ordinary datagram on its own loopback: nothing is trapped, and
    the answer comes from the address the guest asked (glibc checks that).
  - The outbound helper (net/outbound.py) relays: a datagram that parses as
    a DNS query (header, QR 0, opcode QUERY, one question at least, at most
    MAX_QUERY bytes) goes to that resolver's port 53, from host UDP sockets
    the Sentry made connected to it (a few, for source-port entropy) under
    a fresh random id; an answer (QR 1) for a known id goes back, with the
    guest's id, to the address that asked.  Nothing else crosses: not
    another port, not another address, not a datagram that is no query.
  - Over TCP (an answer too long for UDP), a resolver outside the host is
    reached as any outbound connection (--net-allow); a loopback one is not
    (the host's loopback stays out of reach): the guest keeps the truncated
    answer.

The relay does not apply --net-allow to the resolvers: they are the host's,
or named on sentry's command line; `--dns none` turns the relay off.
"""
import ipaddress
import os
import socket
import struct
import time

PORT = 53
MAX_QUERY = 4096
SOCKETS_PER_RESOLVER = 4
PENDING_MAX = 4096              # queries in flight; the oldest give way
PENDING_TTL = 15.0              # seconds an unanswered query is remembered


def nameservers(text):
    """The resolvers a resolv.conf names (IPv4 and IPv6, scope ids
    dropped: a link-local resolver cannot be placed in the sandbox)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ip = ipaddress.ip_address(parts[1])
            except ValueError:
                continue
            if ip.is_link_local or ip.is_unspecified or ip.is_multicast:
                continue
            if ip not in out:
                out.append(ip)
    return out


def host_nameservers(path="/etc/resolv.conf"):
    try:
        with open(path) as f:
            return nameservers(f.read())
    except OSError:
        return []


def parse_dns_option(values):
    """--dns values: None (the host's resolvers), [] (`none`), or addresses."""
    if not values:
        return None
    if values == ["none"]:
        return []
    out = []
    for v in values:
        ip = ipaddress.ip_address(v)            # ValueError: the caller's message
        if ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            raise ValueError(v)
        if ip not in out:
            out.append(ip)
    return out


def set_up(mountns, resolvers):
    """In the Sentry, before it confines itself: the relay's sockets, as a
    list of (resolver, inside socket fd, [host socket fds]).  The inside
    socket is the sandbox namespace's UDP socket bound to RESOLVER:53; the
    host ones are connected to the resolver."""
    out = []
    for ip in resolvers:
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        if not ip.is_loopback:
            mountns.add_address(str(ip))
        inside = socket.socket(fileno=mountns.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC))
        hosts = []
        try:
            inside.bind((str(ip), PORT))
            for _ in range(SOCKETS_PER_RESOLVER):
                h = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                hosts.append(h)
                h.connect((str(ip), PORT))
        except OSError:
            inside.close()
            for h in hosts:
                h.close()
            raise
        out.append((ip, inside.detach(), [h.detach() for h in hosts]))
    return out


def is_query(data):
    if not 12 <= len(data) <= MAX_QUERY:
        return False
    flags, qdcount = struct.unpack_from(">HH", data, 2)
    return not flags & 0x8000 and (flags >> 11) & 0xF == 0 and qdcount >= 1


class Relay:
    """The helper's side: what it polls and what it does on each event."""

    def __init__(self):
        self.inside = {}        # fd -> socket bound inside the sandbox
        self.upstream = {}      # fd -> (host socket, its inside socket)
        self.by_resolver = {}   # inside fd -> [host sockets]
        self.pending = {}       # (host fd, new id) -> (inside socket, guest address, guest id, when)
        self.turn = 0

    def add(self, inside_fd, host_fds):
        s = socket.socket(fileno=inside_fd)
        self.inside[inside_fd] = s
        hosts = [socket.socket(fileno=fd) for fd in host_fds]
        self.by_resolver[inside_fd] = hosts
        for h in hosts:
            self.upstream[h.fileno()] = (h, s)

    def fds(self):
        return list(self.inside) + list(self.upstream)

    def handles(self, fd):
        return fd in self.inside or fd in self.upstream

    def event(self, fd):
        try:
            if fd in self.inside:
                self._query(self.inside[fd])
            else:
                self._answer(*self.upstream[fd])
        except OSError:
            pass                # a datagram lost, as UDP may lose it

    def _query(self, inside):
        data, guest = inside.recvfrom(MAX_QUERY + 1, socket.MSG_DONTWAIT)
        if not is_query(data):
            return
        hosts = self.by_resolver[inside.fileno()]
        self.turn += 1
        host = hosts[self.turn % len(hosts)]
        self._expire()
        for _ in range(8):
            new = struct.unpack("<H", os.urandom(2))[0]
            if (host.fileno(), new) not in self.pending:
                break
        else:
            return
        self.pending[(host.fileno(), new)] = (inside, guest, data[:2], time.monotonic())
        host.send(struct.pack(">H", new) + data[2:])

    def _answer(self, host, inside):
        data = host.recv(65536, socket.MSG_DONTWAIT)
        if len(data) < 12 or not data[2] & 0x80:
            return
        new, = struct.unpack_from(">H", data)
        entry = self.pending.pop((host.fileno(), new), None)
        if entry is None:
            return
        _, guest, gid, _ = entry
        inside.sendto(gid + data[2:], guest)

    def _expire(self):
        now = time.monotonic()
        if len(self.pending) >= PENDING_MAX or any(now - e[3] > PENDING_TTL for e in self.pending.values()):
            keep = sorted(self.pending.items(), key=lambda kv: kv[1][3])
            keep = [kv for kv in keep if now - kv[1][3] <= PENDING_TTL][-(PENDING_MAX - 1):]
            self.pending = dict(keep)
