"""--publish HOSTPORT:PORT[/udp]: a sandbox server reachable from the host.

The sandbox's network is a namespace of its own, which nothing on the host
can reach, so a forwarder crosses it, as docker-proxy does:

  - The Sentry binds and listens on the host's HOSTPORT itself, at set-up
    (0.0.0.0, and [::] where the host has IPv6): a port that is taken stops
    the sandbox before it starts (one line, exit 125), never later.
  - A forwarder process (twice forked, so no tracee and no child of the
    tracer loop) takes those sockets, then joins the sandbox's network
    namespace (setns; through its user namespace when unprivileged), so that
    every socket(2) it makes from then on is the sandbox's, and confines
    itself (platform/selfconfine.py, profile "publish": no capability, no
    bind, no listen, socket() of internet families only -- and those are the
    sandbox's).
  - TCP: each connection it accepts on the host gets a connection of its
    own to 127.0.0.1:PORT inside the sandbox; bytes are copied both ways
    (half-closes passed on, splice(2) through a pipe per direction) in one
    poll loop.  UDP: each host client address
    gets a socket of its own connected to 127.0.0.1:PORT inside; datagrams
    go both ways, and a client silent for UDP_IDLE seconds is forgotten.
  - The guest holds none of these sockets and cannot name the forwarder:
    what it sees is a client at 127.0.0.1, as behind docker-proxy.

The data is spliced by the forwarder (socket -> pipe -> socket: the kernel
moves it, the forwarder only says when), not trapped: no guest call stops
for it.  The forwarder exits when the Sentry does (its end of a socket pair):
it closes the host ports at once, and passes on for DRAIN seconds at most
what the guest sent before it ended.
"""
import errno
import fcntl
import json
import os
import select
import socket
import time

UDP_IDLE = 60.0
UDP_CLIENTS_MAX = 512        # host client addresses remembered per forwarder; the oldest give way
DRAIN = 2.0                  # seconds the forwarder may outlive the Sentry, passing on what was sent
PAUSE = 0.1                  # seconds a listener rests after accept ran out of fds
CHUNK = 1 << 18
PIPE_SIZE = 1 << 20          # bytes held for a slow side before reading from the other pauses
F_SETPIPE_SZ = 1031
SPLICE_FLAGS = 1 | 2         # SPLICE_F_MOVE | SPLICE_F_NONBLOCK


class BadSpec(ValueError):
    pass


def parse(spec):
    """(host port, sandbox port, "tcp" or "udp") of HOSTPORT:PORT[/udp|/tcp]."""
    text, _, proto = spec.partition("/")
    proto = proto or "tcp"
    try:
        host, port = text.split(":")
        host, port = int(host), int(port)
    except ValueError:
        raise BadSpec(spec)
    if proto not in ("tcp", "udp") or not (1 <= host <= 65535 and 1 <= port <= 65535):
        raise BadSpec(spec)
    return host, port, proto


def listen(specs):
    """The host sockets of the published ports, bound (and listening, for
    TCP) by the Sentry at set-up: [(fd, family, sandbox port, proto)].
    OSError names the spec that failed."""
    out = []
    try:
        for spec in specs:
            host, port, proto = spec
            kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
            for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                try:
                    s = socket.socket(family, kind | socket.SOCK_CLOEXEC)
                except OSError:
                    if family == socket.AF_INET6:
                        continue            # a host without IPv6
                    raise
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    try:
                        s.bind((addr, host))
                    except OSError as e:
                        if family == socket.AF_INET6 and e.errno == errno.EADDRNOTAVAIL:
                            s.close()
                            continue        # IPv6 disabled
                        e.spec = spec
                        raise
                    if kind == socket.SOCK_STREAM:
                        s.listen(128)
                    s.setblocking(False)
                except BaseException:
                    s.close()
                    raise
                out.append((s.detach(), family, port, proto))
    except BaseException:
        for fd, *_ in out:
            os.close(fd)
        raise
    return out


