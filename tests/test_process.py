"""Process model: fork, vfork, exec from a thread, job-control stops, orphans,
SIGCHLD, clean end of the sandbox, interactive job control through a pty."""
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from conftest import SENTRY, copy_root, install, run_native, run_sentry


@pytest.fixture(scope="module")
def proc_root(tmp_path_factory, busybox_root, cbin):
    root = str(tmp_path_factory.mktemp("proc") / "root")
    copy_root(busybox_root, root)
    install(cbin("procs"), root)
    return root


@pytest.mark.parametrize("case", ["vfork", "thread-exec", "stopcont", "orphan", "sigchld", "zombie"])
def test_process_cases_match_native(proc_root, case):
    native = run_native(["/bin/procs", case], proc_root)
    boxed = run_sentry(["/bin/procs", case], proc_root)
    assert native.returncode == 0 and native.stdout
    assert (boxed.stdout, boxed.returncode) == (native.stdout, native.returncode)


def _processes_under(root):
    """Host pids whose executable lies inside root."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/exe").startswith(root + "/"):
                    found.append(int(pid))
            except OSError:
                pass
    return found


def test_sandbox_dies_with_its_first_process(proc_root):
    r = run_sentry(["/bin/procs", "spawn-bg"], proc_root, timeout=30)
    assert r.stdout == b"init leaving\n" and r.returncode == 0
    assert _processes_under(proc_root) == []


def test_sigkill_of_the_sentry_leaves_no_guest(proc_root):
    p = subprocess.Popen(SENTRY + ["--rootfs", proc_root, "--", "/bin/sh", "-c",
                                   "sleep 1000 & sleep 1000 & echo started; wait"],
                         stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"started\n"
    assert len(_processes_under(proc_root)) >= 3
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while _processes_under(proc_root) and time.time() < deadline:
        time.sleep(0.05)
    assert _processes_under(proc_root) == []
    # nor its private directories (tests/test_creds_limits.py looks closer)
    import tempfile
    while time.time() < deadline and [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"sentry-{p.pid}-")]:
        time.sleep(0.05)
    assert not [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"sentry-{p.pid}-")]


def test_sigterm_to_the_sentry_reaches_the_guest(proc_root):
    p = subprocess.Popen(SENTRY + ["--rootfs", proc_root, "--", "/bin/sh", "-c",
                                   "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.05; done"],
                         stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.stdout.readline() == b"got TERM\n"
    assert p.wait(timeout=30) == 9


def test_strace_and_log(proc_root, tmp_path):
    r = run_sentry(["/bin/cat", "/etc/passwd"], proc_root, extra=["--strace"])
    log = r.stderr.decode()
    assert '] openat(AT_FDCWD, "/etc/passwd", O_RDONLY' in log and ") = 3 (rewritten)\n" in log
    assert '] execve("/bin/cat", ["/bin/cat", "/etc/passwd"], 0x' in log
    logfile = tmp_path / "sentry.log"
    r = run_sentry(["/bin/sh", "-c", "cat /nonexistent"], proc_root,
                   extra=["--strace", "--log", str(logfile)])
    assert b"sentry:" not in r.stderr
    assert ('"/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory) (emulated)\n'
            in logfile.read_text())


def _pty_session(argv, steps, timeout=30):
    """Drive argv on a pseudo-terminal: steps is a list of (text to send,
    text to wait for).  Returns everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    seen = b""
    try:
        for send, expect in steps:
            start = len(seen)
            if send:
                time.sleep(0.3)     # let the shell settle (foreground group, line editor)
                os.write(fd, send)
            deadline = time.time() + timeout
            while expect.encode() not in seen[start:]:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"waiting for {expect!r}; terminal showed:\n{seen.decode(errors='replace')}")
                r, _, _ = select.select([fd], [], [], left)
                if r:
                    try:
                        seen += os.read(fd, 4096)
                    except OSError:
                        break
        return seen.decode(errors="replace")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


def _job_control(argv, prompt):
    return _pty_session(argv, [
        (None, prompt),
        (b"sleep 100\n", "sleep"),
        (b"\x1a", "Stopped"),               # Ctrl-Z
        (b"jobs\n", "sleep 100"),
        (b"bg\n", prompt),
        (b"fg\n", "sleep 100"),
        (b"\x03", prompt),                  # Ctrl-C
        (b"echo after-$((40+2))\n", "after-42"),
        (b"exit\n", ""),
    ])


def test_interactive_job_control_busybox(proc_root):
    """Ctrl-Z, jobs, bg, fg and Ctrl-C reach the right process groups."""
    out = _job_control(SENTRY + ["--rootfs", proc_root, "--", "/bin/sh", "-i"], "# ")
    assert "Stopped" in out and "after-42" in out


def test_interactive_job_control_bash(host_root):
    out = _job_control(SENTRY + ["--rootfs", host_root, "--", "/bin/bash", "--norc", "-i"], "# ")
    assert "Stopped" in out and "after-42" in out


