"""Run one command and measure it: wall clock, exit status, peak RSS.

The measuring is done by bench/c/launch.c (see there for why); this
module starts it, enforces the timeout and collects the figures.
"""

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Run:
    ok: bool
    wall_s: float
    maxrss_kb: int  # largest single process in the tree (ru_maxrss)
    stdout: str
    error: str  # why it failed, empty when ok


def run(argv, launcher, cwd=None, timeout=600.0, cpu=None, poll=None):
    """Run argv under launcher (pinned to cpu if given) and return a Run.

    poll, if given, is called with the launcher's pid every few ms while
    the command runs (memory sampling); leave it None when timing matters.

    stdout goes to a temp file rather than a pipe, so a slow reader can
    never stall the guest.  The launcher gets its own session so a
    timeout can kill every process the runner started.
    """
    rfd, wfd = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        cmd = [launcher, str(wfd), str(-1 if cpu is None else cpu)] + list(argv)
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, pass_fds=(wfd,), start_new_session=True)
        except OSError as e:
            os.close(rfd)
            os.close(wfd)
            return Run(False, 0.0, 0, "", f"cannot start {launcher}: {e}")
        os.close(wfd)
        status = _wait(proc, timeout, poll)
        with os.fdopen(rfd) as f:
            figures = f.read().split()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if status is None:
        return Run(False, timeout, 0, stdout, f"timed out after {timeout:.0f}s")
    wall, rss = (int(figures[0]) / 1e9, int(figures[1])) if len(figures) == 2 else (0.0, 0)
    if status != 0:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return Run(False, wall, rss, stdout, f"exit status {status}: {tail}")
    return Run(True, wall, rss, stdout, "")


def _wait(proc, timeout, poll):
    """Wait for the launcher; on timeout kill its whole session, return None."""
    try:
        if poll:
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(proc.args, timeout)
                poll(proc.pid)
                time.sleep(0.002)
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None
    except BaseException:  # e.g. Ctrl-C: leave no tracer behind
        _kill(proc)
        raise


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
