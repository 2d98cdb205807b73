"""Outbound TCP connections of --network=sandbox, made by the Sentry on the
host and handed to the guest as a real, connected host socket (the data then
moves at native speed, untrapped).

The guest lives in a private network namespace whose only route is its
loopback: a connect() to anything else is trapped (syscalls/socket.py) and,
when the policy (net/policy.py) allows it, served so:

 1. The Sentry makes a non-blocking host socket S and starts connecting it
    (socket, connect: neither blocks), and hands S with one end of a fresh
    socketpair (R) to the outbound helper, a process of its own that waits
    for the handshake so that neither the Sentry nor its tracer loop ever
    does.  The helper is one thread, one poll loop, confined from its start
    (platform/selfconfine.py, profile "outbound": no capability, no socket
    of its own, no bind/listen/accept, no exec).
 2. The guest thread gets its own end, W: the Sentry injects socket(AF_UNIX)
    and connect() to a listener of the Sentry's, bound in its private
    directory (a path no guest lookup reaches; the address is staged), and
    accepts that connection (it is in the backlog once connect returns: the
    Sentry never waits).  The guest's table holds nothing of the Sentry's
    between connections.
 3. The guest thread then waits in its own context, in an injected blocking
    recvmsg(W): a signal interrupts it as it would interrupt connect(2).
 4. The helper, once S is connected, makes sure it can never be anything but
    a connection to that destination: it connects it once more, which turns
    the kernel's "connecting" socket state into "connected" for good (a
    socket left "connecting" becomes unconnected again after a reset, and
    could then be bound or listen on a host port), and checks that yet another
    connect says EISCONN.  Then it sends S over R (SCM_RIGHTS), or the errno.
 5. The Sentry injects dup3(S, guest fd) and closes W and S's first number.

What the guest holds is then a host TCP socket in state connected: bind and
listen fail with EINVAL and connect with EISCONN, as the kernel rules; the one
call that would disconnect it, connect(AF_UNSPEC), is performed by the Sentry
itself on the object it checked (syscalls/socket.py), and refused on a host
socket.  Until the helper's check has passed, the guest holds no host socket.
"""
import errno
import json
import os
import select
import socket
import struct
import time

from sentry.net import dns
from sentry.platform import spawn

CONNECT_TIMEOUT = 130          # about Linux's own (tcp_syn_retries 6: 127 s)


class Outbound:
    """The Sentry's end of the outbound helper, and the listener guests dial."""

    def __init__(self, private):
        self.path = os.path.join(private, "outbound.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        self.listener.bind(self.path)
        self.listener.listen(64)
        self.sock = spawn.helper(_serve)

    def relay(self, inside, hosts):
        """Hand the helper one resolver's DNS relay sockets (net/dns.py):
        the sandbox's socket bound to RESOLVER:53 and the host sockets
        connected to it; closed here."""
        try:
            socket.send_fds(self.sock, [json.dumps({"relay": True}).encode()], [inside, *hosts])
        finally:
            for fd in (inside, *hosts):
                os.close(fd)

    def start(self, family, address, nonblock, nodelay, keepalive, reply):
        """Begin connecting a host socket to address; the result will come
        on reply (the Sentry's end of a guest's W; closed here).  Returns the
        host socket's inode (to know it again in the guest's table)."""
        s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            if nodelay:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if keepalive:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            err = s.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            socket.send_fds(self.sock, [json.dumps({"nonblock": nonblock}).encode()],
                            [s.fileno(), reply.fileno()])
            return os.fstat(s.fileno()).st_ino
        finally:
            s.close()
            reply.close()

    def accept(self, tgid):
        """The connection a guest process just made to the listener; None if
        there is none of that process's (the one there is dropped)."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return None
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            if pid == tgid:
                return conn
            conn.close()

    def close(self):
        self.sock.close()
        self.listener.close()


def _serve(sock, sentry):
    """The helper: one thread, one poll loop over the Sentry's requests and
    the connections in progress (no threads: its allowlist stays short), run
    confined (platform/selfconfine.py, profile "outbound")."""
    spawn.confine(sock, "outbound", "the outbound helper", sentry, "every outbound connect is ECONNABORTED")
    fd = sock.fileno()
    pending = {}                # host socket's fd -> (socket, reply socket, nonblock, deadline)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    relay = dns.Relay()
    while True:
        now = time.monotonic()
        wait = None
        if pending:
            wait = max(0, min(p[3] for p in pending.values()) - now) * 1000
        try:
            events = poller.poll(wait)
        except InterruptedError:
            continue
        for efd, ev in events:
            if efd == fd:
                if not _request(sock, poller, pending, relay):
                    os._exit(0)             # the Sentry is gone: so are its connections in progress
            elif relay.handles(efd):
                relay.event(efd)
            elif efd in pending:
                s, r, nonblock, _ = pending.pop(efd)
                poller.unregister(efd)
                _answer(s, r, nonblock, _connected(s))
        now = time.monotonic()
        for efd in [k for k, p in pending.items() if p[3] <= now]:
            s, r, nonblock, _ = pending.pop(efd)
            poller.unregister(efd)
            _answer(s, r, nonblock, errno.ETIMEDOUT)


def _request(sock, poller, pending, relay):
    """One request from the Sentry: a host socket connecting, and the reply
    socket of the guest thread that waits for it; or a resolver's DNS relay
    sockets.  False: the Sentry is gone."""
    try:
        msg, fds, _, _ = socket.recv_fds(sock, 4096, 1 + dns.SOCKETS_PER_RESOLVER)
    except OSError:
        return False
    if not msg:
        return False
    req = json.loads(msg)
    if req.get("relay") and len(fds) >= 2:
        relay.add(fds[0], fds[1:])
        for f in relay.fds():
            poller.register(f, select.POLLIN)
        return True
    if len(fds) != 2:
        for f in fds:
            os.close(f)
        return True
    s, r = socket.socket(fileno=fds[0]), socket.socket(fileno=fds[1])
    pending[s.fileno()] = (s, r, req["nonblock"], time.monotonic() + CONNECT_TIMEOUT)
    poller.register(s.fileno(), select.POLLOUT)
    return True


def _answer(s, r, nonblock, err):
    try:
        if err == 0:
            s.setblocking(not nonblock)
            socket.send_fds(r, [struct.pack("i", 0)], [s.fileno()])
        else:
            r.send(struct.pack("i", err))
    except OSError:
        pass                        # the guest thread gave up (a signal): its end is closed
    finally:
        s.close()
        r.close()


def _connected(s):
    """0 once s (which poll says is writable) is connected for good, else
    the errno the guest gets."""
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        return err
    try:
        peer = s.getpeername()
    except OSError as e:
        return e.errno or errno.ECONNABORTED
    # "connecting" -> "connected": from now on no call makes it unconnected
    first = s.connect_ex(peer)
    if first not in (0, errno.EISCONN):
        return first
    if s.connect_ex(peer) != errno.EISCONN:
        return errno.ECONNABORTED
    return 0
