"""siginfo as the guest sees it: the sender named in the sandbox's terms.

The host kernel fills si_pid and si_uid with the sender's host pid and host
uid.  Wherever a siginfo reaches the guest -- a handler (rewritten at the
signal-delivery-stop), rt_sigtimedwait, waitid -- they are replaced by the
sender's virtual pid and emulated real uid; a sender outside the sandbox is
pid 0 and the overflow uid, as Linux shows one outside a namespace.
"""
import os
import signal
import struct

SI_USER, SI_MESGQ, SI_TKILL = 0, -3, -6
SIZE = 128
OVERFLOW_UID = 65534
PID_OFFSET = 16          # si_pid, then si_uid, in every layout that has them
STATUS_OFFSET = 24       # SIGCHLD's si_status
SENTRY = os.getpid()


def names_sender(signo, code):
    """Whether the kernel (not the sender) wrote si_pid/si_uid."""
    return code in (SI_USER, SI_TKILL, SI_MESGQ) or (signo == signal.SIGCHLD and code > 0)


def sender(kernel, task, signo, code, pid):
    """(virtual pid, uid) to show for a signal's sender, or None when the
    kernel did not name one (a siginfo the sender filled itself)."""
    if not names_sender(signo, code):
        return None
    found = None
    if pid == SENTRY and code in (SI_USER, SI_TKILL) and task is not None:
        # the Sentry signalled on a guest's behalf (kill(-1), kill(-pgrp))
        proxied = kernel.proxied.pop((task.process.tgid, signo), None)
        if proxied is not None:
            host, vpid, uid = proxied
            found = (vpid if kernel.viewer is kernel.pids else kernel.viewer.virtual(host)), uid
    elif pid != SENTRY:
        found = kernel.sender_of(pid)
    if found is None:
        return 0, OVERFLOW_UID
    vpid, uid = found
    if task is not None and task.creds is not None:
        uid = task.creds.view("u", uid)        # as the receiver's user namespace shows it
    return vpid, uid


CLD_KILLED, CLD_DUMPED = 2, 3
DUMPING = {signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS,
           signal.SIGFPE, signal.SIGSEGV, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGSYS}


def child_code(kernel, signo, code, pid, status):
    """SIGCHLD's si_code for a child that a core-dumping signal killed:
    CLD_DUMPED where its RLIMIT_CORE lets Linux write the core (the host
    kernel, which writes none, says CLD_KILLED)."""
    if signo == signal.SIGCHLD and code == CLD_KILLED and status in DUMPING:
        proc = kernel.known_process(pid)
        if proc is not None and proc.dumps_core():
            return CLD_DUMPED
    return code


def sender_pid(raw):
    """si_pid of a siginfo, as the kernel wrote it."""
    return struct.unpack_from("<i", raw, PID_OFFSET)[0] if len(raw) >= PID_OFFSET + 4 else 0


def translate(kernel, task, raw):
    """The siginfo bytes `raw`, as delivered to `task`, in sandbox terms."""
    if len(raw) < PID_OFFSET + 8:
        return raw
    signo, _, code = struct.unpack_from("<iii", raw)
    pid, _uid = struct.unpack_from("<iI", raw, PID_OFFSET)
    named = sender(kernel, task, signo, code, pid)
    if named is None:
        return raw
    out = bytearray(raw)
    struct.pack_into("<iI", out, PID_OFFSET, *named)
    if len(raw) >= STATUS_OFFSET + 4:
        (status,) = struct.unpack_from("<i", raw, STATUS_OFFSET)
        struct.pack_into("<i", out, 8, child_code(kernel, signo, code, pid, status))
    return bytes(out)


SIGNALFD_RECORD = 128       # struct signalfd_siginfo: signo, errno, code, pid, uid, …
SIGNALFD_STATUS = 40        # … fd, tid, band, overrun, trapno, then ssi_status


def translate_signalfd(kernel, task, data):
    """Records read from a signalfd, in sandbox terms."""
    out = bytearray(data)
    for off in range(0, len(data) - SIGNALFD_RECORD + 1, SIGNALFD_RECORD):
        signo, _, code, pid = struct.unpack_from("<IiiI", data, off)
        named = sender(kernel, task, signo, code, pid)
        if named is not None:
            struct.pack_into("<II", out, off + 12, *named)
            (status,) = struct.unpack_from("<i", data, off + SIGNALFD_STATUS)
            struct.pack_into("<i", out, off + 8, child_code(kernel, signo, code, pid, status))
    return bytes(out)


def to_host(kernel, raw):
    """A siginfo the guest wrote itself (rt_sigqueueinfo): a sender field it
    means as a virtual pid is given as the host's, so that `translate` at
    delivery gives the receiver what was sent."""
    signo, _, code = struct.unpack_from("<iii", raw)
    if not names_sender(signo, code):
        return raw
    (vpid,) = struct.unpack_from("<i", raw, PID_OFFSET)
    host = kernel.viewer.host(vpid) if vpid > 0 else None
    out = bytearray(raw)
    struct.pack_into("<i", out, PID_OFFSET, host if host is not None else -1)
    return bytes(out)
