"""The Sentry's helper processes start here: forked twice, so that none is
ever the Sentry's child (the tracer loop's waitpid(-1) never meets it), and
before the Sentry confines itself (its filter allows no fork)."""
import os
import socket

# The first children of double forks made during set-up, not reaped yet:
# their fork and exit (of a large process: its page tables copied, then torn
# down) run beside the Sentry's set-up instead of in its way.  They must be
# gone before the Sentry becomes a subreaper (reap_intermediates), or their
# orphans, the helpers, would be its children; after that, each is waited for
# at once again.
_intermediates = []
_deferring = True


def reaped_later(pid):
    """Wait for pid, an intermediate child whose only work is to fork and
    exit: now, or during set-up, in reap_intermediates."""
    if _deferring:
        _intermediates.append(pid)
    else:
        os.waitpid(pid, 0)


def reap_intermediates():
    """Set-up's intermediate children are gone (waited for) from here on;
    call before PR_SET_CHILD_SUBREAPER."""
    global _deferring
    _deferring = False
    while _intermediates:
        os.waitpid(_intermediates.pop(), 0)


def helper(serve, *args):
    """Run serve(its end of a SOCK_SEQPACKET pair, the Sentry's pid, *args)
    in a new helper process; returns the Sentry's end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sentry = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            if os.fork() == 0:
                serve(theirs, sentry, *args)
        finally:
            os._exit(0)
    theirs.close()
    reaped_later(pid)
    return ours


def confine(sock, profile, what, sentry, why):
    """A helper's start: every fd but its socket closed, a session of its
    own, its allowlist loaded (platform/selfconfine.py).  If it cannot load
    it, it stops (why: what fails closed then)."""
    fd = sock.fileno()
    os.closerange(3, fd)
    os.closerange(fd + 1, 1 << 16)
    os.setsid()
    from sentry.platform import selfconfine
    try:
        selfconfine.confine(profile, sentry)
    except OSError as e:
        # fail closed
        os.write(2, f"sentry: {what} cannot confine itself ({e.strerror}): stopping ({why})\n".encode())
        os._exit(1)
