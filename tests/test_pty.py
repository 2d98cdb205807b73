"""/dev/ptmx and /dev/pts: pty programs work as natively, on the sandbox's own
devpts instance, and no pty of the host is reachable -- by number, by path,
through /dev/pts/ptmx, TIOCGPTPEER or /dev/tty."""
import fcntl
import os
import subprocess
import termios

import pytest

from conftest import SENTRY, TIMEOUT, run_native, run_sentry

PTY_FORK = r"""
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    print("child", os.isatty(0), os.ttyname(0) == os.ttyname(1), os.getsid(0) == os.getpid())
    sys.stdout.flush()
    os._exit(3)
out = b""
while True:
    try:
        b = os.read(fd, 1024)
    except OSError:
        break
    if not b:
        break
    out += b
print(repr(out), os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""

PTY_SPAWN = 'import pty; pty.spawn(["/bin/echo", "x"])'

TERMIOS = r"""
import os, termios, tty
m, s = os.openpty()
tty.setraw(s)
os.write(m, b"raw\n"); print(os.read(s, 10))
attrs = termios.tcgetattr(s); attrs[3] |= termios.ECHO | termios.ICANON; termios.tcsetattr(s, termios.TCSANOW, attrs)
os.write(m, b"cooked\n"); print(os.read(s, 10), os.read(m, 20))
print(os.ttyname(s).startswith("/dev/pts/"), os.path.exists(os.ttyname(s)))
"""


@pytest.mark.parametrize("args", [
    ["script", "-qc", "echo hi", "/dev/null"],
    ["python3", "-c", PTY_FORK],
    ["python3", "-c", PTY_SPAWN],
    ["python3", "-c", TERMIOS],
], ids=["script", "pty.fork", "pty.spawn", "termios"])
def test_pty_programs_as_natively(args):
    native = run_native(args, input=b"")
    boxed = run_sentry(args, input=b"")
    assert native.returncode == 0 and native.stdout, native.stderr
    assert (boxed.stdout, boxed.stderr, boxed.returncode) == (native.stdout, native.stderr, native.returncode)


def test_dev_pts_lists_only_the_sandbox_ptys():
    host_master, host_slave = os.openpty()        # a host pty exists meanwhile
    try:
        r = run_sentry(["python3", "-c", "import os; print(sorted(os.listdir('/dev/pts'))); "
                        "m, s = os.openpty(); m2, s2 = os.openpty(); print(sorted(os.listdir('/dev/pts')), "
                        "os.ttyname(s), os.ttyname(s2), os.readlink('/dev/ptmx'))"])
    finally:
        os.close(host_master)
        os.close(host_slave)
    assert r.stdout.decode().splitlines() == [
        "['ptmx']", "['0', '1', 'ptmx'] /dev/pts/0 /dev/pts/1 pts/ptmx"], r.stderr


# Run in the sandbox with the host's pty number and a host master fd it was
# given: every way it tries must end in a pty of its own, or fail.
PROBE = r"""
import errno, fcntl, os, struct, sys, threading, time
n, host_master = int(sys.argv[1]), 0            # stdin: a master of the host's
TIOCGPTPEER = 0x5441
own = [os.openpty() for _ in range(n + 1)]      # so /dev/pts/<n> exists here too
own_dev = os.fstat(own[0][0]).st_dev

def report(how, fd):
    st = os.fstat(fd)
    os.write(fd, b"LEAK via " + how.encode() + b"\n")
    print(how, "own" if st.st_dev == own_dev else "FOREIGN")
    os.close(fd)

os.symlink("/dev/pts/%d" % n, "/tmp/link")
for path in ["/dev/pts/%d" % n, "/dev/../dev/pts/%d" % n, "/proc/self/root/dev/pts/%d" % n,
             "/tmp/link", "/dev/pts/ptmx", "/dev/ptmx", "/dev/pts/%d" % (n + 1)]:
    try:
        report(path, os.open(path, os.O_RDWR | os.O_NOCTTY))
    except OSError as e:
        print(path, errno.errorcode[e.errno])
