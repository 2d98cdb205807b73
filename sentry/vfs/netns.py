"""The sandbox's network namespace as the namespace helper (vfs/mountns.py)
builds and changes it, by rtnetlink requests on a socket of its own there:
`lo` up, addresses, `eth0` and its gateway, and the link changes a guest
root may make on its own interfaces (up/down, MTU: sentry/net/links.py
decides which).

`eth0` (--network=sandbox) is one end of a veth pair whose other end, the
gateway, lives in a second network namespace the helper holds and nothing
else joins: it has the gateway's address, no other interface and no route
anywhere, so whatever the guest sends out of eth0 stops there.  It forwards
(an empty routing table): for any address beyond it, it answers ICMP
"network unreachable", as a router with no route does, so that a connected
UDP socket learns ENETUNREACH at its next call; to the gateway's own
address it answers ARP, pings, and RST.  The addresses are QEMU user networking's (slirp's),
documented there for decades: 10.0.2.15/24, gateway 10.0.2.2, and the MACs
slirp gives them.  Outbound TCP does not take this way: the Sentry makes
those connections on the host (net/outbound.py).

The helper holds the namespace (and, unprivileged, the user namespace that
owns it): it alone has CAP_NET_ADMIN over it.  The guest has none (by
design: docs/design.md, Network), so what it may change goes through here,
as a request the helper writes itself from checked values, never the
guest's own bytes.
"""
import errno
import ipaddress
import os
import socket
import struct

NETLINK_ROUTE = 0
HDR = struct.Struct("=IHHII")            # struct nlmsghdr
NLA = struct.Struct("=HH")               # struct nlattr
IFINFO = struct.Struct("=BBHiII")        # struct ifinfomsg
IFADDR = struct.Struct("=BBBBI")         # struct ifaddrmsg
RTMSG = struct.Struct("=BBBBBBBBI")      # struct rtmsg
NLMSG_ERROR, NLMSG_MIN_TYPE = 2, 0x10
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 18, 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC = 1, 4, 5, 7
RT_TABLE_MAIN, RT_TABLE_LOCAL, RTPROT_BOOT, RTN_UNICAST, RTN_LOCAL = 254, 255, 3, 1, 2
IFF_UP, IFF_RUNNING = 1, 0x40
RT_SCOPE_UNIVERSE, RT_SCOPE_HOST = 0, 254

ETH0 = ipaddress.ip_interface("10.0.2.15/24")
GATEWAY = ipaddress.ip_interface("10.0.2.2/24")
ETH0_MAC, GATEWAY_MAC = bytes.fromhex("525400123456"), bytes.fromhex("52550a000202")


def align(n):
    return (n + 3) & ~3


