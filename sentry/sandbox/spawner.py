"""The spawner: how `sentry exec` adds a process to a running sandbox.

The Sentry's loop sleeps in waitpid(-1) and must never block on anything
else, and once confined it may not fork a guest (its own filter would be
inherited).  So run() forks, before confining itself, a helper that the
Sentry traces as it traces guests (PTRACE_SEIZE, the same options) but
that runs no guest code and has no virtual pid: the spawner.  It listens on
the container's control socket (ROOT/ID/exec.sock, outside the sandbox's
view) and, for each request, forks the new process.  Because the spawner is
traced with PTRACE_O_TRACEFORK, that child is the Sentry's tracee before it
runs one instruction, and the fork event wakes the Sentry's waitpid like any
guest's fork: the Sentry adopts it as a new process of the sandbox (a new
virtual pid, its parent outside the namespace as for a process that entered
it with setns) -- no signal, no poll, no race with the loop.  The child then
sets itself up as the first process did (sandbox/guest.py exec_process) and
execs under the guest's filter.

The spawner is the new process's real parent: it reaps it and sends its
wait status back on the request's connection, which `sentry exec` (or the
process whose pid it wrote to --pid-file) turns into its own exit status.

Who may ask: the socket is mode 0600 in the container's state directory
(no guest sees it unless a bind mount hands it over, and then a unix
connect to a host socket is refused unless that mount says `sockets`), and
a peer (SO_PEERCRED, SO_PEERPIDFD) must be root or the spawner's own uid
and traced by no one: no guest of any sentry passes (_trusted_peer).

Protocol (SOCK_SEQPACKET, one message each): the request, JSON
{args, env, cwd, uid, gid, groups, umask, terminal, pty, preserve} with the
new process's stdin, stdout, stderr (with terminal, the slave of the
caller's pty; with pty too, none: the spawner makes one of the sandbox's
own devpts and answers "pty NAME" with its master first), then `preserve`
more (its fds 3, 4, ...: exec --preserve-fds) as SCM_RIGHTS; answers
"pid HOSTPID", then "exit WAITSTATUS" -- or "error TEXT".
"""
import json
import logging
import os
import select
import signal
import socket
import struct

from sentry.platform import privileges, ptrace
from sentry.sandbox.guest import receive_from_guest, send_to_sentry

log = logging.getLogger("sentry")

SOCKET_NAME = "exec.sock"
MAX_REQUEST = 1 << 20
MAX_FDS = 253                   # the kernel's SCM_MAX_FD: fds one message carries


class SpawnerError(Exception):
    pass


def bind(path):
    """The control socket, listening, mode 0600 (in the caller: an error
    here fails `create`).  A path too long for sun_path is bound through
    its directory's fd."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        with _short(path) as addr:
            old = os.umask(0o177)
            try:
                s.bind(addr)
            finally:
                os.umask(old)
        s.listen(16)
    except OSError:
        s.close()
        raise
    return s


class _short:
    """A sun_path for `path`: itself, or /proc/self/fd/DIR/NAME."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        if len(os.fsencode(self.path)) < 100:
            return self.path
        self.fd = os.open(os.path.dirname(self.path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self.fd}/{os.path.basename(self.path)}"

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)


