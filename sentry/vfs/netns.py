"""The sandbox's network namespace as the namespace helper (vfs/mountns.py)
builds and changes it, by rtnetlink requests on a socket of its own there:
`lo` up, addresses, and the link changes a guest root may make on its own
interfaces (up/down, MTU: sentry/net/links.py decides which).

The helper holds the namespace (and, unprivileged, the user namespace that
owns it): it alone has CAP_NET_ADMIN over it.  The guest has none (by
design: docs/design.md, Network), so what it may change goes through here,
as a request the helper writes itself from checked values, never the
guest's own bytes.
"""
import errno
import os
import socket
import struct

NETLINK_ROUTE = 0
HDR = struct.Struct("=IHHII")            # struct nlmsghdr
NLA = struct.Struct("=HH")               # struct nlattr
IFINFO = struct.Struct("=BBHiII")        # struct ifinfomsg
IFADDR = struct.Struct("=BBBBI")         # struct ifaddrmsg
NLMSG_ERROR, NLMSG_MIN_TYPE = 2, 0x10
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
RTM_NEWLINK, RTM_NEWADDR = 16, 20
IFLA_IFNAME, IFLA_MTU = 3, 4
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 1
RT_SCOPE_HOST = 254


def align(n):
    return (n + 3) & ~3


def attr(kind, payload):
    """One netlink attribute, padded."""
    n = NLA.size + len(payload)
    return NLA.pack(n, kind) + payload + b"\0" * (align(n) - n)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace the helper is in when it makes
    it, and requests on it, one at a time, each acked."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.seq = 0

    def request(self, kind, body, flags=0):
        """0, or the errno the kernel answers."""
        self.seq += 1
        self.sock.send(HDR.pack(HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + body)
        while True:
            reply = self.sock.recv(65536)
            off = 0
            while len(reply) - off >= HDR.size:
                length, typ, _, seq, _ = HDR.unpack_from(reply, off)
                if length < HDR.size:
                    break
                if typ == NLMSG_ERROR and seq == self.seq:
                    err, = struct.unpack_from("=i", reply, off + HDR.size)
                    return -err
                off += align(length)

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


def add_address(rtnl, index, ip, prefix, scope=0):
    """`ip addr add ip/prefix dev index` (ip: an ipaddress address); an
    address already there is no error."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    raw = ip.packed
    body = IFADDR.pack(family, prefix, 0, scope, index) + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    err = rtnl.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)
    if err and err != errno.EEXIST:
        raise OSError(err, os.strerror(err))
