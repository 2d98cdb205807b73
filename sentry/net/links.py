"""The link changes a guest root may make on the sandbox's own interfaces:
`ip link set lo up` (down, mtu N) -- by rtnetlink's RTM_NEWLINK (iproute2)
or by the SIOCSIFFLAGS and SIOCSIFMTU ioctls (busybox, ifconfig) -- and, in
a network namespace it made, a loopback address on its lo by RTM_NEWADDR
(`ip addr add 127.0.0.1/8 dev lo`, bubblewrap's --unshare-net).

The guest holds no capability over its network namespace (docs/design.md,
Network), so the kernel answers such a request EPERM.  A guest that holds
the emulated CAP_NET_ADMIN gets instead what Linux gives root in a network
namespace of its own.  By rtnetlink:

  1. The request must come by a trapped call that names the kernel
     (AF_NETLINK, port id 0) as its destination: sendmsg, sendmmsg, or
     sendto, as iproute2, libnl, libmnl and busybox send.  (write(2),
     send, and sendto without an address run untrapped; a sendmsg without
     one is not looked at, so that no other sendmsg pays for the look: the
     kernel's EPERM.)
  2. The buffer is walked as netlink_rcv_skb walks it.  Every message must
     be an allowed link change or one the kernel answers without acting on
     it (no NLM_F_REQUEST, a control type, a RTM_NEWLINK with no body); a
     link change is a well-formed RTM_NEWLINK on an interface of the
     sandbox's (by index, or by IFLA_IFNAME) that changes IFF_UP and/or
     sets IFLA_MTU, and nothing else.  Anything else -- another attribute,
     other flags, bytes the kernel would warn about, a rename -- leaves the
     whole call to the kernel (EPERM).
  3. The fd must be a NETLINK_ROUTE socket of the sandbox's namespace: the
     Sentry takes its own duplicate (pidfd_getfd) and from there on acts on
     that object only, never on the fd number a racing thread can dup2 over.
  4. The namespace helper, which owns the namespace, makes each change from
     the checked values (vfs/netns.py), never from the guest's bytes.
  5. The Sentry sends, on its duplicate, a buffer of the same length and
     layout in which each change is the same header without NLM_F_REQUEST
     and a zeroed body: netlink_rcv_skb acks such a message with error 0
     when NLM_F_ACK is set and sends nothing otherwise, so the kernel itself
     queues on the guest's socket the reply Linux gives (the ack's copy of
     the request header differs in that flag only).  It asks nothing of the
     Sentry's own credentials.  The call returns what that send returns.
"""
import errno
import fcntl
import os
import socket
import struct

from sentry.errors import SyscallError
from sentry.net.hostsock import namespace_of
from sentry.vfs.netns import (HDR, IFA_ADDRESS, IFA_LOCAL, IFADDR, IFF_UP, IFINFO, IFLA_IFNAME, IFLA_MTU,
                              LOOPBACK_IFA_FLAGS, LOOPBACK_SCOPES, NLA, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
                              NLM_F_REQUEST, NLMSG_MIN_TYPE, RTM_NEWADDR, RTM_NEWLINK, align, loopback_address)

CAP_NET_ADMIN = 12
AF_NETLINK, NETLINK_ROUTE = 16, 0
SO_PROTOCOL, SO_DOMAIN = 38, 39
SOCKADDR_NL = struct.Struct("=HHII")     # family, pad, pid, groups
MSG_DONTWAIT, MSG_NOSIGNAL = 0x40, 0x4000
MAX_REQUEST = 65536                      # larger buffers are the kernel's
IFNAMSIZ = 16


def maybe(kernel, head, total):
    """Whether a send of `total` bytes starting with `head` (its first
    HDR.size bytes, or fewer) can be a link change: a cheap look before the
    whole buffer is read and the fd borrowed."""
    if not getattr(kernel.mountns, "interfaces", None) or not HDR.size <= total <= MAX_REQUEST \
            or len(head) < HDR.size:
        return False
    length, kind, flags, _, _ = HDR.unpack_from(head)
    return HDR.size <= length <= total and (kind in (RTM_NEWLINK, RTM_NEWADDR) or kind < NLMSG_MIN_TYPE
                                            or not flags & NLM_F_REQUEST)


