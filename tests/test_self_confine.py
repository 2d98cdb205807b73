"""The Sentry confines itself (sentry/platform/selfconfine.py): after set-up,
the Sentry, its mount helper, its fd holder, its outbound helper (the default
--network=sandbox) and its janitor each run under a seccomp filter
of their own and keep only the capabilities they use; a forbidden call stops
the sandbox with one clear line, and no guest outlives it."""
import os
import socket
import subprocess
import sys
import time
import uuid

from conftest import SENTRY, TIMEOUT

from sentry.platform import privileges, selfconfine

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _pids_with(marker):
    """Host pids whose command line holds marker, with their comm."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open(f"/proc/{name}/comm") as f:
                found[int(name)] = f.read().strip()
        except OSError:
            pass
    return found


def _mask(profile):
    if os.geteuid() != 0:
        return 0            # an unprivileged sentry holds none to keep
    m = 0
    for cap in selfconfine.PROFILES[profile][2]:
        m |= 1 << privileges.CAPS[cap]
    return m


def _env(**extra):
    env = dict(os.environ)
    env.pop(selfconfine.ENV, None)
    env.pop(selfconfine.PROBE_ENV, None)
    env.update(extra)
    return env


def _gone(marker, timeout=10):
    """Waits until no process with marker in its command line is left; what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = _pids_with(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_the_sentry_and_its_helpers_run_confined_while_a_guest_runs():
    marker = uuid.uuid4().hex
    p = subprocess.Popen(SENTRY + ["--", "sh", "-c", f"echo up; read x # {marker}"], env=_env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        helpers = (("sentry", "sentry"), ("sentry-mounts", "mount-helper"), ("sentry-janitor", "janitor"),
                   ("sentry-fdholder", "fd-holder"), ("sentry-outbound", "outbound"))
        # each helper names itself as it confines itself, which may come a
        # little after the guest's first output (the outbound helper's)
        deadline = time.monotonic() + 10
        while True:
            procs = _pids_with(marker)
            by_comm = {comm: pid for pid, comm in procs.items()}
            try:
                settled = all(comm in by_comm and _status(by_comm[comm])["Seccomp"] == "2"
                              for comm, _ in helpers)
            except OSError:
                settled = False
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert procs.get(p.pid) == "sentry", procs
        for comm, profile in helpers:
            assert comm in by_comm, (comm, procs)
            st = _status(by_comm[comm])
            assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", (comm, st)
            if profile == "mount-helper" and os.geteuid() != 0:
                continue     # its capabilities are those of its own user namespace
            want = _mask(profile)
            for k in ("CapEff", "CapPrm", "CapBnd"):
                assert int(st[k], 16) == want, (comm, k, st[k], hex(want))
            assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0, (comm, st)
        # the guest was forked before the Sentry confined itself: its
        # filters are its own, the fd handover's and the main one (a stacked
        # Sentry filter would kill it)
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            (guest,) = [int(pid) for pid in f.read().split()]
        st = _status(guest)
        assert st["Seccomp"] == "2" and st["Seccomp_filters"] == "2", st
        assert int(st["CapEff"], 16) == int(st["CapBnd"], 16) == 0, st
        p.stdin.write(b"\n")
        p.stdin.close()
        assert p.wait(TIMEOUT) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_forbidden_call_of_the_sentry_stops_the_sandbox_with_one_line():
    marker = "987.6543"           # sleep's argument: the guests' command lines
    p = subprocess.run(SENTRY + ["--", "sh", "-c", f"sleep {marker} & sleep {marker} & echo up; wait"],
                       env=_env(**{selfconfine.PROBE_ENV: "sentry@1"}), capture_output=True, timeout=TIMEOUT)
    assert p.stdout == b"up\n"
    assert p.returncode == selfconfine.SELF_FILTER_EXIT, p
    assert p.stderr.decode().splitlines() == [
        "sentry: internal error: the Sentry made syscall 322 (execveat), which its own filter forbids; stopping"]
    assert _gone(marker) == {}


def test_a_forbidden_call_of_the_mount_helper_stops_the_sandbox():
    marker = uuid.uuid4().hex
    p = subprocess.run(SENTRY + ["--", "sh", "-c", f"sleep 30; echo survived # {marker}"],
                       env=_env(**{selfconfine.PROBE_ENV: "mount-helper"}), capture_output=True, timeout=TIMEOUT)
    assert b"survived" not in p.stdout
    assert p.returncode == -9, p         # its handler kills the Sentry: the guests die with it
    assert ("sentry: internal error: the mount helper made syscall 322 (execveat), which its own filter "
            "forbids; stopping") in p.stderr.decode().splitlines()
    assert _gone(marker) == {}


def test_a_forbidden_call_of_the_fd_holder_stops_the_sandbox():
    marker = uuid.uuid4().hex
    p = subprocess.run(SENTRY + ["--", "sh", "-c", f"sleep 30; echo survived # {marker}"],
                       env=_env(**{selfconfine.PROBE_ENV: "fd-holder"}), capture_output=True, timeout=TIMEOUT)
    assert b"survived" not in p.stdout
    assert p.returncode == -9, p
    assert ("sentry: internal error: the fd holder made syscall 322 (execveat), which its own filter "
            "forbids; stopping") in p.stderr.decode().splitlines()
    assert _gone(marker) == {}


def test_a_forbidden_call_of_the_outbound_helper_stops_the_sandbox():
    marker = uuid.uuid4().hex
    p = subprocess.run(SENTRY + ["--", "sh", "-c", f"sleep 30; echo survived # {marker}"],
                       env=_env(**{selfconfine.PROBE_ENV: "outbound"}), capture_output=True, timeout=TIMEOUT)
    assert b"survived" not in p.stdout
    assert p.returncode == -9, p
    assert ("sentry: internal error: the outbound helper made syscall 322 (execveat), which its own filter "
            "forbids; stopping") in p.stderr.decode().splitlines()
    assert _gone(marker) == {}


def test_a_forbidden_call_of_the_port_forwarder_stops_the_sandbox():
    marker = uuid.uuid4().hex
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    p = subprocess.run(SENTRY + ["--publish", f"{port}:80", "--", "sh", "-c", f"sleep 30; echo survived # {marker}"],
                       env=_env(**{selfconfine.PROBE_ENV: "publish"}), capture_output=True, timeout=TIMEOUT)
    assert b"survived" not in p.stdout
    assert p.returncode in (-9, 125), p      # killed by it, or told it did not start
    assert ("sentry: internal error: the port forwarder made syscall 322 (execveat), which its own filter "
            "forbids; stopping") in p.stderr.decode().splitlines()
    assert _gone(marker) == {}


def test_the_port_forwarder_binds_and_listens_on_nothing():
    """The Sentry binds the published host ports; the forwarder, in the
    sandbox's network namespace, only accepts on them and connects inside."""
    names = {c.name for c in selfconfine.PUBLISH}
    for banned in ("bind", "listen", "socketpair", "execve", "execveat", "clone", "clone3", "setns", "unshare"):
        assert banned not in names, banned
    assert selfconfine.PROFILES["publish"][2] == {}


def test_the_outbound_helper_holds_no_capability_and_makes_no_socket():
    """It only finishes connections the Sentry started: no socket(2), no
    bind, listen or accept, no exec, no fork, and no capability."""
    names = {c.name for c in selfconfine.OUTBOUND_HELPER}
    for banned in ("socket", "socketpair", "bind", "listen", "accept", "accept4", "execve", "execveat",
                   "clone", "clone3", "fork", "vfork", "ptrace", "openat2", "unshare", "setns", "mount"):
        assert banned not in names, banned
    assert selfconfine.PROFILES["outbound"][2] == {}


def test_log_mode_lets_the_call_run():
    """SENTRY_SELF_FILTER=log, for debugging: the call runs (the kernel logs it)."""
    p = subprocess.run(SENTRY + ["--", "sh", "-c", "sleep 1; echo done"], capture_output=True, timeout=TIMEOUT,
                       env=_env(**{selfconfine.ENV: "log", selfconfine.PROBE_ENV: "sentry@0.3"}))
    assert (p.returncode, p.stdout, p.stderr) == (0, b"done\n", b"")


def test_an_unknown_filter_mode_is_refused():
    p = subprocess.run(SENTRY + ["--", "true"], capture_output=True, timeout=TIMEOUT,
                       env=_env(**{selfconfine.ENV: "off"}))
    assert p.returncode == 125
    assert p.stderr == b"sentry: SENTRY_SELF_FILTER=off: one of enforce, log\n"


def test_the_allowlist_page_is_the_tables():
    """docs/sentry-allowlist.md is generated from sentry/platform/selfconfine.py:
    regenerate it (`python -m sentry.platform.selfconfine > docs/sentry-allowlist.md`)."""
    made = subprocess.run([sys.executable, "-m", "sentry.platform.selfconfine"], capture_output=True,
                          check=True, cwd=ROOT)
    with open(os.path.join(ROOT, "docs", "sentry-allowlist.md"), "rb") as f:
        assert f.read() == made.stdout


def test_no_exec_and_no_new_namespaces_for_the_sentry():
    """The review's hard lines: never execve/execveat, clone only as fork,
    and no mount, unshare or setns in the Sentry's own list; sockets of
    its own only for the network's outbound connections (no unix, packet or
    raw socket: the domain is checked)."""
    names = {c.name: c for c in selfconfine.SENTRY}
    for banned in ("execve", "execveat", "clone3", "vfork", "mount", "umount2", "unshare", "setns",
                   "seccomp", "bpf", "io_uring_setup", "socketpair"):
        assert banned not in names, banned
    assert names["clone"].only is not None
    domains = {alt[0].value for alt in names["socket"].only}
    assert domains == {2, 10, 16}           # AF_INET, AF_INET6, AF_NETLINK
    helper = {c.name for c in selfconfine.MOUNT_HELPER}
    assert not helper & {"execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev"}


def test_a_guest_that_makes_itself_non_dumpable_is_still_served():
    """Why the Sentry keeps CAP_SYS_PTRACE: a guest's PR_SET_DUMPABLE 0
    reaches the host, and only that capability lets the Sentry read the
    memory of a non-dumpable task (the path of its next open)."""
    script = ("import ctypes; libc = ctypes.CDLL(None); assert libc.prctl(4, 0, 0, 0, 0) == 0; "
              "print(open('/proc/self/status').read().count('Name:'))")
    p = subprocess.run(SENTRY + ["--", "python3", "-c", script], capture_output=True, timeout=TIMEOUT,
                       env=_env())
    assert (p.returncode, p.stdout) == (0, b"1\n"), p.stderr.decode()


def test_a_guest_chmod_keeps_the_set_group_id_bit_on_a_file_of_another_group():
    """Why the Sentry keeps CAP_FSETID (when it runs as root): without it the
    kernel clears S_ISGID when the file's group is not one of the Sentry's."""
    script = "cd /tmp && touch f && chown 1000:1000 f && chmod 2755 f && stat -c %a f"
    p = subprocess.run(SENTRY + ["--", "sh", "-c", script], capture_output=True, timeout=TIMEOUT, env=_env())
    assert (p.returncode, p.stdout) == (0, b"2755\n"), p.stderr.decode()
