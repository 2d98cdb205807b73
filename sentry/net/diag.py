"""sock_diag dumps (ss) list the sandbox's outbound connections too.

`ss -t` asks the kernel over a NETLINK_SOCK_DIAG socket: a SOCK_DIAG_BY_FAMILY
dump request per family, answered by the sandbox's namespace from its own
sockets only -- an outbound connection is a host socket (net/outbound.py),
so it is not among them.  Where outbound connections exist (--network=sandbox),
a guest's sock_diag socket gets traps on its reads (kernel/fdtraps.py), its
TCP dump requests are noted when they are sent (sendmsg/sendto naming the
kernel), and the datagram that ends such a dump (NLMSG_DONE) is received with
one message per outbound socket of the family and states asked for put before
the end.  Each is the host kernel's own answer for that socket: the Sentry
dumps the host's sockets of that family and states with the extensions the
guest asked for (`ss -i`: tcp_info and the congestion control; `ss -m`: the
memory counters), keeps the messages of the sockets it handed over (by inode),
and gives each the sandbox's name (net/hostsock.py Names: 10.0.2.15 and the
port the sandbox holds) in place of the host's, with only the attributes that
describe the connection itself (not the host's cgroup, marks or keys).  A
request with a bytecode filter (`ss dport = :80`, `ss dst X`) has it run here
on that sandbox view, as the kernel's inet_diag_bc_run runs it on its own
sockets.  A reader that first peeks at the datagram's length
(MSG_PEEK|MSG_TRUNC, as iproute2 does) is told the longer length.  Nothing of
the guest's buffer is trusted but the kernel's own reply, read back after the
kernel wrote it.  Not added: a datagram the reader's buffer has no room for,
an answer to a request with attributes other than a bytecode filter or the
TCP protocol (BPF socket storage), or one larger than REQUEST_CAP.
"""
import socket
import struct

NLMSG_ERROR, NLMSG_DONE, SOCK_DIAG_BY_FAMILY = 2, 3, 20
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP = 0x1, 0x2, 0x300
NETLINK_SOCK_DIAG = 4
NLMSG = struct.Struct("<IHHII")               # nlmsghdr
NLA = struct.Struct("<HH")                    # nlattr
REQ_V2 = struct.Struct("<BBBxI")              # inet_diag_req_v2 up to idiag_states
REQ_SIZE = REQ_V2.size + 48                    # and its inet_diag_sockid
REQUEST_MAX = NLMSG.size + REQ_SIZE            # what a send is read for first
REQUEST_CAP = 1 << 16                          # what a request with a filter may take
MSG_SIZE = 72                                  # inet_diag_msg
INET_DIAG_REQ_BYTECODE, INET_DIAG_REQ_PROTOCOL = 1, 3
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
IPPROTO_TCP = 6
# the attributes that describe the connection alone: MEMINFO, INFO (tcp_info),
# VEGASINFO, CONG, TOS, TCLASS, SKMEMINFO, SHUTDOWN, CLASS_ID, PROTOCOL, SOCKOPT
KEPT_ATTRIBUTES = {1, 2, 3, 4, 5, 6, 7, 8, 17, 19, 22}
FAMILIES = (socket.AF_INET, socket.AF_INET6)


def request_length(head):
    """How many bytes of a send that starts with `head` note_request wants:
    a sock_diag dump request with attributes (a bytecode filter) is read
    whole, up to REQUEST_CAP; anything else its first REQUEST_MAX."""
    if len(head) < NLMSG.size:
        return REQUEST_MAX
    length, kind, _, _, _ = NLMSG.unpack_from(head)
    if kind == SOCK_DIAG_BY_FAMILY and REQUEST_MAX < length <= REQUEST_CAP:
        return length
    return REQUEST_MAX


