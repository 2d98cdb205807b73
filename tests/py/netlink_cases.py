"""Crafted RTM_NEWLINK requests on lo, each by one send call, then what
came back and what lo became.  Run natively (root in `unshare -rn`, lo up)
and in the sandbox (tests/test_links.py).

argv[1]: "allowed" (requests the sandbox carries out as Linux does) or
"refused" (requests it leaves to the kernel: EPERM in the sandbox).
Each line: case name, then the replies as (type, error, echoed type,
echoed seq) -- not the echoed flags (the sandbox's ack echoes the request
without NLM_F_REQUEST) -- then lo's MTU and whether it is up."""
import fcntl
import os
import socket
import struct
import sys

RTM_NEWLINK, RTM_NEWADDR, NLMSG_NOOP = 16, 20, 1
REQ, ACK, EXCL = 1, 4, 0x200
IFLA_IFNAME, IFLA_MTU, IFLA_TXQLEN = 3, 4, 13
IFF_UP, IFF_NOARP = 1, 0x80
KERNEL = (0, 0)


def msg(kind, flags, seq, body=b""):
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def ifi(index=1, flags=0, change=0):
    return struct.pack("=BBHiII", 0, 0, 0, index, flags, change)


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)


def mtu(m):
    return attr(IFLA_MTU, struct.pack("=I", m))


def name(n):
    return attr(IFLA_IFNAME, n + b"\0")


def lo_state():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16s24x", b"lo")
        m = struct.unpack_from("=i", fcntl.ioctl(s, 0x8921, req), 16)[0]       # SIOCGIFMTU
        f = struct.unpack_from("=h", fcntl.ioctl(s, 0x8913, req), 16)[0]       # SIOCGIFFLAGS
    return f"mtu={m} {'up' if f & IFF_UP else 'down'}"


def replies(s):
    out = []
    s.settimeout(0.3)
    while True:
        try:
            data = s.recv(65536)
        except socket.timeout:
            return out
        off = 0
        while len(data) - off >= 16:
            length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, off)
            if kind == 2:
                err, _, etype, _, eseq, _ = struct.unpack_from("=iIHHII", data, off + 16)
                out.append((kind, err, etype, eseq))
            else:
                out.append((kind, seq))
            off += (length + 3) & ~3 or len(data)


def sock(bound=True):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    if bound:
        s.bind((0, 0))
    return s


def by_sendmsg(s, chunks, addr=KERNEL):
    return s.sendmsg(chunks, [], 0, addr) if addr else s.sendmsg(chunks)


def by_sendmmsg(s, data):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(data, len(data))
    nl = ctypes.create_string_buffer(struct.pack("=HHII", 16, 0, 0, 0), 12)
    iov = (ctypes.c_uint64 * 2)(ctypes.addressof(buf), len(data))
    mm = ctypes.create_string_buffer(struct.pack("=QI4xQQQQI4xI4x", ctypes.addressof(nl), 12,
                                                 ctypes.addressof(iov), 1, 0, 0, 0, 0), 64)
    n = libc.sendmmsg(s.fileno(), mm, 1, 0)
    return n, struct.unpack_from("=I", mm.raw, 56)[0]


ALLOWED = [
    ("mtu", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 1, ifi() + mtu(1300))])),
    ("two-in-one", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 2, ifi() + mtu(1310))
                                            + msg(RTM_NEWLINK, REQ | ACK, 3, ifi(1, 0, IFF_UP))])),
    ("sendto-no-ack", lambda s: s.sendto(msg(RTM_NEWLINK, REQ, 4, ifi(1, IFF_UP, IFF_UP)), KERNEL)),
    ("noop-then-by-name", lambda s: by_sendmmsg(s, msg(NLMSG_NOOP, REQ | ACK, 5, b"xyz!")
                                                + msg(RTM_NEWLINK, REQ | ACK, 6, ifi(0) + name(b"lo") + mtu(1320)))),
    ("split-iov", lambda s: by_sendmsg(s, [(lambda m: [m[:3], m[3:21], m[21:]])(
        msg(RTM_NEWLINK, REQ | ACK, 7, ifi(1, 0, IFF_UP) + mtu(1330)))][0])),
    ("truncated-next", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 8, ifi() + mtu(1340))
                                                + struct.pack("=IHHII", 100, RTM_NEWLINK, REQ | ACK, 9, 0) + b"\0" * 4])),
    ("unbound", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 10, ifi(1, IFF_UP, IFF_UP) + mtu(1350))])),
    ("empty-newlink", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 11)])),
    ("back", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 12, ifi(1, IFF_UP, IFF_UP) + name(b"lo")
                                          + mtu(65536))])),
]

REFUSED = [
    ("leftover", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 21, ifi() + mtu(1400) + b"\x05\x00\x03")])),
    ("txqlen", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 22, ifi() + mtu(1400)
                                            + attr(IFLA_TXQLEN, struct.pack("=I", 10)))])),
    ("noarp", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 23, ifi(1, IFF_NOARP, IFF_NOARP | IFF_UP))])),
    ("rename", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 24, ifi(1) + name(b"lo2"))])),
    ("no-such-index", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 25, ifi(99) + mtu(1400))])),
    ("with-newaddr", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 26, ifi() + mtu(1400))
                                              + msg(RTM_NEWADDR, REQ | ACK, 27, struct.pack("=BBBBI", 2, 8, 0, 0, 1))])),
    ("excl", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK | EXCL, 28, ifi() + mtu(1400))])),
    ("to-a-port", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 29, ifi() + mtu(1400))], (12345, 0))),
    ("no-address", lambda s: by_sendmsg(s, [msg(RTM_NEWLINK, REQ | ACK, 30, ifi() + mtu(1400))], None)),
]


def main():
    for label, send in ALLOWED if sys.argv[1] == "allowed" else REFUSED:
        s = sock(bound=label != "unbound")
        s.setsockopt(270, 11, 1)                       # NETLINK_EXT_ACK, as iproute2
        try:
            sent = send(s)
        except OSError as e:
            sent = f"errno {e.errno}"
        got = replies(s)
        print(label, sent, got, lo_state(), flush=True)
        if label == "unbound":
            # bound by its first send, to a port id of its own (never 0)
            assert s.getsockname()[0] != 0 and all(r[0] == 2 for r in got)
        s.close()


if __name__ == "__main__":
    sys.exit(main())
