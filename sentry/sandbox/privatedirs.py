"""The sandbox's private directories on the host (the overlay's upper layer,
its /tmp, the synthetic /proc) and the janitor that removes them when the
Sentry is gone, however it ends."""
import os
import shutil
import time

from sentry.platform import selfconfine, spawn


JANITOR_PATIENCE = 30                   # seconds it retries a directory a dying guest still fills


def janitor(*dirs):
    """A process of its own (not the Sentry's child, in a session of its
    own) that removes the private directories when the Sentry is gone: it
    waits for the end of a pipe whose other end only the Sentry holds, which
    closes at the Sentry's exit, even by SIGKILL.  The guests die with the
    Sentry (PTRACE_O_EXITKILL); one may finish a call that creates a file
    meanwhile, so a directory is removed until it is gone (nothing can be
    made in a removed directory).  Returns the Sentry's end; None if no
    process could be had (then discard at exit, and the next Sentry
    removes what a killed one left: remove_stale).  What killed Sentries
    left behind is removed by the janitor too, first: off the new sandbox's
    start (two stale overlays took ~100 ms here)."""
    r, w = os.pipe()                    # not inherited across exec; guests close it
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        remove_stale()
        return None
    if pid == 0:
        try:
            os.close(w)
            if os.fork() == 0:
                os.setsid()
                # most starts find nothing to sweep: no fork of the large Sentry then
                if next(stale(), None) is not None:
                    _sweep()
                try:
                    selfconfine.confine("janitor")
                except OSError as e:
                    # it goes on unconfined: the directories must go
                    os.write(2, f"sentry: the janitor cannot confine itself ({e.strerror})\n".encode())
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, r)
                os.closerange(r + 1, 1 << 16)
                while True:
                    try:
                        if not os.read(r, 1):
                            break
                    except InterruptedError:
                        continue
                    except OSError:
                        break
                deadline = time.monotonic() + JANITOR_PATIENCE
                while True:
                    left = [d for d in dirs if os.path.lexists(d)]
                    for d in left:
                        _remove_tree(d)
                    if not any(os.path.lexists(d) for d in left) or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        finally:
            os._exit(0)
    os.close(r)
    spawn.reaped_later(pid)
    return w


def _sweep():
    """remove_stale in an orphan of its own, which holds nothing of the
    caller's (its fds might be a container's stdio, whose end an engine
    waits for), needs no filter (it lives as long as the sweep) and leaves
    no zombie behind the janitor (which reaps only the short-lived parent,
    before its filter)."""
    try:
        pid = os.fork()
    except OSError:
        return              # the next Sentry's janitor sweeps
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 1 << 16)
            remove_stale()
    finally:
        os._exit(0)


def discard(*dirs):
    """Remove the private directories from a child process, so that the
    guest's exit status is not held up by the disk: an overlay's upper layer
    holds a directory for every directory the guest looked at, and removing
    them takes as long as making them."""
    try:
        pid = os.fork()
    except OSError:
        pid = None                  # no child: the Sentry removes them itself
    if pid:
        return
    try:
        if pid == 0:
            # the caller waits for the end of our output, not for this
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
        for d in dirs:
            _remove_tree(d)
    finally:
        if pid == 0:
            os._exit(0)


def _remove_tree(top):
    """rmtree, read-only directories included (a copied-up 0555 directory,
    /sys's): without CAP_DAC_OVERRIDE, their owner adds the write bit first."""
    if os.geteuid() != 0:
        # never through a symlink: the guest may have planted one leading out
        todo = [top]
        while todo:
            try:
                with os.scandir(todo.pop()) as entries:
                    for e in entries:
                        if e.is_dir(follow_symlinks=False):
                            os.chmod(e.path, 0o700)
                            todo.append(e.path)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


def make(parent):
    """A new directory of the Sentry's own (mode 0700) in parent, named
    sentry-<pid>-<random> as remove_stale reads it: tempfile.mkdtemp's
    work, without importing tempfile and random (~0.6 ms of every start)."""
    while True:
        path = os.path.join(parent, f"sentry-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


TEMP_ENV, TEMP_DIRS = ("TMPDIR", "TEMP", "TMP"), ("/tmp", "/var/tmp", "/usr/tmp")


def temp_dir():
    """Where the host keeps temporary files, by tempfile.gettempdir()'s
    rule: the first of $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp that
    is a directory we may write in, else the current directory."""
    for d in [os.environ.get(v) for v in TEMP_ENV] + list(TEMP_DIRS):
        if d and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return os.path.abspath(d)
    return os.getcwd()


MEMORY_DIRS = ("/dev/shm",)


def memory_dir():
    for d in MEMORY_DIRS:
        if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def stale():
    """The private directories of Sentries that are gone (killed with
    SIGKILL, they could not remove their own)."""
    for top in {temp_dir(), memory_dir()} - {None}:
        for name in os.listdir(top):
            parts = name.split("-")
            if len(parts) != 3 or parts[0] != "sentry" or not parts[1].isdigit():
                continue
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:
                yield os.path.join(top, name)
            except OSError:
                pass


def remove_stale():
    """What killed Sentries left is removed by the next one."""
    for d in stale():
        _remove_tree(d)
