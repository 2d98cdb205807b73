"""Time namespaces a guest makes (issue 13; sentry/kernel/timens.py,
syscalls/timens.py): the same transcript as natively, as root and as root
of `unshare -r`, on the default root and a rootfs; util-linux's `unshare -T`;
racing threads never see a host time."""
import subprocess

import pytest

from conftest import rootfs_with, run_native, run_sentry, shown_copy


@pytest.mark.parametrize("where", ["root", "unshare-r", "rootfs"])
def test_time_namespace_as_natively(where, cbin, outside_tmp, busybox_root, tmp_path):
    """conf_timens: unshare(CLONE_NEWTIME), timens_offsets and its errors,
    a child's clocks (vDSO and syscall, after an exec too), absolute sleeps
    and timers, sysinfo's and /proc/uptime's uptime, clone3 CLONE_NEWTIME.
    Natively on the host (its /proc is needed), in sentry on the default
    root and on a busybox rootfs."""
    exe = shown_copy(cbin, outside_tmp, "conf_timens")
    wrap = ["unshare", "-r"] if where == "unshare-r" else []
    native = run_native(wrap + [exe, "/tmp"], timeout=60)
    assert native.returncode == 0, native.stderr.decode()
    if where == "rootfs":
        root, _ = rootfs_with(busybox_root, tmp_path, exe)
        boxed = run_sentry(["/bin/conf_timens", "/tmp"], rootfs=root, timeout=120)
    else:
        boxed = run_sentry(wrap + [exe, "/tmp"], timeout=120)
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr.decode()[-3000:]
    assert boxed.returncode == 0


def test_unshare_T_sets_the_offsets_of_what_it_runs():
    """util-linux's unshare -T writes the offsets, then forks the command
    into the namespace; -r with it, the namespace is the user namespace's."""
    script = ("unshare -T --fork --monotonic 100000 --boottime 86400 sh -c "
              "'cat /proc/self/timens_offsets; awk \"{print (\\$1 > 86400)}\" /proc/uptime;"
              " readlink /proc/self/ns/time | cut -c1-5';"
              "unshare -rT --boottime 7 cat /proc/self/timens_offsets")
    native = subprocess.run(["sh", "-c", script], capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr.decode()
    boxed = run_sentry(["sh", "-c", script], timeout=60)
    assert boxed.stdout == native.stdout, boxed.stderr.decode()[-3000:]


def test_racing_threads_never_read_a_host_time(cbin, outside_tmp):
    """timens_race: threads read CLOCK_MONOTONIC/BOOTTIME (vDSO and
    syscall) into one timespec another thread watches, and sleep to an
    absolute time a thread flips to the host's clock's: never a host time
    seen, never a sleep on the host's clock; the Sentry survives."""
    exe = shown_copy(cbin, outside_tmp, "timens_race")
    expected = ("watched reads > 0: 1, host times seen: 0\n"
                "sleeps on host time: 0, interrupted: 0\nchild exited 0\n")
    native = run_native([exe], timeout=120)
    assert native.stdout.decode() == expected, native.stderr.decode()
    boxed = run_sentry([exe], timeout=240)
    assert boxed.stdout.decode() == expected, boxed.stderr.decode()[-3000:]
    assert "Traceback" not in boxed.stderr.decode()



TIMED_WAITS = """
import threading, time
lock = threading.Lock()
lock.acquire()
t = time.time()
got = lock.acquire(timeout=0.3)          # sem_clockwait(CLOCK_MONOTONIC): FUTEX_WAIT_BITSET
print(got, 0.25 < time.time() - t < 5)
cond = threading.Condition()
with cond:
    t = time.time()
    cond.wait(0.2)
    print(0.15 < time.time() - t < 5)
"""


@pytest.mark.parametrize("offset", ["-1000", "100000"])
def test_timed_waits_in_a_time_namespace(offset):
    """Python's lock and condition timeouts (a futex wait to an absolute
    CLOCK_MONOTONIC time) last what they ask in a namespace whose clock is
    behind or far ahead of the host's, as natively."""
    cmd = ["unshare", "-T", "--fork", "--monotonic", offset, "python3", "-c", TIMED_WAITS]
    native = subprocess.run(cmd, capture_output=True, timeout=60)
    assert native.stdout == b"False True\nTrue\n", native.stderr.decode()
    boxed = run_sentry(cmd, timeout=60)
    assert boxed.stdout == native.stdout, boxed.stderr.decode()[-3000:]
