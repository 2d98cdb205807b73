"""sentry run by an unprivileged user, as platform teams without root run it:
the guest is still root of its sandbox, pids still start at 1, /dev and the
overlay are still private, and nothing of the host changes.

The test suite runs as root; these run sentry as `nobody`, from a
world-readable copy of the tree and of its Python dependencies (the test's
own interpreter may live where `nobody` cannot read, as pyenv's does under
/root)."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import NOBODY, nobody_sentry, skip_or_fail


@pytest.fixture(scope="module")
def as_nobody():
    top = tempfile.mkdtemp(dir="/var/tmp", prefix="sentry-unpriv-")
    try:
        python, env = nobody_sentry(top)

        def run(args, **kw):
            return subprocess.run(run.command + args, env=env, cwd="/",
                                  capture_output=True, timeout=60, **kw)
        run.command, run.env = NOBODY + [python, "-m", "sentry", "run"], env   # for other redirections
        yield run
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _sentry_dirs():
    """The sandboxes' private directories (sandbox/start.py: sentry-PID-*)
    whose Sentry is gone: others' running sandboxes may come and go."""
    def gone(path):
        m = re.match(r"sentry-(\d+)-", os.path.basename(path))
        return m is not None and not os.path.exists(f"/proc/{m.group(1)}")
    return {d for d in glob.glob("/tmp/sentry-*") + glob.glob("/dev/shm/sentry-*") if gone(d)}


def test_the_guest_is_root_of_its_sandbox(as_nobody):
    before = _sentry_dirs()
    motd = open("/etc/motd", "rb").read() if os.path.exists("/etc/motd") else None
    r = as_nobody(["--", "/bin/sh", "-c",
                   "id -u; id -g; echo $$; sh -c 'echo $PPID'; echo changed > /etc/motd; cat /etc/motd; "
                   "rm -f /bin/true; test -e /bin/true || echo removed; echo $(ls /dev); "
                   "grep -E '^(Uid|Gid)' /proc/self/status | tr '\\t' ' '"])
    assert r.stdout.decode().splitlines() == [
        "0", "0", "1", "1", "changed", "removed",
        "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero",
        "Uid: 0 0 0 0", "Gid: 0 0 0 0"], r.stderr.decode()
    assert r.returncode == 0
    assert os.path.exists("/bin/true")
    assert (open("/etc/motd", "rb").read() if os.path.exists("/etc/motd") else None) == motd
    deadline = time.time() + 10                      # removed by a child, after the exit
    while not _sentry_dirs() <= before and time.time() < deadline:
        time.sleep(0.1)
    assert _sentry_dirs() <= before                  # its private directories are gone


def test_python_and_ptys_work(as_nobody):
    r = as_nobody(["--", "python3", "-c",
                   "import os, pty, subprocess, sys\n"
                   "pid, fd = pty.fork()\n"
                   "if pid == 0:\n"
                   "    os.execvp('sh', ['sh', '-c', 'tty; echo in-pty'])\n"
                   "out = b''\n"
                   "while True:\n"
                   "    try: chunk = os.read(fd, 100)\n"
                   "    except OSError: break\n"
                   "    if not chunk: break\n"
                   "    out += chunk\n"
                   "os.waitpid(pid, 0)\n"
                   "print(out.decode().split())\n"
                   "print(subprocess.run(['cat', '/proc/self/status'], capture_output=True, text=True)"
                   ".stdout.count('Pid:'))"])
    assert r.stdout.decode().splitlines() == ["['/dev/pts/0', 'in-pty']", "3"], r.stderr.decode()


def test_host_processes_stay_out_of_reach(as_nobody):
    host = subprocess.Popen(NOBODY + ["sleep", "60"])          # same uid as the Sentry
    try:
        r = as_nobody(["--", "/bin/sh", "-c", f"kill -9 {host.pid}; echo $?; "
                       f"cat /proc/{host.pid}/status 2>&1 | grep -c 'No such'; kill -9 -1; echo $?"])
        assert host.poll() is None
        lines = r.stdout.decode().splitlines()
        assert lines[0] != "0" and lines[1] == "1", r.stdout.decode() + r.stderr.decode()
    finally:
        host.kill()
        host.wait()