def plan(data, interfaces, addresses=False):
    """(the buffer to send instead, [("link", index, up, mtu) or ("addr",
    address, prefix, scope, flags)]) for a buffer of allowed changes and
    messages the kernel answers without acting (step 2 above; addresses:
    whether a loopback address on lo is one); None when the kernel must
    answer the buffer itself."""
    out = bytearray(len(data))
    changes = []
    off = 0
    while len(data) - off >= HDR.size:
        length, kind, flags, seq, pid = HDR.unpack_from(data, off)
        if length < HDR.size or length > len(data) - off:
            break                                  # the kernel stops there, silently
        if not flags & NLM_F_REQUEST or kind < NLMSG_MIN_TYPE or (kind == RTM_NEWLINK and length == HDR.size):
            pass                                   # acked (if asked) with 0, nothing done
        elif kind == RTM_NEWLINK:
            change = link_change(flags, data[off + HDR.size:off + length], interfaces)
            if change is None:
                return None
            changes.append(("link", *change))
            flags &= ~NLM_F_REQUEST
        elif kind == RTM_NEWADDR and addresses:
            change = address_change(flags, data[off + HDR.size:off + length], interfaces)
            if change is None:
                return None
            changes.append(("addr", *change))
            flags &= ~NLM_F_REQUEST
        else:
            return None
        HDR.pack_into(out, off, length, kind, flags, seq, pid)
        off += min(align(length), len(data) - off)
    return (bytes(out), changes) if changes else None


def link_change(flags, body, interfaces):
    """(index, up or None, mtu or None) for an RTM_NEWLINK body the Sentry
    may carry out as Linux would for root, else None."""
    if flags & ~(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE) or len(body) < IFINFO.size:
        return None
    family, _, _, index, ifflags, change = IFINFO.unpack_from(body)
    if family != socket.AF_UNSPEC or index < 0 or change not in (0, IFF_UP) or (change == 0 and ifflags):
        return None
    up = bool(ifflags & IFF_UP) if change else None
    name = mtu = None
    attributes = _attributes(body[IFINFO.size:])
    if attributes is None:
        return None
    for nla_type, value in attributes:
        if nla_type == IFLA_IFNAME:
            name = _ifname(value)
            if name is None:
                return None
        elif nla_type == IFLA_MTU and len(value) == 4:
            mtu, = struct.unpack("=I", value)
        else:
            return None                    # any other attribute, or a flag bit in its type
    if index > 0:
        by_index = [n for n, i in interfaces.items() if i == index]
        if not by_index or (name is not None and name != by_index[0]):
            return None                    # not the sandbox's, or a rename
    elif name in interfaces:
        index = interfaces[name]
    else:
        return None
    return index, up, mtu


def address_change(flags, body, interfaces):
    """(address text, prefix, scope, ifa_flags) for an RTM_NEWADDR body
    that puts a loopback address on lo, which the Sentry may carry out as
    Linux would for the namespace's root, else None."""
    if flags & ~(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL) or len(body) < IFADDR.size:
        return None
    family, prefix, ifa_flags, scope, index = IFADDR.unpack_from(body)
    if family not in (socket.AF_INET, socket.AF_INET6) or index != interfaces.get("lo") \
            or scope not in LOOPBACK_SCOPES or ifa_flags not in LOOPBACK_IFA_FLAGS:
        return None
    size = 4 if family == socket.AF_INET else 16
    values = {}
    for nla_type, value in _attributes(body[IFADDR.size:]) or [(None, None)]:
        if nla_type not in (IFA_LOCAL, IFA_ADDRESS) or len(value) != size or nla_type in values:
            return None                    # a label, a broadcast, flags, a peer, bytes left: not offered
        values[nla_type] = value
    if not values or len(set(values.values())) != 1:
        return None                        # no address, or a peer address unlike the local one
    text = socket.inet_ntop(family, next(iter(values.values())))
    ip, prefix = loopback_address(text, prefix)
    if ip is None:
        return None
    return str(ip), prefix, scope, ifa_flags


def _attributes(attrs):
    """[(type, value)] of a message's attributes as nla_for_each_attr walks
    them; None when bytes are left over (__nla_validate_parse's warning in
    the ack, which the Sentry does not make)."""
    found = []
    off, rem = 0, len(attrs)
    while rem >= NLA.size:
        nla_len, nla_type = NLA.unpack_from(attrs, off)
        if nla_len < NLA.size or nla_len > rem:
            break
        found.append((nla_type, attrs[off + NLA.size:off + nla_len]))
        off += align(nla_len)
        rem -= align(nla_len)
    return None if rem > 0 else found


def _ifname(value):
    """IFLA_IFNAME as iproute2 sends it: the name, its NUL optional."""
    if value.endswith(b"\0"):
        value = value[:-1]
    if not 0 < len(value) < IFNAMSIZ or b"\0" in value:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


def name_allowed(raw):
    """The destination of the send: none (the socket's own, the kernel: a
    guest cannot connect a route socket elsewhere without the capability),
    or the kernel named."""
    if not raw:
        return True
    if len(raw) < SOCKADDR_NL.size:
        return False
    family, _, pid, groups = SOCKADDR_NL.unpack_from(raw)
    return family == AF_NETLINK and pid == 0 and groups == 0