class Forwarder:
    """The Sentry's end: the forwarder process exits when this closes."""

    def __init__(self, listeners, netns_fd, userns_fd):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sentry = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                if os.fork() == 0:
                    _serve(theirs, listeners, netns_fd, userns_fd, sentry)
            finally:
                os._exit(0)
        theirs.close()
        for fd, *_ in listeners:
            os.close(fd)
        os.waitpid(pid, 0)
        # it answers once it is in the sandbox's namespace and confined
        reply = self.sock.recv(4096)
        if not reply or json.loads(reply).get("errno"):
            self.sock.close()
            why = json.loads(reply).get("why") if reply else "it did not start"
            raise OSError(errno.EIO, f"the port forwarder: {why}")

    def close(self):
        self.sock.close()


def _serve(sock, listeners, netns_fd, userns_fd, sentry):
    keep = sorted({sock.fileno(), netns_fd, *(fd for fd, *_ in listeners)} |
                  ({userns_fd} if userns_fd is not None else set()))
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    os.setsid()
    try:
        from sentry.vfs.mountns import join_namespaces
        join_namespaces(userns_fd, netns_fd=netns_fd)
        os.close(netns_fd)
        if userns_fd is not None:
            os.close(userns_fd)
        from sentry.platform import selfconfine
        selfconfine.confine("publish", sentry)
    except OSError as e:
        sock.send(json.dumps({"errno": e.errno or errno.EIO, "why": e.strerror or str(e)}).encode())
        os._exit(1)
    sock.send(b"{}")
    _Loop(sock, listeners).run()
    os._exit(0)


class _Loop:
    def __init__(self, sock, listeners):
        self.sock = sock
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)
        self.listeners = {}                 # fd -> (socket, sandbox port, proto)
        for fd, family, port, proto in listeners:
            kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
            s = socket.socket(family, kind, fileno=fd)
            self.listeners[fd] = (s, port, proto)
            self.poller.register(fd, select.POLLIN)
        self.pipes = {}                     # fd -> _Side
        self.udp = {}                       # (listener fd, client address) -> inside socket
        self.udp_inside = {}                # inside fd -> (listener socket, client address, last use)
        self.paused = {}                    # listener fd -> when it listens again

    def run(self):
        drain_until = None
        while True:
            wait = 5000 if self.udp_inside else None
            if self.paused:
                wait = max(0, min(self.paused.values()) - time.monotonic()) * 1000
            if drain_until is not None:
                if not self.pipes or time.monotonic() >= drain_until:
                    # at once: a socket collected unclosed would ask
                    # getpeername for its ResourceWarning
                    os._exit(0)
                wait = max(0, drain_until - time.monotonic()) * 1000
            try:
                events = self.poller.poll(wait)
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == self.sock.fileno():
                    # the Sentry is gone (or spoke, which it never does): the
                    # ports are free at once; what the guest sent before it
                    # ended still reaches its clients, for DRAIN seconds at most
                    drain_until = time.monotonic() + DRAIN
                    self._stop_listening()
                    break
                if fd in self.listeners:
                    s, port, proto = self.listeners[fd]
                    if proto == "tcp":
                        self._accept(s, port)
                    else:
                        self._from_client(s, port)
                elif fd in self.udp_inside:
                    self._to_client(fd)
                elif fd in self.pipes:
                    self.pipes[fd].event(ev)
            self._forget_idle()
            now = time.monotonic()
            for fd in [fd for fd, until in self.paused.items() if until <= now]:
                del self.paused[fd]
                self.poller.register(fd, select.POLLIN)

    def _stop_listening(self):
        self.poller.unregister(self.sock.fileno())
        for fd in list(self.udp_inside):
            self._forget(fd)
        for fd, (s, _, _) in self.listeners.items():
            if fd not in self.paused:
                self.poller.unregister(fd)
            s.close()
        self.listeners.clear()
        self.paused.clear()

    # ---- TCP ----

    def _accept(self, listener, port):
        try:
            conn, _ = listener.accept()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # out of fds: rest, rather than spin on a listener that stays readable
                self.poller.unregister(listener.fileno())
                self.paused[listener.fileno()] = time.monotonic() + PAUSE
            return
        conn.setblocking(False)
        try:
            inside = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            conn.close()                    # out of fds: this client is refused
            return
        inside.setblocking(False)
        err = inside.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            conn.close()
            inside.close()
            return
        try:
            a = _Side(self, conn)
        except OSError:
            conn.close()                    # out of fds (the pipes): this client is refused
            inside.close()
            return
        try:
            b = _Side(self, inside, connecting=True)
        except OSError:
            os.close(a.pipe_r)
            os.close(a.pipe_w)
            conn.close()
            inside.close()
            return
        a.peer, b.peer = b, a
        for side in (a, b):
            self.pipes[side.fd] = side
            self.poller.register(side.fd, side.mask())

    # ---- UDP ----

    def _from_client(self, listener, port):
        try:
            data, client = listener.recvfrom(CHUNK)
        except OSError:
            return
        key = (listener.fileno(), client)
        inside = self.udp.get(key)
        if inside is None:
            if len(self.udp_inside) >= UDP_CLIENTS_MAX:
                self._forget(min(self.udp_inside, key=lambda fd: self.udp_inside[fd][2]))
            try:
                inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            except OSError:
                return                      # out of fds: the datagram is lost, as UDP may lose it
            inside.setblocking(False)
            try:
                inside.connect(("127.0.0.1", port))
            except OSError:
                inside.close()
                return
            self.udp[key] = inside
            self.poller.register(inside.fileno(), select.POLLIN)
        self.udp_inside[inside.fileno()] = (listener, client, time.monotonic())
        try:
            inside.send(data)
        except OSError:
            pass

    def _to_client(self, fd):
        listener, client, _ = self.udp_inside[fd]
        inside = self.udp[(listener.fileno(), client)]
        try:
            data = inside.recv(CHUNK)
            listener.sendto(data, client)
        except OSError:
            return
        self.udp_inside[fd] = (listener, client, time.monotonic())

    def _forget_idle(self):
        now = time.monotonic()
        for fd, (_, _, last) in list(self.udp_inside.items()):
            if now - last > UDP_IDLE:
                self._forget(fd)

    def _forget(self, fd):
        listener, client, _ = self.udp_inside.pop(fd)
        self.poller.unregister(fd)
        self.udp.pop((listener.fileno(), client)).close()


