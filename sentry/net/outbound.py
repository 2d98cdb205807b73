"""Outbound TCP connections of --network=sandbox, made by the Sentry on the
host and handed to the guest as a real host socket (the data then moves at
native speed, untrapped).

The guest lives in a private network namespace whose only route leads to a
gateway that forwards nothing: a connect() to anything else is trapped
(syscalls/socket.py) and, when the policy (net/policy.py) allows it, served
so (net/connect.py): the Sentry makes a non-blocking host socket, starts its
handshake (socket, connect: neither blocks) with the options the guest had
set on its own socket, and hands it into the guest's table at the guest's fd
number at once (platform/handover.py), still connecting -- as Linux's
socket is after EINPROGRESS.  A non-blocking connect returns EINPROGRESS; a
blocking one waits in the guest's own context (net/connect.py).

A host socket still connecting could be made unconnected again by a few
calls, and then bound, listened on or connected anywhere on the host's
network; the Sentry never lets one reach the kernel on such a socket
(net/connect.py says which and how).  The one that must wait is shutdown
while the handshake is in flight: the outbound helper, a process of its
own, carries it out once the handshake has ended (`shut_later`), so that
neither the Sentry nor its tracer loop ever waits.  The helper is one
thread, one poll loop, confined from its start (platform/selfconfine.py,
profile "outbound": no capability, no socket of its own, no
bind/listen/accept, no exec); it also relays the sandbox's DNS (net/dns.py).
"""
import errno
import fcntl
import json
import os
import select
import socket

from sentry.net import dns
from sentry.platform import spawn

# options the guest may have set on its own socket that the host socket
# takes over: (level, name, size in bytes; None: an int)
OPTIONS = [
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, None),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, None),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, None),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, None),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, None),
    (socket.IPPROTO_TCP, socket.TCP_SYNCNT, None),
    (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, None),
    (socket.SOL_SOCKET, socket.SO_LINGER, 8),
    (socket.SOL_SOCKET, socket.SO_OOBINLINE, None),
    (socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16),
    (socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16),
]


class Outbound:
    """The Sentry's end of the outbound helper."""

    def __init__(self):
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

    def start(self, family, address, guest, nonblock):
        """A host socket, its handshake to address begun (without waiting),
        with the options and O_NONBLOCK guest (the guest's own socket) had:
        (its fd, its inode).  OSError: the kernel refused at once."""
        s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            _take_options(s, guest)
            err = s.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            if not nonblock:
                # fcntl: Python's setblocking and os.set_blocking use FIONBIO, not in the allowlist
                fcntl.fcntl(s.fileno(), fcntl.F_SETFL, fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & ~os.O_NONBLOCK)
            ino = os.fstat(s.fileno()).st_ino
            return s.detach(), ino
        except BaseException:
            s.close()
            raise

    def shut_later(self, fd, how):
        """shutdown(fd, how) once fd's handshake has ended (the helper
        waits for it); fd is the Sentry's copy, closed here."""
        try:
            socket.send_fds(self.sock, [json.dumps({"shutdown": how}).encode()], [fd])
        finally:
            os.close(fd)

    def close(self):
        self.sock.close()


def _take_options(s, guest):
    """Set on host socket s what the guest set on its own socket guest
    (only values that differ from a fresh socket's)."""
    for level, name, size in OPTIONS:
        try:
            want = guest.getsockopt(level, name, size) if size else guest.getsockopt(level, name)
            have = s.getsockopt(level, name, size) if size else s.getsockopt(level, name)
            if want != have:
                s.setsockopt(level, name, want)
        except OSError:
            pass                                  # not of this family or kernel: as not set


def _serve(sock, sentry):
    """The helper: one thread, one poll loop over the Sentry's requests, the
    DNS relay and the handshakes whose shutdown waits (no threads: its
    allowlist stays short), run confined (platform/selfconfine.py, profile
    "outbound")."""
    spawn.confine(sock, "outbound", "the outbound helper", sentry, "outbound shutdowns and DNS stop")
    fd = sock.fileno()
    waiting = {}                # host socket's fd -> (socket, how): shut down once its handshake ends
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    relay = dns.Relay()
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for efd, ev in events:
            if efd == fd:
                if not _request(sock, poller, waiting, relay):
                    os._exit(0)             # the Sentry is gone
            elif relay.handles(efd):
                relay.event(efd)
            elif efd in waiting:
                s, how = waiting.pop(efd)
                poller.unregister(efd)
                try:
                    # no longer SYN_SENT (poll says so): a shutdown now
                    # leaves it connected, or (failed) "disconnecting"
                    s.shutdown(how)
                except OSError:
                    pass
                s.close()


def _request(sock, poller, waiting, relay):
    """One request from the Sentry: a host socket to shut down once its
    handshake has ended, or a resolver's DNS relay sockets.  False: the
    Sentry is gone."""
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
    if "shutdown" in req and len(fds) == 1:
        s = socket.socket(fileno=fds[0])
        waiting[s.fileno()] = (s, req["shutdown"])
        poller.register(s.fileno(), select.POLLOUT)
        return True
    for f in fds:
        os.close(f)
    return True