def test_fork_bomb_is_bounded_by_pids_limit(proc_root, cbin):
    install(cbin("forkbomb"), proc_root)
    r = run_sentry(["/bin/forkbomb", "1000"], proc_root, extra=["--pids-limit", "50"])
    assert r.stdout == b"forked 49, then EAGAIN\n"
    # a shell fork bomb: the sandbox stays bounded, its shell goes on, and it ends cleanly
    r = run_sentry(["/bin/sh", "-c", "b(){ b|b& }; b; sleep 1; echo alive"], proc_root,
                   extra=["--pids-limit", "100"], timeout=60)
    assert r.stdout == b"alive\n" and r.returncode == 0
    assert b"Resource temporarily unavailable" in r.stderr
    assert _processes_under(proc_root) == []


def test_a_refused_thread_whose_exit_is_denied_does_not_run_on(proc_root, cbin, tmp_path):
    """Over --pids-limit, a new thread is made to exit(0) at its first stop.
    A filter of the guest's own that denies exit(2) sent it back into its
    own code, where the Sentry, waiting for its end, let every stop go: its
    trapped calls ran unchecked (it opened a host path).  Now the process
    is killed at the first call it makes."""
    secret = tmp_path / "secret"
    secret.write_text("host only\n")
    install(cbin("refused_thread"), proc_root)
    r = run_sentry(["/bin/refused_thread", str(secret)], proc_root, extra=["--pids-limit", "4"])
    assert b"ESCAPED" not in r.stdout and b"ran on" not in r.stdout, r.stdout
    assert r.returncode == 137 and b"refused, runs on" in r.stderr, (r.returncode, r.stderr)
    # under the limit the same program makes all its threads
    r = run_sentry(["/bin/sh", "-c", "exec /bin/refused_thread /none"], proc_root, extra=["--pids-limit", "50"])
    assert r.returncode == 0 and r.stdout.startswith(b"made 16 threads"), (r.stdout, r.stderr)


def test_bad_pids_limit():
    r = subprocess.run(SENTRY + ["--pids-limit", "-1", "--", "true"], capture_output=True, text=True)
    assert r.returncode == 125 and "--pids-limit" in r.stderr


PRIORITIES = r'''
import ctypes, os, sys, time
l = ctypes.CDLL(None, use_errno=True)
def g(which, who):
    ctypes.set_errno(0); r = l.syscall(140, which, who)
    print("get", which, "child" if who == pid else who, r, os.strerror(ctypes.get_errno()) if r < 0 else "")
def s(which, who, v):
    ctypes.set_errno(0); r = l.syscall(141, which, who, v)
    print("set", which, "child" if who == pid else who, v, r, os.strerror(ctypes.get_errno()) if r < 0 else "")
uid = 4242
os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
pid = os.fork()
if pid == 0:
    time.sleep(3); os._exit(0)
g(0, 0); g(2, 0); g(2, uid); g(2, 4243); g(2, 0xffffffff); g(1, 0); g(5, 0)
s(0, 0, 5); g(0, 0); s(0, 0, 3); g(0, 0); s(0, pid, 7); g(0, pid); s(2, 0, 8); g(2, 0); g(0, pid)
s(2, 4243, 1); s(9, 0, 1); s(0, 0, 100); g(0, 0); s(0, 0, -100); g(0, 0)
os.kill(pid, 9); os.wait()
'''


def test_priorities_as_linux_sets_them():
    """getpriority/setpriority of a process, a group and a user (PRIO_USER:
    the sandbox's processes of that real uid), with Linux's checks, run
    natively as an unprivileged uid (only its own processes are touched)."""
    native = subprocess.run(["python3", "-c", PRIORITIES], capture_output=True)
    boxed = run_sentry(["python3", "-c", PRIORITIES])
    assert native.returncode == 0 and b"Permission denied" in native.stdout, native.stderr
    assert boxed.stdout == native.stdout, boxed.stderr


def test_root_lowers_a_nice_value():
    """The sandbox's root holds CAP_SYS_NICE: `nice -n -5` works as natively
    (the host's check would refuse the guest's process, which holds none)."""
    native = subprocess.run(["nice", "-n", "-5", "nice"], capture_output=True)
    boxed = run_sentry(["nice", "-n", "-5", "nice"])
    lowered = max(-20, os.getpriority(os.PRIO_PROCESS, 0) - 5)   # the runner may run niced
    assert native.stdout == boxed.stdout == b"%d\n" % lowered, boxed.stderr


ORDER = r'''
import os, tempfile, time
d = tempfile.mkdtemp(); os.chmod(d, 0o755)
na = os.path.join(d, "na")
open(na, "w").close()
pid = os.fork()
if pid == 0:
    os.setresuid(4242, 4242, 4242)
    try:
        os.close(os.open(na, os.O_RDONLY | os.O_NOATIME)); print("noatime ok")
    except OSError as e:
        print("noatime", e.strerror)
    os._exit(0)
os.wait()
os.close(os.open(na, os.O_RDONLY | os.O_NOATIME)); print("root noatime ok")
os.unlink(na); os.rmdir(d)
pid = os.fork()
if pid == 0:
    os.execlp("sleep", "sleep", "1")
time.sleep(0.3)
for g in (os.getppid(), 0, 999999):
    try:
        os.setpgid(pid, g); print("setpgid ok")
    except OSError as e:
        print("setpgid", e.strerror)
os.wait()
'''