def note_request(kernel, ino, data):
    """A send on sock_diag socket ino (data: its bytes): remember a TCP
    dump request (the last one wins), forget any other."""
    pending = _pending(kernel)
    pending.pop(ino, None)
    if len(data) < REQUEST_MAX:
        return
    length, kind, flags, _, _ = NLMSG.unpack_from(data)
    if kind != SOCK_DIAG_BY_FAMILY or flags & NLM_F_DUMP != NLM_F_DUMP or not REQUEST_MAX <= length <= len(data):
        return
    family, proto, ext, states = REQ_V2.unpack_from(data, NLMSG.size)
    bytecode = None
    for kind, value in _attributes(data[REQUEST_MAX:length]):
        if kind == INET_DIAG_REQ_BYTECODE:
            bytecode = value
        elif kind == INET_DIAG_REQ_PROTOCOL and len(value) == 4:
            proto = struct.unpack("<I", value)[0]
        else:
            return                             # not understood: nothing added
    if proto == IPPROTO_TCP and family in FAMILIES:
        pending[ino] = (family, states, ext, bytecode)


def _attributes(data):
    """(type, payload) of each netlink attribute of data; stops at the first
    malformed one (yields (None, b"") then, which no caller accepts)."""
    at = 0
    while at + NLA.size <= len(data):
        length, kind = NLA.unpack_from(data, at)
        if length < NLA.size or at + length > len(data):
            yield None, b""
            return
        yield kind & 0x3FFF, data[at + NLA.size:at + length]
        at += (length + 3) & ~3
    if at < len(data):
        yield None, b""


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
    if request is None or names is None or not names.by_ino:
        return None
    at = _done_at(received)
    if at is None:
        return None
    _, _, _, seq, pid = NLMSG.unpack_from(received, at)
    family, states, ext, bytecode = request
    out = []
    for msg, attrs in host_dump(family, states, ext):
        inode, = struct.unpack_from("<I", msg, 68)
        view = names.diag_view(inode)
        if view is None:
            continue                           # not a socket the Sentry handed over
        raw, auto = view
        msg = _renamed(msg, raw)
        if bytecode is not None and not run_bytecode(bytecode, _entry(msg, auto)):
            continue
        kept = b"".join(_pad(NLA.pack(NLA.size + len(v), k) + v) for k, v in attrs if k in KEPT_ATTRIBUTES)
        body = msg + kept
        out.append(NLMSG.pack(NLMSG.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, seq, pid) + body)
    return (at, b"".join(out)) if out else None


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


def _pad(b):
    return b + bytes(-len(b) % 4)


# ---- the host's answer ---------------------------------------------------------

