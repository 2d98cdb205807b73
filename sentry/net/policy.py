"""--net-allow: which destinations outside the sandbox a guest may connect to
(--network=sandbox).

Never, whatever the rules say: the host itself (any address the host's
routing table calls local or broadcast: its own addresses, 127/8, its
subnets' broadcast), loopback, link-local (169.254/16 with the cloud
metadata address 169.254.169.254, fe80::/10), unspecified and multicast
addresses.  Of the rest, everything by default; with --net-allow rules, only
what a rule names (CIDR, or CIDR:PORT; an IPv6 CIDR with a port in brackets:
[2001:db8::/32]:443).  IPv4-mapped IPv6 addresses are judged as IPv4."""
import errno
import ipaddress
import socket
import struct

NEVER = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fe80::/10", "ff00::/8")]


class BadRule(ValueError):
    pass


def parse_rule(spec):
    """(network, port or None) from CIDR[:PORT] / [CIDR6]:PORT."""
    text, port = spec, None
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise BadRule(spec)
        text, port = inner, rest[1:] or None
    elif text.count(":") == 1:
        text, port = text.split(":")
    try:
        net = ipaddress.ip_network(text, strict=False)
        if port is not None:
            port = int(port)
            if not 1 <= port <= 65535:
                raise ValueError
    except ValueError:
        raise BadRule(spec)
    return net, port


class Policy:
    def __init__(self, rules=()):
        self.rules = [parse_rule(r) for r in rules]

    def verdict(self, address, port):
        """None when the guest may connect to address:port, else why not."""
        ip = ipaddress.ip_address(address)
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in n for n in NEVER if n.version == ip.version):
            return "reserved"
        kind = route_type(ip)
        if kind != RTN_UNICAST:
            return "host" if kind in (RTN_LOCAL, RTN_BROADCAST) else "unroutable"
        if self.rules and not any(ip.version == n.version and ip in n and p in (None, port)
                                  for n, p in self.rules):
            return "not allowed"
        return None


NETLINK_ROUTE, RTM_NEWROUTE, RTM_GETROUTE, NLMSG_ERROR = 0, 24, 26, 2
NLM_F_REQUEST, RTA_DST = 1, 1
RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST = 1, 2, 3


def route_type(ip):
    """The host's routing decision for ip (ip route get): RTN_UNICAST for a
    destination reached through an interface, RTN_LOCAL for the host's own,
    RTN_BROADCAST...; None when there is no route."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    dst = ip.packed
    rta = struct.pack("HH", 4 + len(dst), RTA_DST) + dst
    rtm = struct.pack("BBBBBBBBI", family, len(dst) * 8, 0, 0, 0, 0, 0, 0, 0)
    body = rtm + rta
    msg = struct.pack("IHHII", 16 + len(body), RTM_GETROUTE, NLM_F_REQUEST, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as s:
        s.send(msg)
        reply = s.recv(65536)
    length, kind = struct.unpack_from("IH", reply)
    if kind == NLMSG_ERROR:
        return None
    if kind != RTM_NEWROUTE or length < 16 + 12:
        raise OSError(errno.EIO, "unexpected netlink reply")
    return reply[16 + 7]