class _Side:
    """One socket of a forwarded TCP connection.  What its peer reads is
    spliced into this side's pipe, and from there into this socket: the
    kernel moves the bytes, the forwarder only says when."""

    def __init__(self, loop, sock, connecting=False):
        self.loop, self.sock, self.fd = loop, sock, sock.fileno()
        self.connecting = connecting
        self.pipe_r, self.pipe_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            fcntl.fcntl(self.pipe_w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass                        # the default size: slower, as right
        self.queued = 0                 # bytes in the pipe, to write to this socket
        self.eof_in = False             # this socket said EOF
        self.shut_out = False           # its peer said EOF, passed on once the pipe is empty
        self.peer = None
        self.closed = False

    def mask(self):
        if self.connecting:
            return select.POLLOUT
        m = 0
        if not self.eof_in and self.peer.queued < PIPE_SIZE:
            m |= select.POLLIN
        if self.queued:
            m |= select.POLLOUT
        return m

    def event(self, ev):
        if ev & select.POLLERR or (ev & select.POLLHUP and self.eof_in):
            return self.close_both()        # reset, or both directions over
        if self.connecting:
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return self.close_both()
            self.connecting = False
        if ev & select.POLLIN or (ev & (select.POLLHUP | select.POLLERR) and not self.eof_in):
            try:
                n = os.splice(self.fd, self.peer.pipe_w, CHUNK, flags=SPLICE_FLAGS)
            except BlockingIOError:
                n = None                    # no data, or the pipe is full
            except OSError:
                return self.close_both()
            if n == 0:
                self.eof_in = True
                self.peer.shut_out = True
            elif n:
                self.peer.queued += n
        for side in (self, self.peer):
            if not side.flush():
                return self.close_both()
        if self.eof_in and self.peer.eof_in and not self.queued and not self.peer.queued:
            return self.close_both()
        for side in (self, self.peer):
            self.loop.poller.modify(side.fd, side.mask())

    def flush(self):
        if self.connecting:
            return True
        while self.queued:
            try:
                n = os.splice(self.pipe_r, self.fd, self.queued, flags=SPLICE_FLAGS)
            except BlockingIOError:
                return True
            except OSError:
                return False
            self.queued -= n
        if self.shut_out:
            self.shut_out = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return True

    def close_both(self):
        for side in (self, self.peer):
            if not side.closed:
                side.closed = True
                self.loop.poller.unregister(side.fd)
                self.loop.pipes.pop(side.fd, None)
                side.sock.close()
                os.close(side.pipe_r)
                os.close(side.pipe_w)