for fd, what in [(host_master, "host master"), (own[0][1], "own slave"), (1, "stdout")]:
    try:
        report("TIOCGPTPEER " + what, fcntl.ioctl(fd, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY))
    except OSError as e:
        print("TIOCGPTPEER", what, errno.errorcode[e.errno])
report("TIOCGPTPEER own master", fcntl.ioctl(own[0][0], TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY))

# a thread swaps the host's master and one of its own at one fd number while
# TIOCGPTPEER runs on it: what it opens is always its own
slot = os.dup(own[0][0])
stop = time.time() + 1.5
def swap():
    while time.time() < stop:
        os.dup2(host_master, slot)
        os.dup2(own[0][0], slot)
threading.Thread(target=swap).start()
got = foreign = refused = 0
while time.time() < stop:
    try:
        fd = fcntl.ioctl(slot, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        refused += 1
        continue
    got += 1
    foreign += os.fstat(fd).st_dev != own_dev
    os.close(fd)
print("race", got > 0, refused > 0, "foreign", foreign)
"""


def _host_pty():
    master, slave = os.openpty()
    os.set_blocking(master, False)
    return master, slave, int(os.ttyname(slave).rsplit("/", 1)[1])


def _drain(master):
    try:
        return os.read(master, 65536)
    except BlockingIOError:
        return b""


def test_host_ptys_are_unreachable():
    master, slave, n = _host_pty()
    try:
        r = run_sentry(["python3", "-c", PROBE, str(n)], stdin=master)
        leaked = _drain(master)
    finally:
        os.close(master)
        os.close(slave)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert leaked == b""
    assert "FOREIGN" not in out
    lines = out.splitlines()
    for path in ["/dev/pts/%d" % n, "/dev/../dev/pts/%d" % n, "/proc/self/root/dev/pts/%d" % n,
                 "/tmp/link", "/dev/pts/ptmx", "/dev/ptmx"]:
        assert f"{path} own" in lines
    assert "/dev/pts/%d ENOENT" % (n + 1) in lines
    assert "TIOCGPTPEER host master EPERM" in lines
    assert "TIOCGPTPEER own slave ENOTTY" in lines
    assert "TIOCGPTPEER own master own" in lines
    assert "race True True foreign 0" in lines


def _in_session_of(slave):
    """preexec: a new session whose controlling terminal is the test's pty,
    as for a user who runs sentry in a terminal."""
    def become():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    return become


def test_dev_tty_reaches_the_host_terminal_only_when_handed_over():
    master, slave, _ = _host_pty()
    try:
        # stdio are pipes: the terminal is only sentry's controlling one
        hidden = subprocess.run(SENTRY + ["--", "/bin/sh", "-c", "echo LEAK > /dev/tty; echo rc=$?"],
                                preexec_fn=_in_session_of(slave), capture_output=True, timeout=TIMEOUT)
        leaked = _drain(master)
        # stdin is the terminal: the user gave it to the guest
        given = subprocess.run(SENTRY + ["--", "/bin/sh", "-c", "echo hello > /dev/tty; echo rc=$?"],
                               preexec_fn=_in_session_of(slave), stdin=slave, capture_output=True,
                               timeout=TIMEOUT)
        shown = _drain(master)
    finally:
        os.close(master)
        os.close(slave)
    assert hidden.stdout == b"rc=2\n" and b"No such device or address" in hidden.stderr
    assert leaked == b""
    assert given.stdout == b"rc=0\n", given.stderr
    assert shown == b"hello\r\n"


def test_devpts_is_not_mounted_on_the_host():
    r = run_sentry(["python3", "-c", "import os; os.openpty(); print(open('/dev/null').read() == '')"])
    assert r.stdout == b"True\n"
    with open("/proc/self/mountinfo") as f:
        assert "sentry-" not in f.read()
