"""Differences real programs found (issue 16), each checked against the same
program run natively from the same parent."""
import signal

import pytest

from conftest import run_native, run_sentry

SIG_KEYS = ("SigBlk", "SigIgn", "SigCgt")


def _sig_lines(status):
    """{SigBlk, SigIgn, SigCgt} of a /proc/<pid>/status text."""
    out = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in SIG_KEYS:
            out[key] = value.strip()
    assert set(out) == set(SIG_KEYS), status
    return out


def _parent(ignore=(), block=()):
    """A preexec_fn: the parent's dispositions and mask, as the test's program
    (sentry, or the native program itself) is started with them."""
    def setup():
        for s in ignore:
            signal.signal(s, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, block)
    return setup


@pytest.mark.parametrize("ignore,block", [
    ((), ()),
    ((signal.SIGINT, signal.SIGHUP), ()),                       # nohup, cmd & in a script
    ((signal.SIGQUIT, signal.SIGUSR2, signal.SIGRTMIN + 3), (signal.SIGUSR1, signal.SIGTERM)),
], ids=["shell", "nohup", "ignored-and-blocked"])
def test_guest_starts_with_sentrys_own_dispositions_and_mask(ignore, block):
    native = run_native(["cat", "/proc/self/status"], preexec_fn=_parent(ignore, block))
    boxed = run_sentry(["cat", "/proc/self/status"], preexec_fn=_parent(ignore, block))
    assert native.returncode == 0 and boxed.returncode == 0, boxed.stderr
    want = _sig_lines(native.stdout.decode())
    assert _sig_lines(boxed.stdout.decode()) == want
    # the case is not vacuous: the parent's choices show natively
    assert int(want["SigIgn"], 16) == sum(1 << (s - 1) for s in ignore)


def test_sigxfsz_and_sigpipe_kill_as_natively():
    # Python ignores both at start-up; a shell's children must not.
    script = ('d=$(mktemp -d); (ulimit -f 10; head -c 20000 /dev/zero > "$d/big"); echo xfsz $?; '
              'rm -r "$d"; yes | head -n 1 >/dev/null; echo "pipe ${PIPESTATUS[0]}"; '
              'trap "echo trapped" XFSZ; trap -p XFSZ')
    native = run_native(["bash", "-c", script])
    boxed = run_sentry(["bash", "-c", script])
    assert native.stdout.decode().splitlines()[:2] == ["xfsz 153", "pipe 141"]
    assert boxed.stdout.decode() == native.stdout.decode()
    assert boxed.returncode == native.returncode == 0