OWNERS = r"""
d=$(mktemp -d); cd $d; touch f; mkdir sub
ls -ln f | cut -d' ' -f3,4; stat -c '%u %g' /etc/passwd f sub; find f -user 0 -group 0
chown 0:0 f && echo own-ok; chown 5 f 2>/dev/null || echo other-refused; chgrp 5 sub 2>/dev/null || echo group-refused
python3 -c 'import os; print(os.stat("f").st_uid, os.fstat(os.open("f", os.O_RDONLY)).st_uid, os.stat("/etc/passwd").st_gid)'
id -u; cd /; rm -rf $d
"""


def test_file_owners_are_as_in_a_user_namespace(as_nobody):
    """What `unshare -r` shows the same user natively: its own files are the
    guest's (root's), every other owner is the overflow id."""
    native = subprocess.run(NOBODY + ["unshare", "-r", "sh", "-c", OWNERS], capture_output=True, cwd="/",
                            env={"PATH": "/usr/bin:/bin", "HOME": "/"})
    if native.returncode != 0 and b"unshare" in native.stderr:
        skip_or_fail("userns", "no unprivileged user namespaces here: " + native.stderr.decode().strip())
    boxed = as_nobody(["--", "/bin/sh", "-c", OWNERS])
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr.decode()
    assert native.stdout.decode().splitlines()[:3] == ["0 0", "65534 65534", "0 0"]


def test_an_unprivileged_sentry_confines_itself_too(as_nobody):
    """Without CAP_SYS_ADMIN its own filter rests on no_new_privs; it holds
    no capability to keep, and a forbidden call still stops it with one line."""
    env = dict(as_nobody.env, SENTRY_TEST_SELF_FILTER_PROBE="sentry@1")
    r = subprocess.run(as_nobody.command + ["--", "sh", "-c", "echo up; sleep 30; echo survived"],
                       env=env, cwd="/", capture_output=True, timeout=60)
    assert r.stdout == b"up\n"
    assert r.returncode == 124, r
    assert r.stderr.decode().splitlines() == [
        "sentry: internal error: the Sentry made syscall 322 (execveat), which its own filter forbids; stopping"]


