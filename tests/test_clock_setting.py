"""Setting the host's clocks (syscalls/clock.py, syscalls/table.py): the
kernel answers, and refuses every change, since the guest holds no
CAP_SYS_TIME; reading the clocks' state works.  The same as natively for
root of a user namespace (`unshare -r`), as in a container: never natively
as root, which would set the machine's clock."""
import subprocess

from conftest import run_sentry

PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]
timex = ctypes.create_string_buffer(208)
def show(what, r):
    print(what, r if r >= 0 else os.strerror(ctypes.get_errno()), flush=True)
def settime(clock, ts):
    show(f"clock_settime {clock}", libc.syscall(227, clock, ts))
now = Timespec()
libc.clock_gettime(0, ctypes.byref(now))
settime(0, ctypes.byref(now))                    # EPERM
settime(0, None)                                 # EFAULT first
settime(1, ctypes.byref(now))                    # EINVAL: not settable
settime(99, ctypes.byref(now))                   # EINVAL
bad = Timespec(now.sec, 2 * 10**9)
settime(0, ctypes.byref(bad))                    # EINVAL before EPERM
tv = Timespec(now.sec, now.nsec // 1000)          # a valid timeval: usec below a million
show("settimeofday", libc.syscall(164, ctypes.byref(tv), None))    # EPERM
show("adjtimex read", 0 if libc.adjtimex(timex) >= 0 else -1)      # the state: a clock state number
ctypes.memmove(timex, (1).to_bytes(4, "little"), 4)                  # ADJ_OFFSET
show("adjtimex set", 0 if libc.adjtimex(timex) >= 0 else -1)       # EPERM
ctypes.memset(timex, 0, 208)
show("clock_adjtime read", 0 if libc.syscall(305, 0, timex) >= 0 else -1)
show("clock_adjtime bad clock", libc.syscall(305, 99, timex))      # EINVAL
"""


def test_clocks_are_read_and_not_set_as_in_a_container():
    native = subprocess.run(["unshare", "-r", "python3", "-c", PROBE], capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    lines = native.stdout.decode().splitlines()
    assert lines[0] == "clock_settime 0 Operation not permitted" and "adjtimex read 0" in lines, lines
    boxed = run_sentry(["python3", "-c", PROBE])
    assert boxed.stdout.decode().splitlines() == lines, boxed.stderr