def attr(kind, payload):
    """One netlink attribute, padded."""
    n = NLA.size + len(payload)
    return NLA.pack(n, kind) + payload + b"\0" * (align(n) - n)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace the helper is in when it makes
    it, and requests on it, one at a time, each acked."""

    def __init__(self, sock=None):
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.seq = 0

    def request(self, kind, body, flags=0):
        """0, or the errno the kernel answers."""
        return self._talk(kind, body, NLM_F_ACK | flags)[0]

    def _talk(self, kind, body, flags):
        """(errno, the answer's body): an ack's errno (0), or the body of
        the first message of another kind that answers the request."""
        self.seq += 1
        self.sock.send(HDR.pack(HDR.size + len(body), kind, NLM_F_REQUEST | flags, self.seq, 0) + body)
        while True:
            reply = self.sock.recv(65536)
            off = 0
            while len(reply) - off >= HDR.size:
                length, typ, _, seq, _ = HDR.unpack_from(reply, off)
                if length < HDR.size:
                    break
                if seq == self.seq:
                    if typ == NLMSG_ERROR:
                        err, = struct.unpack_from("=i", reply, off + HDR.size)
                        return -err, b""
                    return 0, reply[off + HDR.size:off + length]
                off += align(length)

    def index_of(self, name):
        """The index of interface `name` here (ip link show NAME)."""
        return IFINFO.unpack_from(self._link(name))[3]

    def running(self, name):
        """Whether interface `name` is up and has its carrier (IFF_RUNNING)."""
        return bool(IFINFO.unpack_from(self._link(name))[4] & IFF_RUNNING)

    def _link(self, name):
        err, body = self._talk(RTM_GETLINK, IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0)
                               + attr(IFLA_IFNAME, name.encode() + b"\0"), 0)
        if err or len(body) < IFINFO.size:
            raise OSError(err or errno.EIO, f"no interface {name}")
        return body

    def close(self):
        self.sock.close()


def set_link(rtnl, index, up=None, mtu=None):
    """`ip link set` of interface `index`: up (True), down (False), and/or
    its MTU; 0 or the kernel's errno."""
    change = IFF_UP if up is not None else 0
    body = IFINFO.pack(socket.AF_UNSPEC, 0, 0, index, IFF_UP if up else 0, change)
    if mtu is not None:
        body += attr(IFLA_MTU, struct.pack("=I", mtu))
    return rtnl.request(RTM_NEWLINK, body)


def add_address(rtnl, index, ip, prefix, scope=RT_SCOPE_UNIVERSE, broadcast=True, flags=0):
    """`ip addr add ip/prefix [brd +] dev index` (ip: an ipaddress address;
    an IPv4 one shorter than /31 gets its subnet's broadcast address, as
    DHCP clients give it, unless not `broadcast`; flags: ifa_flags); an
    address already there is no error."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    raw = ip.packed
    body = IFADDR.pack(family, prefix, flags, scope, index) + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    if broadcast and ip.version == 4 and prefix < 31:
        body += attr(IFA_BROADCAST, ipaddress.ip_interface(f"{ip}/{prefix}").network.broadcast_address.packed)
    _created(rtnl.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL))


# What a guest root may put on lo of a network namespace it made (bwrap
# --unshare-net, `ip addr add 127.0.0.1/8 dev lo`): a loopback address,
# at universe or host scope, with no flag or IFA_F_PERMANENT.
LOOPBACK_SCOPES = (RT_SCOPE_UNIVERSE, RT_SCOPE_HOST)
LOOPBACK_IFA_FLAGS = (0, 0x80)


def loopback_address(text, prefix):
    """(the address, prefix) if `text`/`prefix` is a loopback address a
    guest may add (IPv4 in 127.0.0.0/8 at /8 to /32, or ::1/128), else
    (None, None)."""
    try:
        ip = ipaddress.ip_address(text)
    except (ValueError, TypeError):
        return None, None
    if type(prefix) is not int or not ip.is_loopback \
            or not (8 <= prefix <= 32 if ip.version == 4 else prefix == 128):
        return None, None
    return ip, prefix


def add_default_route(rtnl, gateway, index):
    """`ip route add default via gateway dev index` (IPv4); one already
    there is no error."""
    body = RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) \
        + attr(RTA_GATEWAY, gateway.packed) + attr(RTA_OIF, struct.pack("=i", index))
    _created(rtnl.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL))


def add_local_route(rtnl, ip, source, index):
    """`ip route add local IP/32 dev INDEX src SOURCE table local` (IPv4; for
    IPv6 IP/128 and no source: SOURCE None): IP becomes the sandbox's own for
    what it receives (a socket may bind it; an IPv6 one with IPV6_FREEBIND,
    as IPv6 checks interface addresses) without being an interface's address
    (`ip addr` does not list it), and what the sandbox sends there leaves
    from SOURCE, as it would by eth0.  One already there is no error."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    body = RTMSG.pack(family, ip.max_prefixlen, 0, 0, RT_TABLE_LOCAL, RTPROT_BOOT, RT_SCOPE_HOST, RTN_LOCAL, 0) \
        + attr(RTA_DST, ip.packed) + (attr(RTA_PREFSRC, source.packed) if source is not None else b"") \
        + attr(RTA_OIF, struct.pack("=i", index))
    _created(rtnl.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL))


def add_veth(rtnl, name, mac, peer_name, peer_mac, peer_netns, indexes=(0, 0)):
    """`ip link add NAME index I address MAC type veth peer name PEER_NAME
    index J address PEER_MAC netns PEER_NETNS` (an fd on that namespace;
    (I, J) = indexes, 0 for the kernel's choice)."""
    peer = IFINFO.pack(socket.AF_UNSPEC, 0, 0, indexes[1], 0, 0) + attr(IFLA_IFNAME, peer_name.encode() + b"\0") \
        + attr(IFLA_ADDRESS, peer_mac) + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns))
    info = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))
    body = IFINFO.pack(socket.AF_UNSPEC, 0, 0, indexes[0], 0, 0) + attr(IFLA_IFNAME, name.encode() + b"\0") \
        + attr(IFLA_ADDRESS, mac) + attr(IFLA_LINKINFO, info)
    return rtnl.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)


def _created(err):
    if err and err != errno.EEXIST:
        raise OSError(err, os.strerror(err))


# ---- /proc/net/sockstat: the Sentry's own sockets left out ------------------------

SOCKSTAT_FILES = ("sockstat", "sockstat6")
# the counts the Sentry's own sockets of the namespace add to (made at set-up:
# the UDP relays' pool, the relay's raw ICMP sockets, the helper's netlink socket)
SET_UP_COUNTS = (("sockets", "used"), ("RAW", "inuse"), ("RAW6", "inuse"))


def sockstat_counts(texts):
    """{(protocol, field): value} of /proc/net/sockstat and sockstat6 texts."""
    counts = {}
    for text in texts:
        for line in text.splitlines():
            proto, _, rest = line.partition(":")
            words = rest.split()
            for field, value in zip(words[::2], words[1::2]):
                if value.isdigit():
                    counts[(proto, field)] = int(value)
    return counts


def sockstat_shown(text, hidden):
    """A sockstat file's text with the counts `hidden` ({(protocol, field):
    n}) taken off: what the guest's own sockets make, as a namespace without
    the Sentry's would show (never below 0)."""
    out = []
    for line in text.splitlines(keepends=True):
        proto, colon, rest = line.partition(":")
        words = rest.split(" ")
        field = None
        for i, word in enumerate(words):
            n = hidden.get((proto, field)) if word.strip().isdigit() else None
            if n:
                end = "\n" if word.endswith("\n") else ""
                words[i] = str(max(0, int(word) - n)) + end
            field = word
        out.append(proto + colon + " ".join(words) if colon else line)
    return "".join(out)