SYSV = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shm = libc.shmget(0x5E49, 4096, 0o1600)
p = libc.shmat(shm, None, 0)
ctypes.memmove(p, b"mine", 4)
q = libc.shmat(shm, ctypes.c_void_p(%d - (1 << 41)), 0)
print(shm >= 0, ctypes.string_at(p, 4), q == 2**64 - 1 and ctypes.get_errno() == 22)
"""


def test_system_v_ipc_is_the_sandboxs_unprivileged_too(as_nobody):
    """Unprivileged, the sandbox still has an IPC namespace of its own (in
    the helper's user namespace): objects work, and since the namespace's
    shmmax is not the helper's to set, shmat at any address below the
    staging area is refused (EINVAL)."""
    from sentry.platform import staging
    r = as_nobody(["--", "python3", "-c", SYSV % staging.BASE])
    assert r.stdout == b"True b'mine' True\n", r.stderr.decode()
    host = subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout
    assert "0x00005e49" not in host
    # /proc/sysvipc is that namespace's, its owner the guest's root
    r = as_nobody(["--", "sh", "-c", "ipcmk -M 4096 >/dev/null && cat /proc/sysvipc/shm"])
    rows = [line.split() for line in r.stdout.decode().splitlines()[1:]]
    assert len(rows) == 1 and rows[0][7:11] == ["0"] * 4, r.stdout.decode() + r.stderr.decode()


def _host_view(pid):
    """What the host says of process pid: its namespaces, capabilities,
    filters and tracer."""
    ns = {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("user", "net", "ipc")}
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return ns, {k: status[k].strip() for k in ("CapEff", "CapPrm", "NoNewPrivs", "Seccomp", "TracerPid")}


def test_exec_joins_an_unprivileged_sandbox(as_nobody):
    """`exec` into the sandbox of an unprivileged sentry (rootless podman's
    case): every new process -- four asked at once, from racing threads --
    is in the first process's user, network and IPC namespaces (as the host
    reads them), holds no capability, is traced by the Sentry and filtered,
    and sees the sandbox's pids, files and ids; a host process stays out of
    its reach."""
    import json
    import threading
    from bench.podmanenv import busybox_rootfs
    top = tempfile.mkdtemp(dir="/var/tmp", prefix="sentry-unpriv-oci-")
    os.chmod(top, 0o755)
    state = os.path.join(top, "state")
    os.mkdir(state)
    os.chown(state, 65534, 65534)
    sentry = as_nobody.command[:-1] + ["--root", state]
    host = subprocess.Popen(NOBODY + ["sleep", "60"])

    def cmd(*args, **kw):
        kw.setdefault("capture_output", True)
        return subprocess.run(sentry + list(args), env=as_nobody.env, cwd="/", text=True, timeout=60, **kw)
    try:
        bundle = os.path.join(top, "bundle")
        os.mkdir(bundle)
        spec = {"ociVersion": "1.0.2",
                "process": {"args": ["sh", "-c", "echo ready > /tmp/mark; exec sleep 60"], "cwd": "/",
                            "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
                "root": {"path": busybox_rootfs(os.path.join(top, "rootfs")), "readonly": True},
                "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                           {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
                "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "network", "ipc")]}}
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        with tempfile.TemporaryFile() as out:
            # the container's stdio is create's own: a file, not a pipe it would hold
            r = cmd("create", "--bundle", bundle, "u1", stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    capture_output=False)
            out.seek(0)
            assert r.returncode == 0, out.read()
        assert cmd("start", "u1").returncode == 0
        r = cmd("exec", "-u", "1000", "u1", "sh", "-c",
                f"cat /tmp/mark; id -u; echo $(ls -d /proc/[0-9]*); cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                f"kill -0 {host.pid} || echo out-of-reach")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "ready" and lines[1] == "1000" and lines[3] == "sleep 60 " and lines[4] == "out-of-reach", r
        assert lines[2].split()[0] == "/proc/1" and all(int(p[6:]) < 100 for p in lines[2].split()), lines[2]

        with open(os.path.join(state, "u1", "state.json")) as f:
            sentry_pid = json.load(f)["sentry_pid"]
        init = json.loads(cmd("ps", "--format", "json", "u1").stdout)
        assert len(init) == 1
        init_ns, _ = _host_view(init[0])
        outs = []
        threads = [threading.Thread(target=lambda: outs.append(cmd("exec", "u1", "sh", "-c",
                                                                   "cat /tmp/mark; id -u; sleep 3")))
                   for _ in range(4)]
        for t in threads:
            t.start()
        seen, deadline = set(), time.time() + 20
        while len(seen) < 4 and time.time() < deadline:
            for pid in json.loads(cmd("ps", "--format", "json", "u1").stdout):
                if pid in init or pid in seen:
                    continue
                try:
                    # ps lists it from its fork on, while it is still the
                    # Sentry's code joining the sandbox; what must hold is
                    # what the command runs in: looked at once it is exec'd
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if b"sentry" in f.read():
                            continue
                    ns, status = _host_view(pid)
                except (OSError, KeyError):
                    continue                # ended meanwhile
                assert ns == init_ns, (pid, ns, init_ns)
                assert status == {"CapEff": "0000000000000000", "CapPrm": "0000000000000000",
                                  "NoNewPrivs": "1", "Seccomp": "2", "TracerPid": str(sentry_pid)}, (pid, status)
                seen.add(pid)
            time.sleep(0.05)
        for t in threads:
            t.join(60)
        assert len(seen) >= 4, seen
        assert [(o.returncode, o.stdout) for o in outs] == [(0, "ready\n0\n")] * 4, outs
        assert host.poll() is None
    finally:
        cmd("delete", "--force", "u1")
        host.kill()
        host.wait()
        shutil.rmtree(top, ignore_errors=True)