def connect(path, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    s.settimeout(timeout)
    try:
        with _short(path) as addr:
            s.connect(addr)
    except OSError:
        s.close()
        raise
    return s


def request(sock, req, fds, on_pty=None):
    """Client side: send the request; returns the new process's host pid.
    A request with `pty` gets the master of the pty the sandbox made for
    it first: on_pty(master, its slave's name) (the caller's copy is
    closed after)."""
    socket.send_fds(sock, [json.dumps(req).encode()], fds)
    msg, got, _, _ = socket.recv_fds(sock, 4096, 1)
    answer = msg.decode(errors="replace")
    if answer.startswith("pty ") and len(got) == 1 and on_pty is not None:
        try:
            on_pty(got[0], answer[4:])
        finally:
            os.close(got[0])
        answer = sock.recv(4096).decode(errors="replace")
    else:
        for fd in got:
            os.close(fd)
    if answer.startswith("pid "):
        return int(answer.split()[1])
    if answer.startswith("error "):
        raise SpawnerError(answer[6:])
    raise SpawnerError("the sandbox ended before the process started")


def wait_status(sock):
    """Client side: the process's wait status (as a SIGKILL when the sandbox
    ended first and took it along)."""
    sock.settimeout(None)
    while True:
        try:
            answer = sock.recv(4096).decode(errors="replace")
        except InterruptedError:
            continue
        break
    if answer.startswith("exit "):
        return int(answer.split()[1])
    return signal.SIGKILL


class Spawner:
    """In run(): forks the spawner (before the Sentry confines itself and
    while it is still dumpable), traces it, and receives the listener of
    the fd handover filter it installed for the processes it will fork;
    then gives it the guest's user namespace (give_user_namespace)."""

    def __init__(self, listening, launch, make_pty, close=()):
        ready_r, ready_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sentry = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(ready_w)
                ours.close()
                for fd in close:        # the Sentry's, not the spawner's to hold
                    os.close(fd)
                if os.read(ready_r, 1) != b"x":
                    os._exit(125)
                os.close(ready_r)
                _main(listening, theirs, sentry, launch, make_pty)
            except BaseException:
                pass
            os._exit(125)
        os.close(ready_r)
        theirs.close()
        listening.close()
        self.pid = pid
        try:
            ptrace.seize(pid)
        except OSError:
            os.close(ready_w)
            os.waitpid(pid, 0)
            raise
        os.write(ready_w, b"x")
        os.close(ready_w)
        fds = receive_from_guest(ours, 1)
        if not fds:
            ours.close()
            raise SpawnerError("the spawner could not set up the fd handover")
        self.listener = fds[0]
        self._sock = ours

    def give_user_namespace(self, userns):
        """Once the first process has sent it: the user namespace it made
        (an unprivileged sentry's; None: there is none), which every process
        the spawner starts joins.  The spawner serves no request before."""
        try:
            socket.send_fds(self._sock, [b"u"], [] if userns is None else [userns])
        except OSError as e:
            log.warning("the exec helper is gone (%s): exec into this sandbox fails", e.strerror)
        finally:
            self._sock.close()


def _main(listening, sentry_sock, sentry, launch, make_pty):
    """The spawner's life: never returns."""
    privileges.prctl(privileges.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != sentry:
        os._exit(125)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(s, signal.SIG_IGN if s != signal.SIGTERM else signal.SIG_DFL)
    # the processes it forks inherit this filter, and the Sentry answers
    # their fd handovers through its listener (platform/handover.py)
    send_to_sentry(sentry_sock, userns=False)
    # What every process it starts joins besides the helper's namespaces:
    # the first process's user namespace, made after the spawner was forked
    # (Spawner.give_user_namespace); a request waits in the backlog until then.
    try:
        msg, fds, _, _ = socket.recv_fds(sentry_sock, 1, 1)
    except OSError:
        os._exit(125)
    if msg != b"u":
        os._exit(125)               # the Sentry is gone, or never got that far
    sentry_sock.close()
    userns = fds[0] if fds else None
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    waiting = {}                # host pid -> the connection its status goes to
    while True:
        ready, _, _ = select.select([listening, wake_r], [], [])
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            _reap(waiting)
        if listening in ready:
            try:
                conn, _ = listening.accept()
            except OSError:
                continue
            try:
                _serve(conn, lambda req, fds: launch(req, fds, userns), make_pty, waiting)
            except Exception as e:
                _send(conn, f"error {e}")
                conn.close()


def _reap(waiting):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            _send(conn, f"exit {status}")
            conn.close()


def _send(conn, text):
    try:
        conn.send(text.encode())
    except OSError:
        pass


def _serve(conn, launch, make_pty, waiting):
    if not _trusted_peer(conn):
        raise SpawnerError("permission denied")
    conn.settimeout(10)         # a peer that never sends does not hold us up
    msg, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, MAX_FDS)
    try:
        req = json.loads(msg)
        if not isinstance(req, dict) or not req.get("args") or not all(isinstance(a, str) for a in req["args"]):
            raise SpawnerError("the request names no program")
        preserve = req.get("preserve", 0)
        if not isinstance(preserve, int) or preserve < 0:
            raise SpawnerError("a bad count of preserved fds")
        pty = bool(req.get("terminal") and req.get("pty"))
        want = (0 if pty else 1 if req.get("terminal") else 3) + preserve
        if len(fds) != want:
            raise SpawnerError(f"the request carries {len(fds)} fds, not {want}")
        if pty:
            # the process's terminal: a pty of the sandbox's, its master
            # for the caller (the engine's console socket)
            master, slave, name = make_pty()
            fds.insert(0, slave)
            try:
                socket.send_fds(conn, [f"pty {name}".encode()], [master])
            finally:
                os.close(master)
        child = os.fork()
        if child == 0:
            launch(req, fds)        # never returns
            os._exit(125)
    finally:
        for fd in fds:
            os.close(fd)
    waiting[child] = conn
    _send(conn, f"pid {child}")


SO_PEERPIDFD = 77


def _trusted_peer(conn):
    """Root or our own uid, and traced by no one: every guest of every
    sentry is a tracee for its whole life (and cannot detach), so a guest
    that was handed some container's state directory -- this sandbox's or
    another's -- is refused.  The peer is read through the pidfd of the
    process that connected (Linux 6.5), checked alive after its TracerPid
    was read, so a reused pid cannot stand in for it."""
    pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid not in (0, os.geteuid()):
        return False
    try:
        pidfd = struct.unpack("i", conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4))[0]
    except OSError:
        pidfd = None
    try:
        tracer = _tracer_of(pid)
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, 0)      # ProcessLookupError: gone, its pid maybe reused
    except OSError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return tracer == 0


def _tracer_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1           # unknown: not trusted