def send(call, fd, name, data, flags):
    """The result of sending `data` to `name` (raw sockaddr bytes, b"" for
    none) with `flags` on guest fd `fd`, when it is a link change the Sentry
    carries out; None when the kernel must answer the call itself."""
    kernel = call.kernel
    if not getattr(kernel.mountns, "interfaces", None) or flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL) \
            or not name_allowed(name):
        return None
    dup = kernel.borrow_fd(call.process, fd)
    try:
        with socket.socket(fileno=os.dup(dup)) as sock:
            ns = _route_socket_namespace(kernel, sock, dup)
            # an address only in a namespace the guest made: the sandbox's own are set up by sentry
            planned = plan(data, ns.interfaces, addresses=ns.fd is not None) if ns is not None else None
            if planned is None or not ns.capable(call.task.creds, CAP_NET_ADMIN):
                return None                # the kernel's EPERM, as for a process without the capability
            if len(data) > sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 32:
                return None                # EMSGSIZE before anything is done
            _bind_as_guest(call, sock)
            buf, changes = planned
            for what, *change in changes:
                try:
                    if what == "link":
                        kernel.mountns.set_link(*change, netns=ns.fd)
                    else:
                        kernel.mountns.add_loopback_address(ns.fd, *change)
                except OSError:
                    return None            # refused there: the kernel's answer (EPERM)
            try:
                return sock.send(buf, MSG_DONTWAIT)
            except OSError as e:
                raise SyscallError(e.errno or errno.EIO)
    finally:
        os.close(dup)


def _route_socket_namespace(kernel, sock, dup):
    """The network namespace (kernel/netns.py) of a route socket of the
    sandbox's, else None."""
    try:
        if sock.getsockopt(socket.SOL_SOCKET, SO_DOMAIN) != AF_NETLINK \
                or sock.getsockopt(socket.SOL_SOCKET, SO_PROTOCOL) != NETLINK_ROUTE:
            return None
    except OSError:
        return None                        # not a socket
    return namespace_of(kernel, dup)



def _bind_as_guest(call, sock):
    """A socket the guest never bound is bound by its first send, to the
    sender's tgid when that is free: the guest's, not the Sentry's (whose
    pid it must never see).  Else a negative port id, as the kernel's
    rover picks."""
    if sock.getsockname()[0] != 0:
        return
    rover = [-2**31 + int.from_bytes(os.urandom(4), "little") % (2**31 - 4096) for _ in range(8)]
    for portid in [call.process.tgid] + rover:
        try:
            sock.bind((portid & 0xFFFFFFFF, 0))
            return
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise SyscallError(e.errno or errno.EIO)
    raise SyscallError(errno.EADDRINUSE)


# ---- ioctl: SIOCSIFFLAGS, SIOCSIFMTU --------------------------------------------

SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU = 0x8913, 0x8914, 0x8922
IFREQ = struct.Struct("=16sh22x")          # struct ifreq: name, then ifr_flags / ifr_mtu
IFREQ_MTU = struct.Struct("=16si20x")
# what dev_change_flags takes from the caller (IFF_UP apart); promisc and
# allmulti as it counts them for lo and eth0, where nothing else sets them
IFF_CHANGEABLE = 0x2 | 0x4 | 0x20 | 0x80 | 0x100 | 0x200 | 0x1000 | 0x2000 | 0x4000 | 0x8000


def ioctl(call, req, arg):
    """SIOCSIFFLAGS / SIOCSIFMTU of a guest holding CAP_NET_ADMIN, on an
    interface of the sandbox's by its plain name, changing IFF_UP only (of
    the flags) or the MTU: 0 or -errno as Linux answers.  None: the kernel's
    answer (EPERM, as for a process without the capability)."""
    kernel = call.kernel
    if not getattr(kernel.mountns, "interfaces", None):
        return None
    raw = call.read(arg, IFREQ.size)
    name = raw[:IFNAMSIZ - 1].split(b"\0", 1)[0].decode("ascii", "replace")
    dup = kernel.borrow_fd(call.process, call.fd(0))
    try:
        with socket.socket(fileno=os.dup(dup)) as sock:
            # a host socket: EPERM from the kernel, whose namespace it names
            ns = namespace_of(kernel, dup)
            if ns is None or name not in ns.interfaces or not ns.capable(call.task.creds, CAP_NET_ADMIN):
                return None                # another name, an alias (lo:1), no capability: EPERM
            if req == SIOCSIFMTU:
                mtu = IFREQ_MTU.unpack(raw)[1]
                if mtu < 0:
                    raise SyscallError(errno.EINVAL)
                change = (None, mtu)
            else:
                new = IFREQ.unpack(raw)[1] & 0xFFFF
                got = fcntl.ioctl(sock, SIOCGIFFLAGS, IFREQ.pack(name.encode(), 0))
                if (IFREQ.unpack(got)[1] ^ new) & IFF_CHANGEABLE:
                    return None            # a flag other than IFF_UP: not offered
                change = (bool(new & IFF_UP), None)
    except OSError:
        raise SyscallError(errno.ENOTTY)   # not a socket: no such ioctl
    finally:
        os.close(dup)
    try:
        kernel.mountns.set_link(ns.interfaces[name], *change, netns=ns.fd)
    except OSError as e:
        raise SyscallError(e.errno or errno.EIO)
    return 0
