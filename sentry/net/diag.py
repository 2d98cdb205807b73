"""sock_diag dumps (ss) list the sandbox's outbound connections too.

`ss -t` asks the kernel over a NETLINK_SOCK_DIAG socket: a SOCK_DIAG_BY_FAMILY
dump request per family, answered by the sandbox's namespace from its own
sockets only -- an outbound connection is a host socket (net/outbound.py),
so it is not among them.  Where outbound connections exist (--network=sandbox),
a guest's sock_diag socket gets traps on its reads (kernel/fdtraps.py), its
TCP dump requests are noted when they are sent (sendmsg/sendto naming the
kernel), and the datagram that ends such a dump (NLMSG_DONE) is received with
one message per outbound socket of the family and states asked for put before
the end: its name the sandbox's (net/hostsock.py Names), its state, queues,
timer, uid and inode the host kernel's (the host's /proc/net/tcp line, as
Names.proc_net shows them).  A reader that first peeks at the datagram's
length (MSG_PEEK|MSG_TRUNC, as iproute2 does) is told the longer length.
What is added is built by the Sentry from its own tables: nothing of the
guest's buffer is trusted but the kernel's own reply, read back after the
kernel wrote it.  Not added: an answer to a request with a bytecode filter
(`ss dst ...`: the kernel's filter language is not run here) or one asking
for extensions (`ss -i`, `-m`: only the core message), and a datagram the
reader's buffer has no room for.
"""
import socket
import struct

NLMSG_DONE, SOCK_DIAG_BY_FAMILY = 3, 20
NLM_F_MULTI, NLM_F_DUMP = 0x2, 0x300
NLMSG = struct.Struct("<IHHII")               # nlmsghdr
REQ_V2 = struct.Struct("<BBBxI")              # inet_diag_req_v2 up to idiag_states
REQ_SIZE = REQ_V2.size + 48                    # and its inet_diag_sockid
REQUEST_MAX = NLMSG.size + REQ_SIZE            # what a send is read for
IPPROTO_TCP = 6
TABLES = {socket.AF_INET: "tcp", socket.AF_INET6: "tcp6"}


def note_request(kernel, ino, data):
    """A send on sock_diag socket ino (data: its bytes): remember a plain
    TCP dump request (the last one wins), forget any other."""
    pending = _pending(kernel)
    pending.pop(ino, None)
    if len(data) < NLMSG.size + REQ_SIZE:
        return
    length, kind, flags, _, _ = NLMSG.unpack_from(data)
    if kind != SOCK_DIAG_BY_FAMILY or flags & NLM_F_DUMP != NLM_F_DUMP or length != NLMSG.size + REQ_SIZE:
        return                                 # attributes (a bytecode filter): not run here
    family, proto, ext, states = REQ_V2.unpack_from(data, NLMSG.size)
    if proto == IPPROTO_TCP and family in TABLES and not ext:
        pending[ino] = (family, states)


def _pending(kernel):
    got = getattr(kernel, "diag_requests", None)
    if got is None:
        got = kernel.diag_requests = {}
    return got


def extra(kernel, ino, received):
    """The messages to put before the NLMSG_DONE that ends `received` (the
    datagram the kernel gave sock_diag socket ino), and where: (offset,
    bytes), or None when there is nothing to add."""
    names = kernel.outbound_names
    request = _pending(kernel).get(ino)
    if request is None or names is None:
        return None
    at = _done_at(received)
    if at is None:
        return None
    _, _, _, seq, pid = NLMSG.unpack_from(received, at)
    family, states = request
    out = b"".join(_message(seq, pid, family, entry) for entry in names.diag_entries(TABLES[family])
                   if states & (1 << entry[1]))
    return (at, out) if out else None


def done(kernel, ino):
    """The dump's end was delivered: its request is answered."""
    _pending(kernel).pop(ino, None)


def _done_at(data):
    at = 0
    while at + NLMSG.size <= len(data):
        length, kind, _, _, _ = NLMSG.unpack_from(data, at)
        if length < NLMSG.size or at + length > len(data):
            return None
        if kind == NLMSG_DONE:
            return at
        at += (length + 3) & ~3
    return None


def _message(seq, pid, family, entry):
    """One inet_diag_msg for an outbound socket (entry: Names.diag_entries')."""
    local, state, timer, retrans, remote, rqueue, wqueue, uid, inode = entry
    (src, sport), (dst, dport) = local, remote
    body = struct.pack("<BBBB", family, state, timer, retrans) + struct.pack(">HH", sport, dport) \
        + src.ljust(16, b"\0") + dst.ljust(16, b"\0") + struct.pack("<III", 0, 0, 0) \
        + struct.pack("<IIIII", 0, rqueue, wqueue, uid, inode)
    return NLMSG.pack(NLMSG.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, seq, pid) + body
