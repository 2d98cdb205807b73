"""The fd holder (native/holder.c has the why): a process that holds O_PATH
fds of sandbox files at numbers the Sentry chooses, so that a guest call the
kernel must look up by path can name such a file as /proc/<holder>/fd/<n>,
a magic link no guest thread can retarget."""
import os
import socket
import struct

from sentry._native import lib
from sentry.platform import privileges, selfconfine, spawn

CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
SOCK = 3                        # the holder's end of its socket: with stderr, the fds it keeps


class FdHolder:
    def __init__(self):
        """Forks the holder, twice: it is never the Sentry's child, so the
        tracer loop's waitpid(-1) never meets it (and it must start before
        the Sentry becomes a subreaper).  It waits for `start`."""
        self.sock = spawn.helper(_holder)
        self.pid = None
        self.free = []              # numbers given back, taken again first
        self.next = 4               # 3 is the holder's socket

    def start(self, userns_fd=None):
        """The holder joins the guest's user namespace (the kernel lets a
        guest follow the link only into a process of its own namespace) and
        drops every capability.  Raises OSError if it could not."""
        socket.send_fds(self.sock, [struct.pack("<i", 0)], [] if userns_fd is None else [userns_fd])
        answer = self.sock.recv(4)
        if len(answer) != 4:
            raise OSError(0, "the fd holder could not start")
        self.pid = struct.unpack("<i", answer)[0]
        self.prefix = b"/proc/%d/fd/" % self.pid

    def hold(self, fd):
        """The holder keeps a copy of `fd` (the caller closes its own): the
        number it holds it at, or OSError if the holder is gone."""
        n = self.free.pop() if self.free else self._grow()
        try:
            socket.send_fds(self.sock, [struct.pack("<i", n)], [fd])
            ok = self.sock.recv(1)
        except OSError:
            self.free.append(n)
            raise
        if ok != b"\1":
            self.free.append(n)
            raise OSError(0, "the fd holder refused")
        return n

    def _grow(self):
        n, self.next = self.next, self.next + 1
        return n

    def path(self, n):
        return self.prefix + b"%d" % n

    def drop(self, n):
        """The holder closes n (in order: a later hold of n comes after)."""
        try:
            self.sock.send(struct.pack("<i", -1 - n))
        except OSError:
            pass
        self.free.append(n)

    def close(self):
        self.sock.close()       # the holder exits at the end of its socket


def _holder(sock, sentry):
    """The holder's own set-up, then native/holder.c's loop (never returns).
    Its first request carries the guest's user namespace, if any, to join;
    it answers with its pid once it holds no capability (in that namespace
    too) and is confined (platform/selfconfine.py)."""
    fd = sock.detach()
    if fd != SOCK:
        os.dup2(fd, SOCK)
    os.closerange(0, 2)                 # stderr stays, for its SIGSYS line
    os.closerange(SOCK + 1, 1 << 20)
    sock = socket.socket(fileno=SOCK)
    _, fds, _, _ = socket.recv_fds(sock, 4, 1)
    for fd in fds:
        if lib.sn_setns(fd, CLONE_NEWUSER):
            os._exit(1)
        os.close(fd)
    # after the namespace: joining it changed the holder's credentials,
    # which resets it to non-dumpable
    privileges.prctl(PR_SET_DUMPABLE, 1)
    selfconfine.confine("fd-holder", sentry)
    sock.send(struct.pack("<i", os.getpid()))
    lib.sn_holder_serve(SOCK)