def test_permission_errors_in_linux_order():
    """O_NOATIME needs the owner or CAP_FOWNER (LTP open02); setpgid of a
    child that has exec'd is EACCES whatever the group (LTP setpgid03)."""
    native = subprocess.run(["python3", "-c", ORDER], capture_output=True)
    boxed = run_sentry(["python3", "-c", ORDER])
    assert native.stdout.decode().split("\n")[:2] == ["noatime Operation not permitted", "root noatime ok"]
    assert boxed.stdout == native.stdout, boxed.stderr


INSPECT = r'''
import ctypes, os, time
l = ctypes.CDLL(None, use_errno=True)
l.syscall.argtypes = [ctypes.c_long] * 7
head = ctypes.c_void_p(); ln = ctypes.c_size_t()
def grl(pid):
    r = l.syscall(274, pid, ctypes.addressof(head), ctypes.addressof(ln), 0, 0, 0); print("get_robust_list", "child" if pid == c else ("self" if pid == os.getpid() else pid), r, os.strerror(ctypes.get_errno()) if r else "")
c = os.fork()
if c == 0:
    time.sleep(2); os._exit(0)
time.sleep(0.2)
grl(0); grl(c); grl(os.getpid())
buf = ctypes.create_string_buffer(8)
class iov(ctypes.Structure): _fields_ = [("b", ctypes.c_void_p), ("n", ctypes.c_size_t)]
a = iov(ctypes.addressof(buf), 8)
r = l.syscall(310, c, ctypes.addressof(a), 1, ctypes.addressof(a), 1, 1); print("vm_readv flags", r, os.strerror(ctypes.get_errno()))
pid = os.fork()
if pid == 0:
    os.setresgid(1, 1, 1); os.setresuid(1, 1, 1)
    grl(c); grl(0)
    r = l.syscall(310, c, ctypes.addressof(a), 1, ctypes.addressof(a), 1, 0); print("vm_readv", r, os.strerror(ctypes.get_errno()))
    r = l.syscall(312, os.getpid(), c, 0, 0, 0, 0); print("kcmp", r, os.strerror(ctypes.get_errno()))
    os._exit(0)
os.wait(); os.kill(c, 9); os.wait()
'''


def test_inspecting_another_process_needs_its_ids_or_cap_sys_ptrace():
    """get_robust_list, process_vm_readv/writev, kcmp and move_pages of a
    process of other ids are EPERM, as ptrace_may_access says, though every
    guest is one host uid (LTP get_robust_list01, process_vm_readv01)."""
    native = subprocess.run(["python3", "-c", INSPECT], capture_output=True)
    boxed = run_sentry(["python3", "-c", INSPECT])
    assert native.stdout.count(b"Operation not permitted") == 3, native
    assert boxed.stdout == native.stdout, boxed.stderr


KILLS = r'''
import os, signal, time
c = os.fork()
if c == 0:
    time.sleep(3); os._exit(0)
d = os.fork()
if d == 0:
    os.setresuid(4242, 4242, 4242)
    for name, f in (("kill", lambda: os.kill(c, 0)), ("kill usr1", lambda: os.kill(c, signal.SIGUSR1)),
                    ("kill cont", lambda: os.kill(c, signal.SIGCONT)), ("kill self", lambda: os.kill(os.getpid(), 0)),
                    ("killpg", lambda: os.killpg(os.getpgid(c), 0)),
                    ("usr2", lambda: os.kill(c, signal.SIGUSR2))):
        try: f(); print(name, "ok")
        except OSError as e: print(name, e.strerror)
    os._exit(0)
os.waitpid(d, 0)
os.kill(c, 9); os.wait()
'''


def test_signals_need_the_senders_ids_or_cap_kill():
    """kill, killpg and friends from a guest of another uid are EPERM, as
    check_kill_permission says, but SIGCONT within the session and a group
    with one process it may signal (LTP pidfd_send_signal02's EPERM)."""
    native = subprocess.run(["python3", "-c", KILLS], capture_output=True)
    boxed = run_sentry(["python3", "-c", KILLS])
    assert native.stdout.count(b"Operation not permitted") == 3, native
    assert boxed.stdout == native.stdout, boxed.stderr


def test_clone3_arguments_changed_in_flight_never_make_an_untraced_child(proc_root, cbin):
    """clone3's struct is in guest memory: a thread turns its flags to
    CLONE_UNTRACED a random while after each call begins.  The Sentry
    checks a copy the kernel then reads, so each call makes a traced child
    or is EPERM, both seen, never a child the tracer does not know (the
    same program with the kernel pointed at the guest's struct counts
    hundreds of those)."""
    target = install(cbin("clone3_race"), proc_root)
    r = run_sentry([target, "4", "60"], proc_root, timeout=60)
    counts = dict(zip(*[iter(r.stdout.decode().split())] * 2))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert counts["untraced"] == "0", counts
    assert int(counts["forks"]) > 0 and int(counts["eperm"]) > 0, counts