def host_dump(family, states, ext):
    """[(inet_diag_msg bytes, [(attribute type, payload)])] of the host's
    TCP sockets of `family` in `states`, with extensions `ext`, as the
    host's kernel dumps them to the Sentry; [] when it cannot."""
    req = REQ_V2.pack(family, IPPROTO_TCP, ext, states) + bytes(40) + struct.pack("<II", INET_DIAG_NOCOOKIE,
                                                                                  INET_DIAG_NOCOOKIE)
    out = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG) as s:
            s.sendto(NLMSG.pack(NLMSG.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
                     + req, (0, 0))
            while True:
                data = s.recv(1 << 16)
                at = 0
                while at + NLMSG.size <= len(data):
                    length, kind, _, _, _ = NLMSG.unpack_from(data, at)
                    if length < NLMSG.size or at + length > len(data) or kind in (NLMSG_DONE, NLMSG_ERROR):
                        return out
                    body = data[at + NLMSG.size:at + length]
                    if kind == SOCK_DIAG_BY_FAMILY and len(body) >= MSG_SIZE:
                        attrs = list(_attributes(body[MSG_SIZE:]))
                        out.append((body[:MSG_SIZE], [a for a in attrs if a[0] is not None]))
                    at += (length + 3) & ~3
                if not data:
                    return out
    except OSError:
        return out


def _renamed(msg, raw):
    """inet_diag_msg `msg` with the sandbox's name `raw` (a sockaddr) as
    its local address and port, and no interface (a host index)."""
    msg = bytearray(msg)
    family, = struct.unpack_from("<H", raw)
    addr = raw[4:8] if family == socket.AF_INET else raw[8:24]
    msg[4:6] = raw[2:4]
    msg[8:24] = addr.ljust(16, b"\0")
    msg[40:44] = bytes(4)
    return bytes(msg)


# ---- the kernel's filter language (inet_diag_bc_run), on the sandbox's view -----

BC_NOP, BC_JMP, BC_S_GE, BC_S_LE, BC_D_GE, BC_D_LE, BC_AUTO, BC_S_COND, BC_D_COND, \
    BC_DEV_COND, BC_MARK_COND, BC_S_EQ, BC_D_EQ, BC_CGROUP_COND = range(14)
OP = struct.Struct("<BBH")                     # inet_diag_bc_op: code, yes, no
HOSTCOND = struct.Struct("<BBxxi")             # inet_diag_hostcond: family, prefix_len, port


def _entry(msg, auto):
    """What the filter looks at of a socket (inet_diag_entry)."""
    family = msg[0]
    sport, dport = struct.unpack_from(">HH", msg, 4)
    n = 4 if family == socket.AF_INET else 16
    return {"family": family, "sport": sport, "dport": dport, "saddr": msg[8:8 + n],
            "daddr": msg[24:24 + n], "ifindex": 0, "auto": auto, "mark": 0}


def run_bytecode(bc, entry):
    """Whether the socket `entry` passes filter `bc`, as the kernel decides
    it.  The kernel has checked the program before it ran it on its own
    sockets (an ill-formed one fails the whole dump); here, every read is
    bounded and every step must move forward, so any bytes end."""
    at, end = 0, len(bc)
    while at < end:
        if at + OP.size > end:
            return False
        code, yes_step, no_step = OP.unpack_from(bc, at)
        arg = bc[at + OP.size:]
        yes = _test(code, arg, entry)
        if yes is None:
            return False
        step = yes_step if yes else no_step
        if step < OP.size:
            return False
        at += step
    return at == end


def _u16_arg(arg):
    return struct.unpack_from("<BBH", arg)[2] if len(arg) >= OP.size else None


def _test(code, arg, e):
    """One operation's outcome (True: go `yes`), None when it cannot be read."""
    if code == BC_NOP:
        return True
    if code == BC_JMP:
        return False
    if code in (BC_S_GE, BC_S_LE, BC_S_EQ, BC_D_GE, BC_D_LE, BC_D_EQ):
        port = e["sport"] if code in (BC_S_GE, BC_S_LE, BC_S_EQ) else e["dport"]
        v = _u16_arg(arg)
        if v is None:
            return None
        return port >= v if code in (BC_S_GE, BC_D_GE) else port <= v if code in (BC_S_LE, BC_D_LE) else port == v
    if code == BC_AUTO:
        return e["auto"]
    if code in (BC_S_COND, BC_D_COND):
        return _hostcond(code == BC_S_COND, arg, e)
    if code == BC_DEV_COND:
        return struct.unpack_from("<I", arg)[0] == e["ifindex"] if len(arg) >= 4 else None
    if code == BC_MARK_COND:
        if len(arg) < 8:
            return None
        mark, mask = struct.unpack_from("<II", arg)
        return e["mark"] & mask == mark
    if code == BC_CGROUP_COND:
        return False if len(arg) >= 8 else None   # the host's cgroup: never the one named
    return None


def _hostcond(source, arg, e):
    if len(arg) < HOSTCOND.size:
        return None
    family, prefix, port = HOSTCOND.unpack_from(arg)
    want = arg[HOSTCOND.size:]
    if port != -1 and port != (e["sport"] if source else e["dport"]):
        return False
    addr = e["saddr"] if source else e["daddr"]
    if family != socket.AF_UNSPEC and family != e["family"]:
        return (e["family"] == socket.AF_INET6 and family == socket.AF_INET
                and addr[:12] == bytes(10) + b"\xff\xff" and _prefix_match(addr[12:], want, prefix))
    return prefix == 0 or _prefix_match(addr, want, prefix)


def _prefix_match(addr, want, bits):
    """bitstring_match: the first `bits` bits of addr and want agree."""
    n = (bits + 7) // 8
    if bits > 8 * len(addr) or len(want) < n:
        return False
    a, b = int.from_bytes(addr[:n], "big"), int.from_bytes(want[:n], "big")
    shift = 8 * n - bits
    return a >> shift == b >> shift
