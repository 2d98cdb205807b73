"""Differences real programs found (issue 16), each checked against the same
program run natively from the same parent."""
import os
import re
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


def _stat_fields(line):
    """/proc/<pid>/stat as a list numbered as proc(5) numbers its fields."""
    head, _, tail = line.rpartition(")")
    pid, _, comm = head.partition(" (")
    return [None, pid, comm] + tail.split()


def test_proc_stat_tty_fields_without_a_terminal():
    # setsid: a session with no controlling terminal, whose leader is sh
    script = "cat /proc/self/stat; ps -o stat=,tpgid=,tty= -p $$"
    native = run_native(["setsid", "sh", "-c", script])
    boxed = run_sentry(["setsid", "sh", "-c", script])
    assert native.returncode == 0 and boxed.returncode == 0, boxed.stderr
    n_stat, n_ps = native.stdout.decode().splitlines()
    b_stat, b_ps = boxed.stdout.decode().splitlines()
    n, b = _stat_fields(n_stat), _stat_fields(b_stat)
    assert (n[7], n[8]) == ("0", "-1")                  # tty_nr, tpgid
    assert (b[7], b[8]) == (n[7], n[8])
    for f in (n, b):                                     # ppid (sh) leads group and session
        assert f[4] == f[5] == f[6] != "0"
    # stat has an N when the test runner itself runs niced
    assert b_ps.split() == n_ps.split()
    assert n_ps.replace("N", "").split() == ["Ss", "-1", "?"]


def test_ps_does_not_show_a_process_without_a_terminal_as_foreground():
    # no controlling terminal, in a group of the sandbox's parent: tpgid and
    # pgrp must not both read 0, which ps takes for a foreground process
    native = run_native(["sh", "-c", "ps -o stat=,tpgid= -p $$"], start_new_session=True)
    boxed = run_sentry(["sh", "-c", "ps -o stat=,tpgid= -p $$"], start_new_session=True)
    for r in (native, boxed):
        assert r.returncode == 0, r.stderr
        stat, tpgid = r.stdout.decode().split()
        assert tpgid == "-1" and "+" not in stat


def test_fdinfo_of_a_pidfd_whose_process_exited():
    script = ("import os\n"
              "p = os.fork()\n"
              "if p == 0: os._exit(0)\n"
              "fd = os.pidfd_open(p)\n"
              "os.waitpid(p, 0)\n"
              "print([l for l in open(f'/proc/self/fdinfo/{fd}').read().splitlines() if 'Pid' in l])\n")
    native = run_native(["python3", "-c", script])
    boxed = run_sentry(["python3", "-c", script])
    assert native.stdout == b"['Pid:\\t-1']\n", native.stderr
    assert boxed.stdout == native.stdout, boxed.stderr


def _shape(text):
    """Each line's tokens, numbers (12, 0.66, 4:56, 1,234) made alike: what
    must match natively when the values may not."""
    return [re.sub(r"[0-9]+(?:[.:,][0-9]+)*", " N ", line).split() for line in text.splitlines()]


@pytest.mark.parametrize("cmd", [
    ["vmstat"], ["vmstat", "-w"], ["vmstat", "-s"], ["vmstat", "-S", "M", "1", "2"],
    ["free"], ["free", "-h", "-w"], ["uptime"],
    # setsid: sh leads a session, also in the sandbox's PID namespace
    ["setsid", "sh", "-c", "ps u -p $$"],
    ["setsid", "sh", "-c", "ps -o pid,ppid,pgid,tpgid,stat,tty,wchan,comm -p $$"],
], ids=" ".join)
def test_procps_output_has_the_native_shape(cmd):
    native = run_native(cmd, start_new_session=True)
    boxed = run_sentry(cmd, start_new_session=True)
    after = run_native(cmd, start_new_session=True)
    assert native.returncode == 0 and native.stderr == b"", native.stderr
    assert boxed.returncode == 0 and boxed.stderr == b"", boxed.stderr
    # natively before or after: a value may change shape meanwhile ("up 59 min" -> "up 1:00")
    assert _shape(boxed.stdout.decode()) in (_shape(native.stdout.decode()), _shape(after.stdout.decode()))


def test_top_batch_output_has_the_native_shape():
    native = run_native(["top", "-b", "-n1"], start_new_session=True)
    boxed = run_sentry(["top", "-b", "-n1"], start_new_session=True)
    assert native.returncode == 0 and boxed.returncode == 0, boxed.stderr
    n, b = native.stdout.decode().splitlines(), boxed.stdout.decode().splitlines()
    # the summary and the column titles; the process lines are the sandbox's
    assert _shape("\n".join(b[:7])) == _shape("\n".join(n[:7]))
    assert b[7].split()[-1] == "top" and len(b) == 8


def test_machine_wide_proc_files_exist_and_disks_are_not_the_hosts():
    script = ("for f in vmstat buddyinfo zoneinfo pressure/cpu pressure/io pressure/memory; do "
              "  test -s /proc/$f && echo $f; done; ls /proc/pressure | tr '\\n' ' '; echo; "
              "wc -c < /proc/diskstats; cat /proc/partitions; vmstat -d; echo rc=$?")
    boxed = run_sentry(["sh", "-c", script])
    lines = boxed.stdout.decode().splitlines()
    assert lines[:6] == ["vmstat", "buddyinfo", "zoneinfo", "pressure/cpu", "pressure/io",
                         "pressure/memory"], boxed.stderr
    assert lines[6].split() == sorted(os.listdir("/proc/pressure"))
    # no block device of the sandbox's own: procps sees an empty table
    assert lines[7:] == ["0", "major minor  #blocks  name", "", "rc=0"]
    # the host's counters, as they are (their names, in their order)
    with open("/proc/vmstat") as f:
        host_keys = [l.split()[0] for l in f]
    shown = run_sentry(["cat", "/proc/vmstat"]).stdout.decode().splitlines()
    assert [l.split()[0] for l in shown] == host_keys


def test_per_process_files_procps_and_psutil_read():
    script = ("cat /proc/self/loginuid; echo; cat /proc/self/sessionid; echo; "
              "head -c 6 /proc/self/io; echo; cat /proc/self/personality; "
              "grep -c '^Rss:' /proc/self/smaps; grep -c . /proc/self/maps; "
              "grep -c '^[0-9a-f]*-[0-9a-f]* ' /proc/self/smaps; "
              "grep -c '^[0-9a-f]*-.*rollup' /proc/self/smaps_rollup; "
              "cat /proc/self/coredump_filter")
    boxed = run_sentry(["sh", "-c", script])
    lines = boxed.stdout.decode().splitlines()
    assert lines[:4] == ["4294967295", "4294967295", "rchar:", "00000000"], boxed.stderr
    rss_blocks, maps_lines, smaps_heads, rollup = map(int, lines[4:8])
    assert rss_blocks == smaps_heads and rollup == 1
    # one smaps block per line of maps (each grep maps itself alike), the
    # Sentry's own mapping in neither
    assert abs(smaps_heads - maps_lines) <= 1
    with open("/proc/self/coredump_filter") as f:     # inherited, as natively
        assert lines[8:] == [f.read().strip()]
    assert "3ff000000000" not in run_sentry(["cat", "/proc/self/smaps", "/proc/self/smaps_rollup"]).stdout.decode()
