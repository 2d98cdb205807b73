"""The process the pid file names: the Sentry's stand-in.

An engine treats the pid-file process as the container's: its subreaper
(conmon, containerd's shim) waits on it for the container's status, and
`podman top` joins its mount namespace and lists that namespace's /proc.
The Sentry runs in the host's mount namespace and reads the host's /proc
(its guests are host processes), so a `podman top` on the Sentry listed
every host process, and a `podman cp` into it wrote the host's files.  The
pid file therefore names the Sentry's parent, which does nothing but wait:
it holds none of the caller's fds, lives in a mount namespace whose root is
the container's files and whose /proc is empty (vfs/mountns.py:
container_view), keeps no
capability and only the calls of its allowlist (platform/selfconfine.py:
STAND_IN), and exits as its child does (a code, or death by the same
signal).  The Sentry dies with it
(PR_SET_PDEATHSIG), so a SIGKILL to the pid the engine knows still ends the
whole sandbox; the Sentry's own pid is kept in the state for `kill`, `ps`
and `delete`.

Unprivileged without user namespaces no mount namespace can be had: the
stand-in then keeps the host's view (that user's own view of the host)."""
import errno
import logging
import os
import resource
import signal

from sentry.platform import privileges, selfconfine
from sentry.vfs import mountns

log = logging.getLogger("sentry")


def become(container_process, netns=None, view=None):
    """Fork container_process() (the Sentry: it never returns) and become its
    stand-in; never returns either.  view: (rootfs, read-only, binds, tmpfs
    places) of the container, the stand-in's mount namespace's root
    (_enter_container_view).  netns: the path of the network
    namespace the sandbox joins (the spec's), which the stand-in enters
    too, so that an engine that joins a container's network through the
    pid-file process (podman --network container:ID, a pod's containers:
    /proc/PID/ns/net) finds the sandbox's, not the host's."""
    me = os.getpid()
    try:
        child = os.fork()
    except OSError:
        os._exit(125)           # create reads the report pipe's end: it failed
    if child == 0:
        privileges.prctl(privileges.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != me:
            os._exit(137)       # the stand-in is gone already
        container_process()
        os._exit(125)
    status = None
    try:
        _hold_nothing()
        if netns is not None:
            # before the mount namespace: unprivileged, that makes a user namespace
            # with no right over the engine's network namespace
            try:
                mountns.join_netns(netns)
            except OSError as e:
                log.warning("the pid-file process stays in the host's network namespace (%s: %s)",
                            netns, e.strerror)
        _enter_container_view(view)
        try:
            selfconfine.confine("stand-in")
        except OSError as e:
            # it goes on unconfined, as the janitor: it runs nothing of a guest's
            log.warning("the pid-file process cannot confine itself (%s)", e.strerror)
        status = _wait(child)
        _exit_as(status)
    finally:
        # nothing may return into the caller's code (create's clean-up
        # would remove the container's state)
        if status is None:
            os.kill(child, signal.SIGKILL)
        os._exit(125)


def _enter_container_view(view):
    """A mount namespace whose root is the container's files (podman cp
    joins it and copies to "/" there; podman top reads its /proc, an empty
    one): never the host's root, which a copy into the container would
    write.  Where the view cannot be made, an empty root; where that
    cannot be either in a namespace of its own, the stand-in ends (and
    the sandbox with it: create fails).  Unprivileged without user
    namespaces none can be had: the host's view stays (that user's own)."""
    try:
        mountns.enter_private()
    except OSError as e:
        log.debug("the pid-file process keeps the host's mount namespace (%s)", e.strerror)
        return
    try:
        if view is None:
            raise OSError(errno.ENOENT, "no container view given")
        mountns.container_view(*view)
    except OSError as e:
        log.warning("the pid-file process's root is empty, not the container's (%s)", e)
        try:
            mountns.empty_root()
        except OSError:
            os._exit(125)


def _hold_nothing():
    """No fd of the caller's (create's stdio is the container's, a pipe
    whose end the engine waits for; create's report pipe), a session of its
    own (a foreground `sentry run`'s Ctrl-C goes to the guest through the
    Sentry, never to the stand-in, whose death would SIGKILL the sandbox)
    and the default dispositions."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, 1 << 16)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def _wait(child):
    while True:
        pid, status = os.waitpid(child, 0)
        if pid == child and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
            return status


def _exit_as(status):
    """The same end as the Sentry's: its exit code, or death by its signal
    (no core file: the Sentry's, if any, is the one that says something)."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    sig = os.WTERMSIG(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sig not in (signal.SIGKILL, signal.SIGSTOP):      # no handler to reset
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)         # a signal whose default is not to end
