"""sentry as an OCI runtime, in the manner of runc's integration tests:
create/start/state/kill/delete/run on a busybox bundle, the pid file's
process and its exit status, error texts the engines read, the console
socket, pause/resume, and the command line's two `run`s."""
import errno
import json
import pathlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from conftest import NOBODY, copy_root, nobody_sentry

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ENV = {**os.environ, "PYTHONPATH": REPO}
TIMEOUT = 60


@pytest.fixture
def oci(tmp_path, busybox_root):
    # a copy: create makes the mounts' mount points in the rootfs, as runc
    rootfs = str(tmp_path / "rootfs")
    copy_root(busybox_root, rootfs)
    return Oci(tmp_path, rootfs)


class Oci:
    def __init__(self, tmp_path, rootfs):
        self.tmp = tmp_path
        self.root = str(tmp_path / "state")
        self.rootfs = rootfs
        self.n = 0

    def bundle(self, args, **changes):
        """A bundle whose root is the test's busybox tree, read-only (tests
        write in a tmpfs or a bind of their own)."""
        self.n += 1
        b = self.tmp / f"bundle{self.n}"
        b.mkdir()
        spec = {"ociVersion": "1.0.2",
                "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                            "env": ["PATH=/bin:/usr/bin", "HOME=/root"], "cwd": "/"},
                "root": {"path": self.rootfs, "readonly": True},
                "hostname": "box",
                "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                           {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}
        for k, v in changes.items():
            if k in spec["process"] or k in ("user", "rlimits", "terminal", "consoleSize", "oomScoreAdj"):
                spec["process"][k] = v
            else:
                spec[k] = v
        (b / "config.json").write_text(json.dumps(spec))
        return str(b)

    def cmd(self, *args, glob=(), **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("timeout", TIMEOUT)
        return subprocess.run([sys.executable, "-m", "sentry", "--root", self.root, *glob, *args],
                              env=ENV, text=True, **kw)

    def create(self, cid, bundle, *extra, out=None):
        """create's stdio become the container's and stay open in it: files,
        never pipes a caller would wait to see closed."""
        out = out or str(self.tmp / f"{cid}.out")
        with open(out, "w") as o, open(out + ".err", "w") as e:
            r = subprocess.run([sys.executable, "-m", "sentry", "--root", self.root, "create",
                                "--bundle", bundle, *extra, cid], stdin=subprocess.DEVNULL,
                               stdout=o, stderr=e, env=ENV, timeout=TIMEOUT)
        r.out, r.err = out, out + ".err"
        return r

    def state(self, cid):
        r = self.cmd("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def wait_status(self, cid, status, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state(cid)["status"] == status:
                return
            time.sleep(0.05)
        raise AssertionError(f"{cid}: still {self.state(cid)['status']}, not {status}")


def read_when(path, pred, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        with open(path) as f:
            text = f.read()
        if pred(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_of(root):
    """Host pids whose command line names the state root: create and its forks."""
    pids = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and root.encode() in open(f"/proc/{name}/cmdline", "rb").read():
                pids.append(int(name))
        except OSError:
            pass
    return pids


def gone_soon(pids, timeout=5):
    """None of pids runs within timeout (a zombie waits for its new parent)."""
    deadline = time.monotonic() + timeout
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_running(p) for p in pids)


def test_lifecycle(oci, tmp_path):
    b = oci.bundle(["sh", "-c", "echo started; exec sleep 100"])
    pidfile = str(tmp_path / "pid")
    r = oci.create("c1", b, "--pid-file", pidfile)
    assert r.returncode == 0, open(r.err).read()
    st = oci.state("c1")
    pid = int(open(pidfile).read())
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == "c1"
    assert st["bundle"] == b and st["ociVersion"] and st["created"] and st["rootfs"]
    os.kill(pid, 0)                                 # alive after create has exited
    time.sleep(0.3)
    assert open(r.out).read() == ""                 # process.args waits for start

    assert oci.cmd("start", "c1").returncode == 0
    assert read_when(r.out, lambda t: t) == "started\n"
    assert oci.state("c1")["status"] == "running"
    again = oci.cmd("start", "c1")
    assert again.returncode == 1 and "cannot start" in again.stderr

    ps = oci.cmd("ps", "--format", "json", "c1")
    pids = json.loads(ps.stdout)
    assert len(pids) == 1 and pid not in pids      # the guest's host pid, not the Sentry's
    # the pid file names the Sentry's stand-in: its parent, whose /proc
    # (what podman top reads) holds nothing of the host
    sentry = int(open(f"/proc/{pid}/task/{pid}/children").read().split()[0])
    assert f"TracerPid:\t{sentry}\n" in open(f"/proc/{pids[0]}/status").read()
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.listdir(f"/proc/{pid}/root/proc") == []
    status = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    assert status["Name"] == "sentry-standin" and status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
    assert all(int(status[k], 16) == 0 for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb")), status
    listed = json.loads(oci.cmd("list", "--format", "json").stdout)
    assert [(s["id"], s["status"]) for s in listed] == [("c1", "running")]
    assert oci.cmd("list", "-q").stdout == "c1\n"

    busy = oci.cmd("delete", "c1")
    assert busy.returncode == 1 and "not stopped" in busy.stderr
    assert oci.cmd("kill", "c1", "KILL").returncode == 0
    oci.wait_status("c1", "stopped")
    assert oci.state("c1")["pid"] == 0
    assert oci.cmd("delete", "c1").returncode == 0
    gone = oci.cmd("state", "c1")
    assert gone.returncode == 1 and "does not exist" in gone.stderr and gone.stdout == ""
    assert gone_soon(pids + [pid]), "a guest outlived its container"


# A stand-in for conmon: a subreaper that runs create, lets it exit, waits
# on the pid in the pid file (the orphan it inherits) and reports its status.
REAPER = textwrap.dedent("""
    import ctypes, os, subprocess, sys, time
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    root, bundle, cid, pidfile, action = sys.argv[1:6]
    sentry = [sys.executable, "-m", "sentry", "--root", root]
    out = open(pidfile + ".out", "w")
    r = subprocess.run(sentry + ["create", "--bundle", bundle, "--pid-file", pidfile, cid],
                       stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    if r.returncode:
        print("create", r.returncode); sys.exit(0)
    pid = int(open(pidfile).read())
    subprocess.run(sentry + ["start", cid], check=True)
    if action in ("TERM", "SIGINT"):
        # a signal the init does not handle yet never reaches it (pid 1 of
        # its namespace, as under runc): wait until its trap is set
        bit = 1 << ({"TERM": 15, "SIGINT": 2}[action] - 1)
        def caught():
            try:
                # the pid file names the Sentry's stand-in, its parent
                sentry = int(open(f"/proc/{pid}/task/{pid}/children").read().split()[0])
                for k in open(f"/proc/{sentry}/task/{sentry}/children").read().split():
                    st = dict(l.split(":", 1) for l in open(f"/proc/{k}/status"))
                    past_exec = b"trap" in open(f"/proc/{k}/cmdline", "rb").read()
                    if int(st["TracerPid"]) == sentry and past_exec and int(st["SigCgt"], 16) & bit:
                        return True      # the guest's init, its trap set
            except OSError:
                pass
            return False
        while not caught():
            time.sleep(0.01)
    if action != "-":
        subprocess.run(sentry + ["kill", cid, action], check=True)
    while True:
        p, status = os.waitpid(-1, 0)      # orphans of the runtime's come here too
        if p == pid:
            break
    print("signal" if os.WIFSIGNALED(status) else "exit",
          os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    subprocess.run(sentry + ["delete", cid], check=True)
""")


@pytest.mark.parametrize("args,action,want", [
    (["true"], "-", "exit 0"),
    (["sh", "-c", "exit 3"], "-", "exit 3"),
    (["sh", "-c", "sh -c 'kill -9 $$'; exit $?"], "-", "exit 137"),     # as a shell reports a child's death
    (["sleep", "100"], "KILL", "signal 9"),                   # conmon: 137
    (["sleep", "100"], "9", "signal 9"),
    (["sh", "-c", "trap 'exit 5' TERM; sleep 100 & wait"], "TERM", "exit 5"),
    (["sh", "-c", "trap 'exit 6' INT; sleep 100 & wait"], "SIGINT", "exit 6"),
], ids=["0", "3", "137-child", "kill-KILL", "kill-9", "kill-TERM-handled", "kill-SIGINT-handled"])
def test_pid_file_process_exits_with_the_containers_status(oci, tmp_path, args, action, want):
    b = oci.bundle(args)
    pidfile = str(tmp_path / "pid")
    r = subprocess.run([sys.executable, "-c", REAPER, oci.root, b, "x", pidfile, action],
                       capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
    assert r.stdout.strip() == want, (r.stdout, r.stderr, open(pidfile + ".out").read())
    assert oci.cmd("state", "x").returncode == 1


@pytest.mark.parametrize("arg0,text", [
    ("nosuch", 'exec: "nosuch": executable file not found in $PATH'),
    ("/no/such", 'exec: "/no/such": stat /no/such: no such file or directory'),
    ("/etc/passwd", 'exec: "/etc/passwd": permission denied'),
    ("/bin", 'exec: "/bin": permission denied'),
])
def test_create_checks_the_entrypoint_in_runcs_words(oci, tmp_path, arg0, text):
    log = str(tmp_path / "log.json")
    r = oci.cmd("create", "--bundle", oci.bundle([arg0]), "bad",
                glob=("--log-format=json", "--log", log))
    assert r.returncode == 1 and r.stderr.strip().endswith(text)
    lines = [json.loads(line) for line in open(log)]
    assert lines[-1]["level"] == "error" and lines[-1]["msg"].endswith(text) and lines[-1]["time"]
    assert oci.cmd("state", "bad").returncode == 1          # nothing left behind
    assert not os.path.exists(os.path.join(oci.root, "bad"))


def test_entrypoint_found_through_path_and_symlinks(oci):
    # /bin/sh is a relative symlink to busybox; `sh` is found on PATH
    r = oci.cmd("run", "--bundle", oci.bundle(["sh", "-c", "exit 7"]), "p")
    assert r.returncode == 7, r.stderr


def test_unknown_id_does_not_exist(oci):
    for args in (["state", "nope"], ["start", "nope"], ["kill", "nope"], ["delete", "nope"], ["ps", "nope"]):
        r = oci.cmd(*args)
        assert r.returncode == 1 and "does not exist" in r.stderr and r.stderr.count("\n") == 1, args
    assert oci.cmd("delete", "--force", "nope").returncode == 0    # podman's cleanup
    r = oci.cmd("state", "../etc")
    assert r.returncode == 1 and "invalid id" in r.stderr


def test_a_reader_that_has_gone_ends_a_command_quietly(oci):
    """`sentry list | head -0`: output to a pipe nobody reads ends the
    command with SIGPIPE's status and no traceback, as runc's ends."""
    b = oci.bundle(["true"])
    assert oci.create("gone", b).returncode == 0
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "sentry", "--root", oci.root, "state", "gone"], stdout=w,
                           stderr=subprocess.PIPE, text=True, env=ENV, timeout=TIMEOUT)
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == "", p.stderr
    assert oci.cmd("delete", "--force", "gone").returncode == 0


def test_command_lines_read_as_runc_reads_them():
    """sentry/oci/args.py: options in either form and anywhere before a
    command's trailing words, which are the command's own; each mistake is
    one line naming it."""
    from sentry.oci.args import INT, LIST, VALUE, Option, UsageError, parse
    opts = (Option("--tty|-t"), Option("--env|-e", LIST), Option("--cwd", VALUE), Option("--preserve-fds", INT, 0))
    a = parse("x", ["-t", "--env=A=1", "c1", "-e", "B=2", "--cwd", "/w", "sh", "-c", "echo -t"], opts,
              rest="command")
    assert (a.id, a.tty, a.env, a.cwd, a.preserve_fds, a.command) == \
        ("c1", True, ["A=1", "B=2"], "/w", 0, ["sh", "-c", "echo -t"])
    a = parse("x", ["c1", "--", "-ef"], opts, rest="command")
    assert (a.id, a.tty, a.command) == ("c1", False, ["-ef"])
    a = parse("x", ["c1", "9", "-all"], (Option("--all|-a"),), optional=(("signal", "TERM"),))
    assert (a.id, a.signal, a.all) == ("c1", "9", True)
    assert parse("x", ["--tty=false", "c1"], opts).tty is False
    for argv, words in ((["--nope", "c1"], "unknown option --nope"), ([], "missing the container's ID"),
                        (["c1", "c2"], "unexpected argument 'c2'"), (["c1", "--cwd"], "--cwd needs a value"),
                        (["--preserve-fds", "x", "c1"], "invalid number 'x'"),
                        (["--tty=maybe", "c1"], "takes true or false")):
        with pytest.raises(UsageError, match=words):
            parse("x", argv, opts)
    r = subprocess.run([sys.executable, "-m", "sentry", "kill", "--bogus", "c1"], capture_output=True, text=True,
                       env=ENV, timeout=TIMEOUT)
    assert r.returncode == 1 and r.stderr == "sentry: sentry kill: unknown option --bogus\n"


def test_compiled_seccomp_profiles_are_kept_by_digest(tmp_path, monkeypatch):
    """sentry/oci/seccomp.py: a profile libseccomp compiled once is not
    compiled again (podman sends its default with every container); what
    is kept is used only if it is the runtime's own, writable by no one
    else, and a program GuestProfile accepts -- else compiled again; each
    profile has its own entry."""
    from sentry.oci import seccomp
    from sentry.platform import seccomp as platform_seccomp
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    spec = {"linux": {"seccomp": prof}}
    (tmp_path / "state").mkdir()
    cache = str(tmp_path / "state" / ".seccomp")
    fresh = seccomp.profile_of(spec).code
    assert seccomp.profile_of(spec, cache).code == fresh
    [kept] = os.listdir(cache)
    path = os.path.join(cache, kept)
    assert os.stat(path).st_mode & 0o777 == 0o600 and open(path, "rb").read() == fresh
    compiled = []
    real = platform_seccomp.compile_profile
    monkeypatch.setattr(platform_seccomp, "compile_profile", lambda f: compiled.append(1) or real(f))
    assert seccomp.profile_of(spec, cache).code == fresh and compiled == []
    for spoil in (lambda: open(path, "wb").write(b"garbage"), lambda: os.chmod(path, 0o666)):
        spoil()
        assert seccomp.profile_of(spec, cache).code == fresh
        assert open(path, "rb").read() == fresh and os.stat(path).st_mode & 0o777 == 0o600
    assert len(compiled) == 2
    other = {"linux": {"seccomp": dict(prof, syscalls=[dict(prof["syscalls"][0], errnoRet=2)])}}
    assert seccomp.profile_of(other, cache).code != fresh and len(os.listdir(cache)) == 2
    with pytest.raises(seccomp.ProfileError, match="names must be strings"):
        seccomp.profile_of({"linux": {"seccomp": dict(prof, syscalls=[{"names": [1], "action": "SCMP_ACT_ALLOW"}])}},
                           cache)


def test_json_log_lines(oci, tmp_path):
    log = str(tmp_path / "log")
    r = oci.cmd("state", "nope", glob=("--log-format", "json", "--log=" + log))
    assert r.returncode == 1
    (line,) = open(log).read().splitlines()
    rec = json.loads(line)
    assert rec["level"] == "error" and "does not exist" in rec["msg"]
    assert rec["time"].endswith("Z")


def test_state_is_right_after_the_sentry_is_sigkilled(oci):
    b = oci.bundle(["sleep", "100"])
    assert oci.create("k", b).returncode == 0
    assert oci.cmd("start", "k").returncode == 0
    st = oci.state("k")
    assert st["status"] == "running"
    guests = json.loads(oci.cmd("ps", "--format=json", "k").stdout)
    os.kill(st["pid"], signal.SIGKILL)
    oci.wait_status("k", "stopped")
    assert guests and gone_soon(guests)
    assert oci.cmd("delete", "k").returncode == 0


def test_delete_force_and_duplicate_ids(oci):
    b = oci.bundle(["sleep", "100"])
    assert oci.create("d", b).returncode == 0
    dup = oci.create("d", b)
    assert dup.returncode == 1 and "already exists" in open(dup.err).read()
    pid = oci.state("d")["pid"]
    # a created container is deleted without --force (as runc does)
    assert oci.cmd("delete", "d").returncode == 0
    assert oci.cmd("state", "d").returncode == 1
    assert gone_soon([pid])
    assert oci.create("d", b).returncode == 0 and oci.cmd("start", "d").returncode == 0
    assert oci.cmd("delete", "--force", "d").returncode == 0
    assert oci.cmd("state", "d").returncode == 1


def test_kill_signals_by_name_and_number_and_all(oci, tmp_path):
    # init traps USR1 and says so; --all reaches its child too
    out = tmp_path / "k.out"
    b = oci.bundle(["sh", "-c", "trap 'echo usr1' USR1; sleep 100 & while :; do wait; done"])
    assert oci.create("s", b, out=str(out)).returncode == 0
    assert oci.cmd("start", "s").returncode == 0
    time.sleep(0.5)
    for n, sig in enumerate(("USR1", "SIGUSR1", str(int(signal.SIGUSR1))), 1):
        assert oci.cmd("kill", "s", sig).returncode == 0
        # one at a time: two still pending at once would be one, as on Linux
        assert read_when(str(out), lambda t: t.count("usr1") == n) == "usr1\n" * n
    bad = oci.cmd("kill", "s", "NOSUCH")
    assert bad.returncode == 1 and "invalid signal" in bad.stderr
    assert len(json.loads(oci.cmd("ps", "--format", "json", "s").stdout)) == 2
    assert oci.cmd("kill", "--all", "s", "KILL").returncode == 0
    oci.wait_status("s", "stopped")
    stopped = oci.cmd("kill", "s", "TERM")
    assert stopped.returncode == 1 and "not running" in stopped.stderr
    assert oci.cmd("delete", "s").returncode == 0


@pytest.mark.parametrize("how", ["signalfd", "sigwaitinfo"])
def test_term_reaches_an_init_that_waits_for_it(oci, tmp_path, cbin, how):
    """An init with no TERM handler that blocks TERM and waits for it (a
    signalfd: podman --init's catatonit; rt_sigtimedwait, whose wait
    unblocks it: tini) receives it from outside, as Linux delivers it to
    a namespace's init; one that leaves it to its default action does not
    (test_kill_signals_by_name_and_number_and_all's sleep)."""
    shutil.copy2(cbin("waitsig"), oci.rootfs + "/bin/waitsig")
    out = tmp_path / f"{how}.out"
    assert oci.create("w", oci.bundle(["waitsig", how]), out=str(out)).returncode == 0
    try:
        assert oci.cmd("start", "w").returncode == 0
        assert read_when(str(out), lambda t: "ready" in t) == "ready\n"
        time.sleep(0.2)             # into its wait
        assert oci.cmd("kill", "w", "TERM").returncode == 0
        assert read_when(str(out), lambda t: "got" in t) == "ready\ngot 15\n"
        oci.wait_status("w", "stopped")
    finally:
        oci.cmd("delete", "--force", "w")


def test_the_pid_file_process_sees_the_containers_files(oci, tmp_path):
    """The stand-in's mount namespace (what podman cp joins to copy to and
    from "/", and podman top to read /proc) has the container's files as
    its root: the rootfs, its binds (read-only where the spec says), an
    empty read-only tmpfs at its tmpfs places and /proc -- nothing of the
    host's, where a copy into the container would write.  A destination
    through an image symlink that climbs out (`up -> ../../../../tmp`)
    stays in the rootfs, there as in the sandbox."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "in").write_text("bound\n")
    rootfs = pathlib.Path(oci.rootfs)          # the test's own copy
    (rootfs / "up").symlink_to("../../../../../../../../tmp")
    (rootfs / "marker").write_text("the rootfs\n")
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]},
              {"destination": "/rw", "type": "bind", "source": str(data), "options": ["rbind"]},
              {"destination": "/up/t", "type": "tmpfs", "source": "tmpfs"}]
    r = oci.create("view", oci.bundle(["sleep", "100"], mounts=mounts))
    assert r.returncode == 0, open(r.err).read()
    try:
        root = f"/proc/{oci.state('view')['pid']}/root"
        assert sorted(os.listdir(root)) == sorted(os.listdir(rootfs))
        assert open(f"{root}/marker").read() == "the rootfs\n"
        assert open(f"{root}/data/in").read() == "bound\n"
        assert os.listdir(f"{root}/proc") == [] and os.listdir(f"{root}/tmp/t") == []
        # the root read-only as the spec's (root.readonly), as are the ro bind, the tmpfs and /proc
        for path in (f"{root}/marker2", f"{root}/data/new", f"{root}/tmp/t/new", f"{root}/proc/new"):
            with pytest.raises(OSError) as e:
                open(path, "w")
            assert e.value.errno == errno.EROFS, path
        # the tmpfs place is the rootfs's /tmp/t (made there as in the sandbox), not the host's
        assert os.path.isdir(rootfs / "tmp" / "t") and not os.path.exists("/tmp/t/new")
        # a write through the view lands in the container's files
        with open(f"{root}/rw/from-host", "w") as f:
            f.write("x")
        assert (data / "from-host").read_text() == "x"
    finally:
        oci.cmd("delete", "--force", "view")


def test_process_settings_reach_the_guest(oci, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    (data / "in").write_text("from the host\n")
    script = ("echo $FOO; pwd; id -u; id -g; id -G; hostname; ulimit -n; umask; cat /data/in; "
              "echo w > /data/out; echo t > /tmp/t && cat /tmp/t")
    b = oci.bundle(["sh", "-c", script], env=["PATH=/bin", "FOO=bar"], cwd="/tmp",
                   user={"uid": 1000, "gid": 1000, "additionalGids": [1000, 20, 30], "umask": 0o002},
                   rlimits=[{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 400}], hostname="oci-box",
                   mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                           {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
                           {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]},
                           {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["bind"]},
                           {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
                           {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}])
    r = oci.cmd("run", "--bundle", b, "ps1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["bar", "/tmp", "1000", "1000", "1000 20 30", "oci-box", "321", "0002",
                                     "from the host", "t"]
    assert (data / "out").read_text() == "w\n"


def test_readonly_root_and_ro_bind(oci, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    script = "touch /etc/z; touch /ro/y; touch /rw/x && echo rw-ok"
    mounts = [{"destination": "/ro", "type": "bind", "source": str(data), "options": ["bind", "ro"]},
              {"destination": "/rw", "type": "bind", "source": str(data), "options": ["bind"]}]
    r = oci.cmd("run", "--bundle", oci.bundle(["sh", "-c", script], mounts=mounts), "ro")
    assert r.stdout == "rw-ok\n"
    assert r.stderr.count("Read-only file system") == 2, r.stderr
    assert os.listdir(data) == ["x"]


def test_binds_of_single_files(oci, tmp_path):
    """Binds of files (podman's /etc/hosts, /run/.containerenv), rw and ro,
    and a readonlyPaths file: the host's files themselves; their mount
    points are made in the rootfs where missing, as runc makes them, and an
    image's symlink does not lead that out of the rootfs."""
    host = tmp_path / "host"
    (host / "data").mkdir(parents=True)
    (host / "hosts").write_text("1.2.3.4 box\n")
    (host / "ro.conf").write_text("ro\n")
    (host / "data" / "sub.conf").write_text("sub\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(oci.rootfs, "evil"))
    script = ("cat /etc/hosts; echo w >> /etc/hosts; cat /etc/ro.conf; echo x > /etc/ro.conf || echo ro; "
              "ls -a /etc /run; cat /data/sub.conf; echo z > /data/sub.conf || echo ro2; echo y > /data/new; "
              "rm /etc/hosts")
    b = oci.bundle(["sh", "-c", script],
                   mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                           {"destination": "/etc/hosts", "type": "bind", "source": str(host / "hosts"),
                            "options": ["bind", "rprivate"]},
                           {"destination": "/etc/ro.conf", "type": "bind", "source": str(host / "ro.conf"),
                            "options": ["bind", "ro"]},
                           {"destination": "/run/.containerenv", "type": "bind", "source": str(host / "ro.conf"),
                            "options": ["bind"]},
                           {"destination": "/evil/x.conf", "type": "bind", "source": str(host / "ro.conf"),
                            "options": ["bind"]},
                           {"destination": "/data", "type": "bind", "source": str(host / "data"),
                            "options": ["rbind", "rw"]}],
                   linux={"namespaces": [{"type": "pid"}, {"type": "mount"}], "readonlyPaths": ["/data/sub.conf"]})
    r = oci.cmd("run", "--bundle", b, "f")
    etc = sorted(os.listdir(os.path.join(oci.rootfs, "etc")))
    assert r.stdout.split("\n") == ["1.2.3.4 box", "ro", "ro", "/etc:", ".", ".."] + etc + [
        "", "/run:", ".", "..", ".containerenv", "sub", "ro2", ""], (r.stdout, r.stderr)
    assert "hosts" in etc and "ro.conf" in etc and os.path.isfile(os.path.join(oci.rootfs, "run/.containerenv"))
    assert (host / "hosts").read_text() == "1.2.3.4 box\nw\n" and (host / "ro.conf").read_text() == "ro\n"
    assert (host / "data" / "sub.conf").read_text() == "sub\n" and (host / "data" / "new").read_text() == "y\n"
    assert os.listdir(outside) == []
    assert "Device or resource busy" in r.stderr and r.stderr.count("Read-only file system") == 2, r.stderr


def test_events_stats_and_stream(oci):
    """`events --stats`: runc's stats event, from the sandbox's processes
    (the Sentry, its helpers, the guests: CPU time grows with a guest's
    work, tasks count its threads); `events --interval` streams them until
    the container stops; a stopped one is not running."""
    b = oci.bundle(["sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo spun; exec sleep 100"])
    r = oci.create("e1", b)
    assert r.returncode == 0, open(r.err).read()
    first = oci.cmd("events", "--stats", "e1")
    assert first.returncode == 0, first.stderr
    ev = json.loads(first.stdout)
    assert ev["type"] == "stats" and ev["id"] == "e1"
    assert ev["data"]["pids"]["current"] >= 3 and ev["data"]["memory"]["usage"]["usage"] > 1 << 20
    assert oci.cmd("start", "e1").returncode == 0
    read_when(r.out, lambda t: "spun" in t)
    later = json.loads(oci.cmd("events", "--stats", "e1").stdout)["data"]
    assert later["cpu"]["usage"]["total"] > ev["data"]["cpu"]["usage"]["total"]
    assert later["cpu"]["usage"]["total"] == later["cpu"]["usage"]["user"] + later["cpu"]["usage"]["kernel"]
    stream = subprocess.Popen([sys.executable, "-m", "sentry", "--root", oci.root, "events", "--interval", "100ms",
                               "e1"], stdout=subprocess.PIPE, text=True, env=ENV)
    assert json.loads(stream.stdout.readline())["id"] == "e1"
    assert json.loads(stream.stdout.readline())["type"] == "stats"
    assert oci.cmd("kill", "e1", "KILL").returncode == 0
    assert stream.wait(timeout=10) == 0
    oci.wait_status("e1", "stopped")
    gone = oci.cmd("events", "--stats", "e1")
    assert gone.returncode == 1 and "is not running" in gone.stderr
    bad = oci.cmd("events", "--interval", "soon", "e1")
    assert bad.returncode == 1 and "invalid duration" in bad.stderr
    assert oci.cmd("delete", "e1").returncode == 0


ACTIVATE = textwrap.dedent("""
    import os, socket, sys
    root, bundle, cid, pid_for = sys.argv[1:5]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    os.dup2(s.fileno(), 3)                       # systemd's first listener
    r, w = os.pipe()
    os.dup2(r, 4)                                # then --preserve-fds 1
    os.write(w, b"preserved\\n"); os.close(w)
    for fd in (3, 4):
        os.set_inheritable(fd, True)             # dup2 onto itself keeps close-on-exec
    print(os.fstat(3).st_ino, flush=True)
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()) if pid_for == "me" else "1")
    os.execv(sys.executable, [sys.executable, "-m", "sentry", "--root", root, "run", "--preserve-fds",
                              "1" if pid_for == "me" else "0", "--bundle", bundle, cid])
""")


@pytest.mark.parametrize("pid_for", ["me", "another"])
def test_socket_activation_is_passed_on_as_runc_does(oci, pid_for):
    """LISTEN_FDS for the runtime's own pid (systemd's socket activation):
    the listeners are the container's fds from 3, --preserve-fds' after
    them, and pid 1 reads LISTEN_FDS=N, LISTEN_PID=1; a pair meant for
    another process passes nothing on."""
    script = ("echo ${LISTEN_FDS:-none} ${LISTEN_PID:-none}; readlink /proc/self/fd/3 || echo no-fd3; "
              "cat <&4 2>/dev/null || echo no-fd4")
    b = oci.bundle(["sh", "-c", script])
    r = subprocess.run([sys.executable, "-c", ACTIVATE, oci.root, b, "a1", pid_for],
                       capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    ino, *out = r.stdout.splitlines()
    if pid_for == "me":
        assert out == ["1 1", f"socket:[{ino}]", "preserved"], (r.stdout, r.stderr)
    else:
        assert out == ["none none", "no-fd3", "no-fd4"], (r.stdout, r.stderr)


def test_sysctl_is_set_in_the_sandboxs_namespaces(oci, tmp_path):
    """linux.sysctl: the IPC namespace's and the network namespace's are set
    there (the kernel's own limits for the guest, read from inside those
    namespaces with nsenter) and the guest's /proc/sys shows them;
    the host's stay as they were; one of no namespace of the sandbox's, the
    network's without a network namespace, kernel.hostname, a shmmax past
    the staging area's cap: refused at create, in one line."""
    sysctl = {"kernel.msgmax": "4096", "kernel.shmmni": "1000", "kernel.sem": "250 32000 32 128",
              "net.core.somaxconn": "77", "fs.mqueue.msg_max": "20"}
    host = {k: open("/proc/sys/" + k.replace(".", "/")).read() for k in sysctl}
    netns = {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "ipc"}]}
    b = oci.bundle(["sh", "-c", "cat /proc/sys/kernel/msgmax /proc/sys/kernel/shmmni /proc/sys/kernel/sem "
                                "/proc/sys/net/core/somaxconn; exec sleep 100"], linux=dict(netns, sysctl=sysctl))
    r = oci.create("s1", b)
    assert r.returncode == 0, open(r.err).read()
    try:
        assert oci.cmd("start", "s1").returncode == 0
        assert read_when(r.out, lambda t: t.count("\n") >= 4) == "4096\n1000\n250\t32000\t32\t128\n77\n"
        (guest,) = json.loads(oci.cmd("ps", "--format", "json", "s1").stdout)
        for key, want in sysctl.items():
            ns = "--net" if key.startswith("net.") else "--ipc"
            got = subprocess.run(["nsenter", f"{ns}=/proc/{guest}/ns/{ns[2:]}", "cat",
                                  "/proc/sys/" + key.replace(".", "/")], capture_output=True, text=True)
            assert got.stdout.split() == want.split(), (key, got.stdout, got.stderr)
        assert {k: open("/proc/sys/" + k.replace(".", "/")).read() for k in sysctl} == host
    finally:
        oci.cmd("delete", "--force", "s1")
    for bad, linux, text in [
            ({"vm.swappiness": "10"}, netns, 'sysctl vm.swappiness: not in a separate kernel namespace'),
            ({"net.core.somaxconn": "7"}, {"namespaces": [{"type": "pid"}]},
             "sysctl net.core.somaxconn: not allowed in the host's network namespace"),
            ({"kernel.hostname": "x"}, netns, 'conflicts with the OCI "hostname" field'),
            ({"kernel.shmmax": str(1 << 50)}, netns, "sysctl kernel.shmmax: at most"),
            ({"net.core/../../../kernel/x": "1"}, netns, "not a sysctl name")]:
        bb = oci.bundle(["true"], linux=dict(linux, sysctl=bad))
        r = oci.cmd("create", "--bundle", bb, "s2")
        assert r.returncode == 1 and text in r.stderr and r.stderr.count("\n") == 1, (bad, r.stderr)


def test_a_foreground_runs_signals_reach_the_container(oci):
    """A terminal's Ctrl-C to a foreground `run` (its process group) reaches
    the container's init when it handles it, as runc passes it on: the
    container has a session of its own, apart from the terminal's."""
    b = oci.bundle(["sh", "-c", "trap 'echo got-int; exit 7' INT; echo up; sleep 100 & wait"])
    p = subprocess.Popen([sys.executable, "-m", "sentry", "--root", oci.root, "run", "--bundle", b, "fg"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                         start_new_session=True)
    try:
        assert p.stdout.readline() == b"up\n"
        time.sleep(0.3)                 # past start: its own handlers are in place
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(timeout=20) == 7, p.stderr.read()
        assert p.stdout.read() == b"got-int\n"
    finally:
        p.kill()
        p.wait()


def test_unsupported_mount_type_is_refused(oci):
    b = oci.bundle(["true"], mounts=[{"destination": "/x", "type": "nfs", "source": "h:/x"}])
    r = oci.cmd("create", "--bundle", b, "m")
    assert r.returncode == 1 and "type 'nfs' is not supported" in r.stderr


def test_stdio_is_creates_fds(oci, tmp_path):
    """Large outputs and piped stdin go straight through the fds create got."""
    b = oci.bundle(["sh", "-c", "wc -l; seq 1 50000"])
    src = tmp_path / "in"
    src.write_text("x\n" * 1234)
    with open(src) as stdin:
        r = oci.cmd("run", "--bundle", b, "io", stdin=stdin)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].strip() == "1234" and lines[1:] == [str(i) for i in range(1, 50001)]


def _console_master(srv):
    """What the runtime sends on the console socket `srv` listens on: the
    pty's name and the fds (its master) that came with it."""
    conn, _ = srv.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    return msg, fds


def test_console_socket(oci, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    b = oci.bundle(["sh", "-c", "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; stty size; tty; exit 4"],
                   terminal=True, consoleSize={"height": 33, "width": 111})
    try:
        r = oci.create("t", b, "--console-socket", sock_path)
        assert r.returncode == 0, open(r.err).read()
        msg, fds = _console_master(srv)
        # a pty of the sandbox's own devpts instance: the first, as in a container
        assert len(fds) == 1 and msg == b"/dev/pts/0", msg
        master = fds[0]
        assert open(r.out).read() == ""                 # nothing on create's own stdio
        assert oci.cmd("start", "t").returncode == 0
        out = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break                                   # EIO: the slave is closed
            if not chunk:
                break
            out += chunk
        os.close(master)
        assert b"all-tty\r\n" in out and b"33 111\r\n" in out and b"/dev/pts/0\r\n" in out, out
        oci.wait_status("t", "stopped")
    finally:
        srv.close()
        oci.cmd("delete", "--force", "t")


def test_console_resizes_reach_the_guest(oci, tmp_path):
    """A resize through the console's master after start (what conmon does
    for `podman attach` or a terminal's resize) reaches the guest as on
    Linux: SIGWINCH to the terminal's foreground process group, and the new
    size in `stty size`."""
    import fcntl
    import struct
    import termios
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    b = oci.bundle(["sh", "-c", "trap 'stty size' WINCH; stty size; echo ready; "
                    "i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done"],
                   terminal=True, consoleSize={"height": 33, "width": 111})
    try:
        r = oci.create("rs", b, "--console-socket", sock_path)
        assert r.returncode == 0, open(r.err).read()
        _, fds = _console_master(srv)
        master = fds[0]
        assert oci.cmd("start", "rs").returncode == 0
        out, resized = b"", False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and b"40 120\r\n" not in out:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            out += chunk
            if b"ready\r\n" in out and not resized:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
                resized = True
        os.close(master)
        assert out.startswith(b"33 111\r\nready\r\n") and b"40 120\r\n" in out, out
    finally:
        srv.close()
        oci.cmd("delete", "--force", "rs")


def test_terminal_without_console_socket_is_refused(oci):
    r = oci.create("t", oci.bundle(["true"], terminal=True))
    assert r.returncode == 1 and "console socket" in open(r.err).read()


def test_pause_and_resume_freeze_the_whole_sandbox(oci, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    b = oci.bundle(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /data/n; sleep 0.05; done"],
                   mounts=[{"destination": "/data", "type": "bind", "source": str(data), "options": ["bind"]}])
    assert oci.create("pz", b).returncode == 0 and oci.cmd("start", "pz").returncode == 0
    try:
        n = data / "n"
        read_when(str(n), lambda t: t.strip() and int(t) > 3) if n.exists() else time.sleep(0.5)
        r = oci.cmd("pause", "pz")
        assert r.returncode == 0, r.stderr
        assert oci.state("pz")["status"] == "paused"
        before = n.read_text()
        time.sleep(0.5)
        assert n.read_text() == before                  # nothing ran meanwhile
        assert oci.cmd("resume", "pz").returncode == 0
        assert oci.state("pz")["status"] == "running"
        assert read_when(str(n), lambda t: t != before) != before
        again = oci.cmd("resume", "pz")
        assert again.returncode == 1 and "not paused" in again.stderr
        # a paused container is still killed by delete --force
        assert oci.cmd("pause", "pz").returncode == 0
    finally:
        assert oci.cmd("delete", "--force", "pz").returncode == 0
    assert oci.cmd("state", "pz").returncode == 1


def test_run_detach_and_foreground(oci, tmp_path):
    b = oci.bundle(["sleep", "100"])
    with open(tmp_path / "o", "w") as o:
        r = oci.cmd("run", "--detach", "--bundle", b, "dt", stdout=o, stderr=o, capture_output=False)
    assert r.returncode == 0
    assert oci.state("dt")["status"] == "running"
    assert oci.cmd("delete", "--force", "dt").returncode == 0
    r = oci.cmd("run", "-b", oci.bundle(["sh", "-c", "echo fg; exit 3"]), "fg")
    assert r.returncode == 3 and r.stdout == "fg\n"
    assert oci.cmd("state", "fg").returncode == 1       # run removes what it made


def test_global_flags_both_forms_and_version(oci, tmp_path):
    b = oci.bundle(["true"])
    other = str(tmp_path / "other")
    for flags in (["--root", other], ["--root=" + other], ["-root", other]):
        r = subprocess.run([sys.executable, "-m", "sentry", *flags, "--debug", "--systemd-cgroup",
                            "--rootless=false", "--log-format", "text", "run", "--bundle", b, "g"],
                           capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
        assert r.returncode == 0, (flags, r.stderr)
    v = subprocess.run([sys.executable, "-m", "sentry", "--version"], capture_output=True, text=True, env=ENV)
    lines = v.stdout.splitlines()
    assert lines[0].startswith("sentry version ") and lines[1].startswith("commit: ")
    assert lines[2].startswith("spec: 1.")
    bad = oci.cmd("state", "x", glob=("--log-format", "yaml"))
    assert bad.returncode == 125 and bad.stderr.count("\n") == 1


def test_sentry_options_as_global_flags_and_annotations(oci):
    b = oci.bundle(["sh", "-c", "uname -r"], annotations={"dev.sentry.kernel-release": "9.9.9-note"})
    r = oci.cmd("run", "--bundle", b, "a1")
    assert r.returncode == 0 and r.stdout == "9.9.9-note\n", r.stderr
    r = oci.cmd("run", "--bundle", b, "a2", glob=("--kernel-release=1.2.3-flag",))
    assert r.returncode == 0 and r.stdout == "1.2.3-flag\n", r.stderr
    bad = oci.cmd("run", "--bundle", oci.bundle(["true"], annotations={"dev.sentry.bogus": "1"}), "a3")
    assert bad.returncode == 1 and "dev.sentry.bogus" in bad.stderr


def test_the_two_runs(oci, busybox_root, tmp_path):
    # `run -- CMD` is the sandbox's, as ever, even in a bundle directory
    b = oci.bundle(["sh", "-c", "echo oci"])
    r = subprocess.run([sys.executable, "-m", "sentry", "run", "--rootfs", busybox_root, "--", "echo", "sandbox"],
                       capture_output=True, text=True, env=ENV, cwd=b, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout == "sandbox\n", r.stderr
    # no `--` and one word, in a bundle: the OCI run of container ID "x"
    r = subprocess.run([sys.executable, "-m", "sentry", "--root", oci.root, "run", "x"],
                       capture_output=True, text=True, env=ENV, cwd=b, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout == "oci\n", r.stderr
    # the sandbox's run without `--`, outside a bundle, still works
    r = subprocess.run([sys.executable, "-m", "sentry", "run", "--rootfs", busybox_root, "echo", "plain"],
                       capture_output=True, text=True, env=ENV, cwd=str(tmp_path), timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout == "plain\n", r.stderr


def test_spec_and_features(oci, tmp_path):
    r = oci.cmd("spec", "--bundle", str(tmp_path))
    assert r.returncode == 0
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"] and spec["root"]["path"] == "rootfs"
    again = oci.cmd("spec", "--bundle", str(tmp_path))
    assert again.returncode == 1 and "exists" in again.stderr
    f = json.loads(oci.cmd("features").stdout)
    assert f["ociVersionMax"].startswith("1.") and "network" in f["linux"]["namespaces"]
    assert f["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def _started(oci, cid, args, **changes):
    r = oci.create(cid, oci.bundle(args, **changes))
    assert r.returncode == 0, open(r.err).read()
    assert oci.cmd("start", cid).returncode == 0
    return r


def test_exec_joins_the_running_sandbox(oci, tmp_path):
    """The new process: the same pid namespace (a new virtual pid, `ps`
    sees both), the same file system (a file init wrote in its tmpfs), the
    same hostname; its own args, env, cwd and user; its exit status."""
    r = _started(oci, "x", ["sh", "-c", "echo from-init > /tmp/mark; exec sleep 100"])
    try:
        read_when(r.out, lambda t: True, timeout=0.5)
        e = oci.cmd("exec", "-e", "FOO=bar", "--cwd", "/tmp", "x", "sh", "-c",
                    "cat /tmp/mark; echo $$ $FOO; pwd; hostname; id -u; ps -o pid,args; exit 7")
        assert e.returncode == 7, e.stderr
        lines = e.stdout.splitlines()
        assert lines[0] == "from-init" and lines[1].split()[1] == "bar", e.stdout
        pid = int(lines[1].split()[0])
        assert pid > 1 and lines[2:5] == ["/tmp", "box", "0"], e.stdout
        ps = {l.split()[0]: l.split(None, 1)[1] for l in lines[6:]}
        assert ps.get("1", "").endswith("sleep 100") and str(pid) in ps, e.stdout
        u = oci.cmd("exec", "-u", "1000:1000", "x", "sh", "-c", "id -u; id -g; touch /x 2>&1; exit 0")
        assert u.returncode == 0 and u.stdout.splitlines()[:2] == ["1000", "1000"], u.stdout + u.stderr
        missing = oci.cmd("exec", "x", "no-such-program")
        assert missing.returncode == 127 and "no-such-program" in missing.stderr
        # a missing cwd in runc's words, whose "no such file" podman maps to 127 as runc's
        nowhere = oci.cmd("exec", "--cwd", "/nowhere", "x", "pwd")
        assert nowhere.returncode == 127 and nowhere.stdout == "", nowhere.stdout
        assert "chdir to cwd ('/nowhere') failed: No such file or directory" in nowhere.stderr, nowhere.stderr
        assert oci.state("x")["status"] == "running"
        assert len(json.loads(oci.cmd("ps", "--format", "json", "x").stdout)) == 1
    finally:
        oci.cmd("delete", "--force", "x")


def test_exec_process_json_detach_and_pid_file(oci, tmp_path):
    """As podman's conmon asks: --process, --detach, --pid-file: exec returns
    at once, and the pid file's process (a subreaper inherits it) exits
    with the command's status; stdio are exec's own fds."""
    _started(oci, "d", ["sleep", "100"])
    try:
        proc = tmp_path / "process.json"
        proc.write_text(json.dumps({"args": ["sh", "-c", "sleep 0.5; echo $A in $(pwd) as $(id -u):$(id -g); exit 5"],
                                    "env": ["PATH=/bin", "A=a1"], "cwd": "/proc",
                                    "user": {"uid": 42, "gid": 43}, "terminal": False}))
        out = tmp_path / "exec.out"
        script = textwrap.dedent("""
            import ctypes, os, subprocess, sys, time
            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
            root, proc, pidfile, out = sys.argv[1:5]
            t = time.monotonic()
            with open(out, "w") as o:
                r = subprocess.run([sys.executable, "-m", "sentry", "--root", root, "exec", "--detach",
                                    "--pid-file", pidfile, "--process", proc, "d"], stdout=o, stderr=o)
            took = time.monotonic() - t
            pid = int(open(pidfile).read())
            while os.waitpid(-1, 0)[0] != pid:
                pass
            print(r.returncode, took < 0.5 + 5, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) if False else "")
        """)
        # the waiter's status, seen by its subreaper
        script = script.replace("while os.waitpid(-1, 0)[0] != pid:\n    pass\n", "")
        script += textwrap.dedent("""
            while True:
                p, st = os.waitpid(-1, 0)
                if p == pid:
                    print("status", os.waitstatus_to_exitcode(st))
                    break
        """)
        r = subprocess.run([sys.executable, "-c", script, oci.root, str(proc), str(tmp_path / "pid"), str(out)],
                           capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
        assert "status 5" in r.stdout, (r.stdout, r.stderr, out.read_text())
        assert out.read_text() == "a1 in /proc as 42:43\n"
    finally:
        oci.cmd("delete", "--force", "d")


def test_exec_tty_through_the_console_socket(oci, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    _started(oci, "t", ["sleep", "100"])
    try:
        e = subprocess.Popen([sys.executable, "-m", "sentry", "--root", oci.root, "exec", "-t",
                              "--console-socket", sock_path, "t", "sh", "-c",
                              "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; tty; exit 3"],
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        msg, fds = _console_master(srv)
        assert len(fds) == 1 and msg == b"/dev/pts/0", msg       # the sandbox's own devpts'
        master = fds[0]
        out = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        assert e.wait(TIMEOUT) == 3, e.stderr.read()
        assert b"all-tty\r\n/dev/pts/0\r\n" in out, out
        # a console socket that is not there: exec fails in one line, and
        # the process made for it ends with its terminal (hung up)
        r = oci.cmd("exec", "-t", "--console-socket", str(tmp_path / "nosuch"), "t", "sleep", "77")
        assert r.returncode == 1 and "console socket" in r.stderr and r.stderr.count("\n") == 1, r.stderr
        deadline = time.monotonic() + 10
        while "sleep 77" in oci.cmd("exec", "t", "ps", "-o", "args").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "sleep 77" not in oci.cmd("exec", "t", "ps", "-o", "args").stdout
    finally:
        srv.close()
        oci.cmd("delete", "--force", "t")


def test_exec_ends_with_the_sandbox_and_is_refused_after(oci, tmp_path):
    """The init's end takes exec'd processes along (137, as under runc);
    a stopped container refuses exec; and a guest cannot use the control
    socket even when it is handed the state directory."""
    r = oci.create("s", oci.bundle(["sh", "-c", "sleep 1; exit 0"]))
    assert r.returncode == 0
    assert oci.cmd("start", "s").returncode == 0
    e = oci.cmd("exec", "s", "sleep", "100", timeout=30)
    assert e.returncode == 137, e.stderr
    oci.wait_status("s", "stopped")
    again = oci.cmd("exec", "s", "true")
    assert again.returncode == 1 and "stopped" in again.stderr
    oci.cmd("delete", "--force", "s")


GUEST_EXEC = textwrap.dedent("""
    import json, socket, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    try:
        socket.send_fds(s, [json.dumps({"args": ["true"]}).encode()], [0, 1, 2])
        print(s.recv(4096).decode())
    except OSError as e:          # refused before it could send
        print(s.recv(4096).decode() or e)
""")


def test_a_guest_cannot_use_the_control_socket(oci, tmp_path):
    """Even a guest that can name exec.sock (here: a `sentry run` given the
    state directory as a bind mount) and connects to it is refused: the spawner serves no tracee of any Sentry."""
    _started(oci, "g", ["sleep", "100"])
    try:
        sock = os.path.join(oci.root, "g", "exec.sock")
        assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
        r = subprocess.run([sys.executable, "-m", "sentry", "run", "--network=host", "--mount", f"type=bind,src={oci.root},dst=/state,sockets",
                            "--", "/usr/bin/python3", "-c", GUEST_EXEC, "/state/g/exec.sock"],
                           capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
        assert r.stdout.strip() == "error permission denied", (r.stdout, r.stderr)
        assert len(json.loads(oci.cmd("ps", "--format", "json", "g").stdout)) == 1
    finally:
        oci.cmd("delete", "--force", "g")


def test_masked_and_readonly_paths(oci, tmp_path):
    """linux.maskedPaths: an empty stand-in; linux.readonlyPaths: read-only;
    podman's defaults under /proc and /sys are absent or read-only already."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "secret").write_text("s3cret\n")
    (data / "sub" / "f").write_text("f\n")
    b = oci.bundle(["sh", "-c", "cat /data/secret; echo [$(cat /data/secret)]; cat /data/sub/f; "
                                "echo x > /data/sub/g || echo ro; echo y > /data/h && echo rw; "
                                "[ -e /proc/kcore ] || echo no-kcore; echo 1 > /proc/sysrq-trigger || echo ro2"],
                   mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                           {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]}],
                   linux={"namespaces": [{"type": "pid"}, {"type": "mount"}],
                          "maskedPaths": ["/data/secret", "/proc/kcore", "/sys/firmware"],
                          "readonlyPaths": ["/data/sub", "/proc/sys", "/proc/sysrq-trigger", "/no/such"]})
    r = oci.cmd("run", "--bundle", b, "m")
    assert r.stdout.splitlines() == ["[]", "f", "ro", "rw", "no-kcore", "ro2"], (r.stdout, r.stderr)
    assert (data / "secret").read_text() == "s3cret\n" and not (data / "sub" / "g").exists()
    assert (data / "h").read_text() == "y\n"


def test_a_network_namespace_without_a_path_is_a_private_loopback(oci, tmp_path):
    """podman --network=none writes {"type": "network"} with no path: the
    container gets a network of its own with only `lo`, and a host server on
    127.0.0.1 is out of its reach; without a network namespace it has the
    host's, as under runc."""
    import socket
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen(4)
    port = host.getsockname()[1]
    try:
        probe = f"ip -o link | cut -d: -f2; nc -w 2 127.0.0.1 {port} </dev/null && echo reached || echo unreachable"
        ns = {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]}
        r = oci.cmd("run", "--bundle", oci.bundle(["sh", "-c", probe], linux=ns), "net1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["lo", "unreachable"]
        r = oci.cmd("run", "--bundle", oci.bundle(["sh", "-c", "ip -o link | cut -d: -f2"]), "net2")
        assert r.returncode == 0, r.stderr
        # names only: a veth's "@peer" is the peer's name to busybox's ip inside, its
        # index in the other namespace to iproute2's natively
        assert [n.split("@")[0] for n in r.stdout.split()] == [
            line.split(":")[1].strip().split("@")[0] for line in subprocess.run(
                ["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines()]
    finally:
        host.close()


def test_a_network_namespace_with_a_path_is_joined(oci, tmp_path):
    """A network namespace with a path (what a CNI plugin or a pod's
    sandbox made) is the container's, as it was set up: the same interfaces
    and addresses as natively in it, its servers reachable, the host's
    loopback not; a path that is no network namespace, or the host's own,
    fails create with one line."""
    import socket
    name = f"sentry-t{os.getpid()}"
    ip = ["ip", "-n", name]
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = None
    try:
        # both ends inside: nothing of the host's network changes
        for step in (["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                     ["addr", "add", "10.77.0.1/24", "dev", "v0"], ["link", "set", "v0", "up"],
                     ["link", "set", "v1", "up"], ["link", "set", "lo", "up"]):
            subprocess.run(ip + step, check=True)
        server = subprocess.Popen(["ip", "netns", "exec", name, os.path.join(oci.rootfs, "bin", "busybox"),
                                   "nc", "-l", "-p", "7777", "-e", "echo", "from-the-namespace"])
        probe = (f"ip -o addr | tr -s ' ' | cut -d' ' -f2-4; nc -w 2 127.0.0.1 {host.getsockname()[1]} </dev/null "
                 "&& echo reached || echo unreachable; "
                 "for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 2 10.77.0.1 7777 </dev/null && break; sleep 0.2; done")
        native = subprocess.run(["ip", "netns", "exec", name, "env", "-i", "PATH=" + os.path.join(oci.rootfs, "bin"),
                                 os.path.join(oci.rootfs, "bin", "sh"), "-c", probe.split(";")[0]],
                                capture_output=True, text=True, check=True)
        ns = {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": f"/run/netns/{name}"}]}
        r = oci.cmd("run", "--bundle", oci.bundle(["sh", "-c", probe], linux=ns), "netp")
        assert r.returncode == 0, r.stderr
        assert r.stdout == native.stdout + "unreachable\nfrom-the-namespace\n", (r.stdout, native.stdout)
        assert "10.77.0.1/24" in native.stdout
        for path, words in ((str(tmp_path), "cannot join the network namespace"),
                            ("/proc/self/ns/ipc", "cannot join the network namespace"),
                            (f"/proc/{os.getpid()}/ns/net", "the host's own")):
            ns = {"namespaces": [{"type": "mount"}, {"type": "network", "path": path}]}
            r = oci.cmd("run", "--bundle", oci.bundle(["true"], linux=ns), "netbad")
            assert r.returncode != 0 and words in r.stderr and r.stderr.count("\n") == 1, (path, r.stderr)
        # a failed create leaves no cgroup behind either
        from sentry.oci import cgroup
        assert cgroup.members(cgroup.path_for(None, "netbad")) is None
    finally:
        host.close()
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "delete", name])


# A hook that appends its name, the state's status and pid, the hostname it
# sees and its network namespace to LOG: sh -c HOOK NAME [EXIT]
HOOK = r"""read -r s || true
st=$(echo "$s" | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
pid=$(echo "$s" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "$0 $st $pid $(hostname) $(readlink /proc/self/ns/net 2>/dev/null || echo -) $([ -e /hooks/main ] && echo after-main || echo before-main)" >> LOG
echo "out of $0"; echo "err of $0" >&2
exit ${1:-0}"""


def _hook(log, name, code=0, **extra):
    return dict({"path": "/bin/sh", "args": ["sh", "-c", HOOK.replace("LOG", log), name, str(code)]}, **extra)


def _hooks(tmp_path, fail=None, code=3, **extra):
    """Every kind of hook, each logging to tmp/hooks/log (the startContainer
    one runs inside, where that directory is /hooks); `fail` exits `code`."""
    log = str(tmp_path / "hooks" / "log")
    out = {}
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        where = "/hooks/log" if kind == "startContainer" else log
        out[kind] = [_hook(where, kind, code if kind == fail else 0, **(extra if kind == fail else {}))]
    return out


def _hooked_bundle(oci, tmp_path, hooks, args=("sh", "-c", "echo main $$ > /hooks/main; exec sleep 100")):
    d = tmp_path / "hooks"
    d.mkdir(exist_ok=True)
    d.chmod(0o777)
    return oci.bundle(list(args), hooks=hooks,
                      mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                              {"destination": "/hooks", "type": "bind", "source": str(d), "options": ["bind"]}],
                      linux={"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]})


def _log(tmp_path):
    p = tmp_path / "hooks" / "log"
    return [l.split() for l in p.read_text().splitlines()] if p.exists() else []


def test_hooks_run_in_order_where_the_spec_says(oci, tmp_path):
    """prestart and createRuntime in the runtime's namespaces, createContainer
    in the sandbox's network namespace, all during create with status
    "creating"; startContainer inside the sandbox (its hostname, pid 1 in its
    state), during start, before the entrypoint; poststart after it, before
    start returns; poststop at delete."""
    b = _hooked_bundle(oci, tmp_path, _hooks(tmp_path))
    host_net = os.readlink("/proc/self/ns/net")
    host_name = socket.gethostname()
    r = oci.create("h", b)
    assert r.returncode == 0, open(r.err).read()
    sentry = oci.state("h")["pid"]
    assert [l[:3] for l in _log(tmp_path)] == [["prestart", "creating", str(sentry)],
                                               ["createRuntime", "creating", str(sentry)],
                                               ["createContainer", "creating", str(sentry)]]
    pre, cr, cc = _log(tmp_path)
    assert pre[3:5] == cr[3:5] == [host_name, host_net]
    assert cc[3] == host_name and cc[4] != host_net          # the sandbox's network namespace
    assert not (tmp_path / "hooks" / "main").exists()

    s = oci.cmd("start", "h")
    assert s.returncode == 0, s.stderr
    lines = _log(tmp_path)
    assert [l[:3] for l in lines[3:]] == [["startContainer", "created", "1"], ["poststart", "running", str(sentry)]]
    assert lines[3][3] == "box" and lines[3][5] == "before-main"     # inside, before the entrypoint
    # start (and so poststart) returned after the entrypoint's execve
    (init,) = json.loads(oci.cmd("ps", "--format", "json", "h").stdout)
    assert open(f"/proc/{init}/cmdline", "rb").read().split(b"\0")[0] in (b"sh", b"sleep")
    assert read_when(str(tmp_path / "hooks" / "main"), lambda t: t) == "main 1\n"
    assert oci.cmd("kill", "h", "KILL").returncode == 0
    oci.wait_status("h", "stopped")
    assert len(_log(tmp_path)) == 5
    assert oci.cmd("delete", "h").returncode == 0
    assert _log(tmp_path)[5][:3] == ["poststop", "stopped", "0"]
    assert len(_log(tmp_path)) == 6


def test_hooks_of_a_foreground_run(oci, tmp_path):
    b = _hooked_bundle(oci, tmp_path, _hooks(tmp_path), args=("sh", "-c", "exit 4"))
    r = oci.cmd("run", "--bundle", b, "hr")
    assert r.returncode == 4, r.stderr
    assert [l[0] for l in _log(tmp_path)] == ["prestart", "createRuntime", "createContainer", "startContainer",
                                             "poststart", "poststop"]


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_a_failing_create_hook_fails_create(oci, tmp_path, kind):
    """The error in runc's words, with the hook's output; nothing is left
    (no state, no process), and the poststop hooks ran."""
    b = _hooked_bundle(oci, tmp_path, _hooks(tmp_path, fail=kind))
    log = str(tmp_path / "log.json")
    r = oci.cmd("create", "--bundle", b, "f", glob=("--log-format=json", "--log", log))
    want = (f"sentry create failed: unable to start container process: error running {kind} hook #0: "
            f"exit status 3, stdout: out of {kind}\n, stderr: err of {kind}\n")
    assert r.returncode == 1 and r.stderr == want.replace("\n", " ").rstrip() + "\n", r.stderr
    assert json.loads(open(log).read().splitlines()[-1])["msg"] == want.replace("\n", " ").rstrip()
    names = [l[0] for l in _log(tmp_path)]
    assert names == ["prestart", "createRuntime", "createContainer"][:names.index(kind) + 1] + ["poststop"], names
    assert _log(tmp_path)[-1][:3] == ["poststop", "stopped", "0"]
    assert oci.cmd("state", "f").returncode == 1 and not os.path.exists(os.path.join(oci.root, "f"))
    assert not (tmp_path / "hooks" / "main").exists()
    assert gone_soon(_processes_of(oci.root))          # the Sentry and its first process (forks of create)


def test_a_failing_start_container_hook_fails_start(oci, tmp_path):
    b = _hooked_bundle(oci, tmp_path, _hooks(tmp_path, fail="startContainer", code=5))
    r = oci.create("s", b)
    assert r.returncode == 0, open(r.err).read()
    pid = oci.state("s")["pid"]
    s = oci.cmd("start", "s")
    assert s.returncode == 1
    assert s.stderr == ("sentry: error running startContainer hook #0: exit status 5, "
                        "stdout: out of startContainer , stderr: err of startContainer\n"), s.stderr
    assert [l[0] for l in _log(tmp_path)] == ["prestart", "createRuntime", "createContainer", "startContainer",
                                             "poststop"]
    assert not (tmp_path / "hooks" / "main").exists()        # the entrypoint never ran
    assert oci.cmd("state", "s").returncode == 1 and gone_soon([pid])


def test_hook_timeout_kills_it_and_fails(oci, tmp_path):
    hooks = _hooks(tmp_path)
    # a duration no other process on the machine sleeps, for the pgrep below
    hooks["createRuntime"] = [{"path": "/bin/sleep", "args": ["sleep", "31.4159"], "timeout": 1}]
    t = time.monotonic()
    r = oci.cmd("create", "--bundle", _hooked_bundle(oci, tmp_path, hooks), "t")
    assert r.returncode == 1 and r.stderr.strip().endswith(
        "error running createRuntime hook #0: hook ran past specified timeout of 1.0s"), r.stderr
    assert time.monotonic() - t < 15
    assert [l[0] for l in _log(tmp_path)] == ["prestart", "poststop"]
    assert subprocess.run(["pgrep", "-f", "^sleep 31.4159$"], capture_output=True).stdout == b""


def test_failing_poststart_and_poststop_hooks_only_warn(oci, tmp_path):
    """The container runs on; delete succeeds; a second poststop hook still runs."""
    hooks = _hooks(tmp_path, fail="poststart")
    hooks["poststop"] = [_hook(str(tmp_path / "hooks" / "log"), "poststop-a", 7),
                         _hook(str(tmp_path / "hooks" / "log"), "poststop-b")]
    b = _hooked_bundle(oci, tmp_path, hooks)
    assert oci.create("w", b).returncode == 0
    s = oci.cmd("start", "w")
    assert s.returncode == 0 and "error running poststart hook #0: exit status 3" in s.stderr, s.stderr
    assert oci.state("w")["status"] == "running"
    d = oci.cmd("delete", "--force", "w")
    assert d.returncode == 0 and "error running poststop hook #0: exit status 7" in d.stderr, d.stderr
    assert [l[0] for l in _log(tmp_path)][-2:] == ["poststop-a", "poststop-b"]


@pytest.mark.parametrize("hook,text", [
    ({"path": "relative/hook"}, "hooks.createRuntime[0]: path must be an absolute path"),
    ({"path": "/bin/true", "timeout": 0}, "hooks.createRuntime[0]: timeout must be a number of seconds greater than zero"),
    ({"path": "/bin/true", "args": "x"}, "hooks.createRuntime[0]: args must be an array of strings"),
])
def test_bad_hooks_are_refused_before_anything_runs(oci, hook, text):
    r = oci.cmd("create", "--bundle", oci.bundle(["true"], hooks={"createRuntime": [hook]}), "b")
    assert r.returncode == 1 and text in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(oci.root, "b"))


def test_a_hook_that_cannot_be_executed(oci, tmp_path):
    hooks = {"createRuntime": [{"path": "/no/such/hook"}]}
    r = oci.cmd("create", "--bundle", oci.bundle(["true"], hooks=hooks), "n")
    assert r.returncode == 1 and r.stderr.strip().endswith(
        "error running createRuntime hook #0: fork/exec /no/such/hook: no such file or directory"), r.stderr
    # a startContainer hook's path resolves in the container: the host's python3 is not there
    hooks = {"startContainer": [{"path": sys.executable}]}
    assert oci.create("n", oci.bundle(["true"], hooks=hooks)).returncode == 0
    s = oci.cmd("start", "n")
    assert s.returncode == 1 and s.stderr.strip().endswith(
        f"error running startContainer hook #0: fork/exec {sys.executable}: no such file or directory"), s.stderr
    assert oci.cmd("state", "n").returncode == 1


def test_a_start_container_hook_past_its_timeout_is_killed_inside(oci, tmp_path):
    hooks = _hooks(tmp_path)
    hooks["startContainer"] = [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]
    b = _hooked_bundle(oci, tmp_path, hooks)
    assert oci.create("st", b).returncode == 0
    t = time.monotonic()
    s = oci.cmd("start", "st")
    assert s.returncode == 1 and s.stderr.strip().endswith(
        "error running startContainer hook #0: hook ran past specified timeout of 1.0s"), s.stderr
    assert time.monotonic() - t < 15
    assert [l[0] for l in _log(tmp_path)][-1] == "poststop"
    assert not (tmp_path / "hooks" / "main").exists()


# -- linux.seccomp -------------------------------------------------------------

def _profile(*rules, default="SCMP_ACT_ALLOW", **extra):
    return dict({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                 "syscalls": list(rules)}, **extra)


def _seccomp_bundle(oci, args, profile, **changes):
    linux = {"namespaces": [{"type": "pid"}, {"type": "mount"}], "seccomp": profile}
    return oci.bundle(args, linux=linux, **changes)


DENY_MKDIR = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}


def test_seccomp_profile_denies_before_the_sentry_sees_the_call(oci, tmp_path):
    """A call the profile denies gets its errno from the kernel: --strace
    (which logs every call that reaches the Sentry) shows no mkdir; a
    KILL_PROCESS rule kills the caller with SIGSYS; the rest runs as before."""
    b = _seccomp_bundle(oci, ["sh", "-c", "mkdir /tmp/d; echo mkdir=$?; [ -d /tmp/d ] || echo no-dir; "
                                          "touch /tmp/f && echo touch=$?; sync; echo sync=$?"],
                        _profile(DENY_MKDIR, {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}))
    log = tmp_path / "strace.log"
    r = oci.cmd("run", "--bundle", b, "sc1", glob=("--strace", "--debug", "--log", str(log)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["mkdir=1", "no-dir", "touch=0", "sync=159"], r.stdout
    assert "Operation not permitted" in r.stderr and "Bad system call" in r.stderr
    calls = [l.split("] ", 1)[1] for l in log.read_text().splitlines() if "[pid " in l]
    assert any(l.startswith("openat(") and "/tmp/f" in l for l in calls), calls     # strace saw the rest
    assert not [l for l in calls if l.startswith(("mkdir", "sync"))]


def test_seccomp_kill_process_ends_the_container_with_sigsys(oci, tmp_path):
    """busybox sh calls getppid as it starts: the container's first process
    dies with SIGSYS, the container's status is 128+31 (conmon's view: the
    pid file's process exits so)."""
    b = _seccomp_bundle(oci, ["sh", "-c", "echo unreachable"],
                        _profile({"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}))
    r = oci.cmd("run", "--bundle", b, "k")
    assert r.returncode == 128 + signal.SIGSYS and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    pidfile = str(tmp_path / "pid")
    reaped = subprocess.run([sys.executable, "-c", REAPER, oci.root, b, "k2", pidfile, "-"],
                            capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
    assert reaped.stdout.strip() == f"exit {128 + signal.SIGSYS}", (reaped.stdout, reaped.stderr)


def test_seccomp_argument_rules_as_runc_adds_them(oci):
    """kill(pid, SIGUSR1) and, through a second comparison of the same
    argument (runc adds such comparisons as separate rules: either denies),
    SIGUSR2 get EACCES; kill -0 is allowed; a MASKED_EQ rule on
    personality's persona."""
    kill_rule = {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]}
    b = _seccomp_bundle(oci, ["sh", "-c", "trap '' USR1 USR2; kill -USR1 $$; echo usr1=$?; kill -USR2 $$; "
                                          "echo usr2=$?; kill -0 $$; echo zero=$?"], _profile(kill_rule))
    r = oci.cmd("run", "--bundle", b, "a")
    assert r.stdout.splitlines() == ["usr1=1", "usr2=1", "zero=0"], (r.stdout, r.stderr)
    assert r.stderr.count("Permission denied") == 2, r.stderr


def test_seccomp_applies_to_exec_and_not_to_start_container_hooks(oci, tmp_path):
    """Each process the sandbox starts loads the profile just before its
    execve -- exec'd ones too; a startContainer hook ran before it (as runc
    loads a profile with noNewPrivileges: last, before the execve)."""
    d = tmp_path / "hooks"
    d.mkdir()
    hooks = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /hooks/by-hook"]}]}
    b = _seccomp_bundle(oci, ["sh", "-c", "mkdir /hooks/by-init 2>/dev/null; exec sleep 100"], _profile(DENY_MKDIR),
                        hooks=hooks, mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                                             {"destination": "/hooks", "type": "bind", "source": str(d),
                                              "options": ["bind"]}])
    assert oci.create("e", b).returncode == 0
    try:
        assert oci.cmd("start", "e").returncode == 0
        e = oci.cmd("exec", "e", "mkdir", "/hooks/by-exec")
        assert e.returncode == 1 and "Operation not permitted" in e.stderr, (e.returncode, e.stderr)
        assert sorted(os.listdir(d)) == ["by-hook"]
        s = oci.cmd("exec", "e", "grep", "Seccomp", "/proc/self/status")
        # the profile, as under runc: the Sentry's own filters are not the guest's
        assert "Seccomp:\t2\nSeccomp_filters:\t1" in s.stdout, s.stdout
    finally:
        oci.cmd("delete", "--force", "e")


def test_seccomp_trace_is_enosys_inside_a_sandbox(oci):
    """SCMP_ACT_TRACE asks for a tracer; the Sentry is the only one, so the
    call fails as Linux fails it when none is attached (ENOSYS), and create
    says so."""
    b = _seccomp_bundle(oci, ["sh", "-c", "mkdir /tmp/t; echo $?"],
                        _profile({"names": ["mkdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 5}))
    r = oci.cmd("run", "--bundle", b, "t")
    assert r.stdout == "1\n" and "Function not implemented" in r.stderr, (r.stdout, r.stderr)
    assert "SCMP_ACT_TRACE" in r.stderr and "ENOSYS" in r.stderr


@pytest.mark.parametrize("profile,text", [
    (_profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}),
     "SCMP_ACT_NOTIFY: a user-notification supervisor outranks the Sentry's trap"),
    (_profile(default="SCMP_ACT_NOTIFY"), "defaultAction: SCMP_ACT_NOTIFY"),
    (_profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/run/agent.sock"),
     "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY"),
    (_profile({"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}), "unknown action 'SCMP_ACT_BOGUS'"),
    (_profile(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported"),
    (_profile(architectures=["SCMP_ARCH_VAX"]), "unknown SCMP_ARCH_VAX"),
    (_profile({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}),
     "a bad argument comparison"),
])
def test_seccomp_profiles_sentry_will_not_install_are_refused_at_create(oci, profile, text):
    r = oci.cmd("create", "--bundle", _seccomp_bundle(oci, ["true"], profile), "bad")
    assert r.returncode == 1 and text in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not os.path.exists(os.path.join(oci.root, "bad"))


def test_seccomp_unknown_syscall_names_are_skipped_and_flags_taken(oci):
    """As runc: a name this libseccomp does not know is ignored; the log and
    spec-allow flags are accepted."""
    b = _seccomp_bundle(oci, ["sh", "-c", "mkdir /tmp/x; echo $?"],
                        _profile(dict(DENY_MKDIR, names=["mkdir", "no_such_call_2099"]),
                                 flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
    r = oci.cmd("run", "--bundle", b, "u")
    assert r.returncode == 0 and r.stdout == "1\n", r.stderr


def test_features_report_seccomp():
    f = json.loads(subprocess.run([sys.executable, "-m", "sentry", "features"], capture_output=True, text=True,
                                  env=ENV, timeout=TIMEOUT).stdout)["linux"]["seccomp"]
    assert f["enabled"] is True and "SCMP_ACT_NOTIFY" not in f["actions"]
    assert {"SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_ALLOW", "SCMP_ACT_TRACE"} <= set(f["actions"])
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"} <= set(f["archs"])
    assert "SCMP_CMP_MASKED_EQ" in f["operators"]


# -- --preserve-fds ----------------------------------------------------------------

def _with_fds(oci, fds, *args, **kw):
    """sentry ARGS with our fds given at 3, 4, ... (as an engine passes them:
    no close-on-exec), and nothing else above stderr."""
    def place():
        high = [os.dup(fd) for fd in fds]       # out of the way of 3, 4, ...
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        os.closerange(3 + len(fds), 1 << 16)
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", TIMEOUT)
    return subprocess.run([sys.executable, "-m", "sentry", "--root", oci.root, *args], env=ENV, text=True,
                          close_fds=False, preexec_fn=place, **kw)


def test_preserve_fds_passes_the_callers_fds_3_and_up(oci, tmp_path):
    """create --preserve-fds 2: a pipe at 3 and a file at 4 are the
    container's 3 and 4; LISTEN_FDS is not set (runc sets it only for its
    own socket activation); once the container closes the pipe the reader
    sees its end while the container runs on -- neither create, the Sentry
    nor its helpers kept a copy."""
    (tmp_path / "four").write_text("from fd 4\n")
    four = os.open(tmp_path / "four", os.O_RDONLY)
    r, w = os.pipe()
    b = oci.bundle(["sh", "-c", "echo through-3 >&3; exec 3>&-; cat <&4; "
                                "echo listen=$(env | grep -c LISTEN_); exec sleep 100"])
    out = tmp_path / "pf.out"
    with open(out, "w") as o:
        c = _with_fds(oci, [w, four], "create", "--preserve-fds", "2", "--bundle", b, "pf",
                      stdin=subprocess.DEVNULL, stdout=o, stderr=o, capture_output=False)
    os.close(w)
    os.close(four)
    try:
        assert c.returncode == 0, out.read_text()
        assert oci.cmd("start", "pf").returncode == 0
        ready, _, _ = select.select([r], [], [], 20)
        assert ready
        got = b""
        while True:
            ready, _, _ = select.select([r], [], [], 20)
            assert ready, f"no end of the pipe: {got!r}"
            chunk = os.read(r, 100)
            if not chunk:
                break
            got += chunk
        assert got == b"through-3\n"
        assert read_when(str(out), lambda t: "listen=" in t) == "from fd 4\nlisten=0\n"
        assert oci.state("pf")["status"] == "running"
    finally:
        os.close(r)
        oci.cmd("delete", "--force", "pf")


def test_preserve_fds_with_run_and_exec(oci, tmp_path):
    r, w = os.pipe()
    run = _with_fds(oci, [w], "run", "--preserve-fds", "1", "--bundle",
                    oci.bundle(["sh", "-c", "echo run-says-hi >&3"]), "pr")
    os.close(w)
    assert run.returncode == 0, run.stderr
    assert os.read(r, 100) == b"run-says-hi\n" and os.read(r, 100) == b""
    os.close(r)
    _started(oci, "px", ["sleep", "100"])
    try:
        r, w = os.pipe()
        e = _with_fds(oci, [w], "exec", "--preserve-fds", "1", "px", "sh", "-c", "echo exec-says-hi >&3; ls /proc/self/fd")
        os.close(w)
        assert e.returncode == 0, e.stderr
        assert os.read(r, 100) == b"exec-says-hi\n" and os.read(r, 100) == b""
        os.close(r)
        assert {0, 1, 2, 3} <= set(int(n) for n in e.stdout.split()) <= {0, 1, 2, 3, 4}, e.stdout   # 4: ls's own
    finally:
        oci.cmd("delete", "--force", "px")


def test_preserve_fds_that_were_not_passed_are_refused(oci, tmp_path):
    """runc's words; and none of sentry's own fds (its --log file is opened
    before the command runs) stands in for one the caller did not pass."""
    r, w = os.pipe()
    log = str(tmp_path / "log")
    res = _with_fds(oci, [w], "--log", log, "create", "--preserve-fds", "2", "--bundle", oci.bundle(["true"]), "pm")
    os.close(r)
    os.close(w)
    assert res.returncode == 1 and "unable to stat preserved-fd 1 (of 2): stat /proc/self/fd/4: no such file " \
        "or directory" in res.stderr, res.stderr
    assert not os.path.exists(os.path.join(oci.root, "pm"))
    bad = oci.cmd("create", "--preserve-fds", "-1", "--bundle", oci.bundle(["true"]), "pn")
    assert bad.returncode == 1 and "--preserve-fds -1" in bad.stderr


SPEC_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "scratch", "options": ["nosuid", "nodev", "size=65536k"]},
]


def test_mounts_read_as_the_spec_says_as_under_runc(oci, tmp_path, cbin):
    """/proc/self/mounts and mountinfo name each of the spec's mounts other
    than binds and cgroup by the spec's source and type at its destination, as
    runtime-tools checks them and as under runc; /dev/mqueue is the
    sandbox's IPC namespace's own: a queue mq_open makes is listed there and
    gone after mq_unlink, the same output as under runc."""
    import shutil
    runc = shutil.which("runc")
    if runc is None:
        pytest.fail("runc is missing (the reference): scripts/setup installs it")
    os.makedirs(oci.rootfs + "/opt", exist_ok=True)
    shutil.copy2(cbin("mq_list"), oci.rootfs + "/opt/mq_list")
    script = "cat /proc/self/mounts; echo ==; cat /proc/self/mountinfo; echo ==; /opt/mq_list"
    ns = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")]
    outs = {}
    for name, argv in (("runc", [runc, "--root", str(tmp_path / "runc-state")]),
                       ("sentry", [sys.executable, "-m", "sentry", "--root", oci.root])):
        b = oci.bundle(["sh", "-c", script], mounts=SPEC_MOUNTS, linux={"namespaces": ns})
        r = subprocess.run(argv + ["run", "--bundle", b, f"mounts-{name}"], capture_output=True, text=True,
                           env=ENV, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (name, r.stderr)
        outs[name] = r.stdout.split("==\n")
    for name, (mounts, info, mq) in outs.items():
        by_dst = {line.split()[1]: line.split() for line in mounts.splitlines()}
        info_by_dst = {}
        for line in info.splitlines():
            before, after = line.split(" - ")
            info_by_dst[before.split()[4]] = after.split()[:2]          # type, source
        for m in SPEC_MOUNTS:
            d = m["destination"]
            if m["type"] == "cgroup":
                # runc on cgroup v1: a tmpfs of controllers' mounts; the
                # sandbox has no cgroup file system and claims none
                assert name == "runc" or d not in by_dst, by_dst.get(d)
                continue
            assert by_dst[d][:3] == [m["source"], d, m["type"]], (name, by_dst.get(d))
            assert info_by_dst[d] == [m["type"], m["source"]], (name, info_by_dst.get(d))
    assert outs["sentry"][2] == outs["runc"][2] == "listing: sentry-q\nQSIZE:5\nlisting:\n", outs


def test_mount_destinations_follow_the_images_symlinks_as_under_runc(oci, tmp_path):
    """A destination through an image's symlink is mounted where it leads,
    inside the rootfs, as runc's securejoin places it (a relative link,
    /var/run -> ../run, Kubernetes' /var/run/secrets; an absolute one is
    taken from the rootfs's root); a destination in a symlink loop fails
    create in one line."""
    import shutil
    runc = shutil.which("runc")
    if runc is None:
        pytest.fail("runc is missing (the reference): scripts/setup installs it")
    for d in ("var", "run", "srv"):
        os.makedirs(os.path.join(oci.rootfs, d), exist_ok=True)
    os.symlink("../run", os.path.join(oci.rootfs, "var/run"))
    os.symlink("/srv", os.path.join(oci.rootfs, "abs"))
    os.symlink("/loop", os.path.join(oci.rootfs, "loop"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("bound\n")
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/var/run/secrets", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/abs/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]}]
    script = ("ls -d /run/secrets /var/run/secrets /srv/data; cat /srv/data/f /abs/data/f; "
              "grep -E ' /(run/secrets|srv/data|var/run/secrets|abs/data) ' /proc/self/mounts | cut -d' ' -f2 | sort")
    outs = {}
    for name, argv in (("runc", [runc, "--root", str(tmp_path / "runc-state")]),
                       ("sentry", [sys.executable, "-m", "sentry", "--root", oci.root])):
        b = oci.bundle(["sh", "-c", script], mounts=mounts,
                       linux={"namespaces": [{"type": t} for t in ("pid", "mount", "uts")]})
        r = subprocess.run(argv + ["run", "--bundle", b, f"links-{name}"], capture_output=True, text=True,
                           env=ENV, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        outs[name] = (r.returncode, r.stdout, r.stderr)
    assert outs["sentry"] == outs["runc"], outs
    assert outs["sentry"][1] == ("/run/secrets\n/srv/data\n/var/run/secrets\nbound\nbound\n"
                                 "/run/secrets\n/srv/data\n"), outs
    loop = [{"destination": "/loop/x", "type": "tmpfs", "source": "tmpfs"}]
    r = oci.cmd("run", "--bundle", oci.bundle(["true"], mounts=loop), "links-loop")
    assert r.returncode == 1 and "mount /loop/x: too many levels of symbolic links" in r.stderr, r.stderr


def test_oom_score_adj_is_the_whole_sandboxs(oci):
    """process.oomScoreAdj: the guest's processes have it (and so do the
    Sentry and its helpers, in the same memory cgroup, as all of runc's
    container processes have the init's); out of range fails create."""
    r = oci.cmd("run", "-b", oci.bundle(["sh", "-c", "cat /proc/self/oom_score_adj"], oomScoreAdj=700), "adj1")
    assert r.returncode == 0 and r.stdout == "700\n", r.stderr
    r = oci.cmd("run", "-b", oci.bundle(["true"], oomScoreAdj=2000), "adj2")
    assert r.returncode == 1 and "process.oomScoreAdj 2000: between -1000 and 1000" in r.stderr, r.stderr


def test_pids_limit_from_the_spec_and_annotations(oci):
    """linux.resources.pids.limit bounds the sandbox's tasks (fork past it
    is EAGAIN); a dev.sentry.pids-limit annotation is sentry's own word and
    wins; a limit that is not a number fails create."""
    script = "for i in 1 2 3 4 5 6; do sleep 2 & echo $i; done"
    for changes, last in (({"linux": {"resources": {"pids": {"limit": 4}}}}, "3"),
                          ({"linux": {"resources": {"pids": {"limit": 4}}},
                            "annotations": {"dev.sentry.pids-limit": "0"}}, "6"),
                          ({"linux": {"resources": {"pids": {"limit": -1}}}}, "6")):
        r = oci.cmd("run", "-b", oci.bundle(["sh", "-c", script], **changes), f"pl{oci.n}")
        assert r.stdout.split()[-1] == last, (changes, r.stdout, r.stderr)
    r = oci.cmd("run", "-b", oci.bundle(["true"], linux={"resources": {"pids": {"limit": "4"}}}), "plbad")
    assert r.returncode == 1 and "linux.resources.pids.limit '4': a number of tasks" in r.stderr, r.stderr


def test_update_sets_the_pids_limit_of_a_running_container(oci, tmp_path):
    """update --pids-limit (or pids.limit of --resources' JSON) changes a
    running sandbox's limit, as a pids cgroup's pids.max: forks past a
    lowered one are EAGAIN from then on, a raised one lets them through;
    memory and cpu go to the container's cgroup (resources_of_cgroup); the
    limits sentry does not apply are named in a warning; a bad value or a
    stopped container fails update in one line."""
    x = tmp_path / "x"
    x.mkdir()
    script = "while [ ! -e /x/go ]; do sleep 0.05; done; for i in 1 2 3 4 5 6; do sleep 5 & echo $i; done"
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/x", "type": "bind", "source": str(x), "options": ["rbind", "rw"]}]
    for first, update, last in ((0, ["--pids-limit", "4"], "3"), (4, ["--resources", "-"], "6")):
        cid = f"upd{first}"
        b = oci.bundle(["sh", "-c", script], mounts=mounts, linux={"namespaces": [{"type": "pid"}, {"type": "mount"}],
                                                                  "resources": {"pids": {"limit": first}}})
        assert oci.create(cid, b).returncode == 0
        assert oci.cmd("start", cid).returncode == 0
        r = oci.cmd(*["update", *update, cid], input=json.dumps({"pids": {"limit": 0}, "memory": {"limit": 1 << 30},
                                                                  "cpu": {"shares": 512}, "network": {"classID": 1}}))
        assert r.returncode == 0, r.stderr
        if update[0] == "--resources":
            assert "network not applied" in r.stderr and r.stderr.count("\n") == 1, r.stderr
            have = resources_of_cgroup(f"/sentry/{cid}")
            assert have["memory"] == 1 << 30 and have.get("shares", 512) == 512 and have.get("weight", 20) == 20
        (x / "go").write_text("")
        oci.wait_status(cid, "stopped")
        with open(str(tmp_path / f"{cid}.out")) as f:
            assert f.read().split()[-1] == last, (update, open(str(tmp_path / f"{cid}.out.err")).read())
        for bad, words in ((["--pids-limit", "x"], "invalid value 'x' for flag --pids-limit"),
                           (["--pids-limit", "3"], f"container {cid} is not running")):
            r = oci.cmd("update", *bad, cid)
            assert r.returncode == 1 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr
        (x / "go").unlink()
        assert oci.cmd("delete", cid).returncode == 0


def resources_of_cgroup(path):
    """The memory limit, swap (cgroup v1: memory and swap) and CPU figures
    the host's cgroup `path` holds, read from cgroup v1's files, else v2's
    (its cpu.weight mapped back to v1's shares as runc maps them)."""
    v1 = os.path.isdir("/sys/fs/cgroup/memory")
    mem = f"/sys/fs/cgroup/memory{path}" if v1 else f"/sys/fs/cgroup{path}"
    cpu = f"/sys/fs/cgroup/cpu{path}" if v1 else mem

    def number(d, name):
        with open(os.path.join(d, name)) as f:
            text = f.read().split()
        return [int(t) if t.lstrip("-").isdigit() else t for t in text]
    if v1:
        out = {"memory": number(mem, "memory.limit_in_bytes")[0], "shares": number(cpu, "cpu.shares")[0],
               "quota": number(cpu, "cpu.cfs_quota_us")[0], "period": number(cpu, "cpu.cfs_period_us")[0]}
        if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
            out["swap"] = number(mem, "memory.memsw.limit_in_bytes")[0]
    else:
        quota, period = number(cpu, "cpu.max")
        out = {"memory": number(mem, "memory.max")[0], "weight": number(cpu, "cpu.weight")[0],
               "quota": -1 if quota == "max" else quota, "period": period}
    return out


def test_a_memory_limit_ooms_the_guest_and_events_report_it(oci, tmp_path):
    """linux.resources memory and cpu are the container's cgroup's, which
    holds the whole sandbox (here a foreground run's: its container process
    joins it): a guest that allocates past the limit is killed by the
    kernel's OOM killer, the container ends 137, `events` streams an "oom"
    event, as runc's does, and `events --stats` shows the cgroup's memory."""
    x = tmp_path / "x"
    x.mkdir()
    script = "while [ ! -e /x/go ]; do sleep 0.05; done; x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived"
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/x", "type": "bind", "source": str(x), "options": ["rbind", "rw"]}]
    res = {"memory": {"limit": 96 << 20, "swap": 96 << 20},
           "cpu": {"shares": 256, "quota": 150000, "period": 100000}}
    b = oci.bundle(["sh", "-c", script], mounts=mounts,
                   linux={"namespaces": [{"type": "pid"}, {"type": "mount"}], "resources": res})
    run = subprocess.Popen([sys.executable, "-m", "sentry", "--root", oci.root, "run", "--bundle", b, "oom1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + TIMEOUT
        while oci.cmd("state", "oom1").returncode != 0 or oci.state("oom1")["status"] != "running":
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        have = resources_of_cgroup("/sentry/oom1")
        assert have["memory"] == 96 << 20 and have["quota"] == 150000 and have["period"] == 100000, have
        assert have.get("swap", 96 << 20) == 96 << 20 and have.get("shares", 256) == 256, have
        assert have.get("weight", 10) == 10, have          # 256 shares, in v2's terms
        st = json.loads(oci.cmd("events", "--stats", "oom1").stdout)["data"]["memory"]["usage"]
        assert st["limit"] == 96 << 20 and 1 << 20 < st["usage"] < 96 << 20, st
        stream = subprocess.Popen([sys.executable, "-m", "sentry", "--root", oci.root, "events", "--interval", "1s",
                                   "oom1"], stdout=subprocess.PIPE, text=True, env=ENV)
        assert json.loads(stream.stdout.readline())["type"] == "stats"   # it watches now
        (x / "go").write_text("")
        out, err = run.communicate(timeout=TIMEOUT)
        assert run.returncode == 137 and "survived" not in out, (run.returncode, out, err)
        events = [json.loads(line) for line in stream.stdout]
        assert stream.wait(timeout=TIMEOUT) == 0
        assert {"type": "oom", "id": "oom1"} in events, events
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_limits_without_a_cgroup_it_may_write_are_one_warning(busybox_root):
    """Run unprivileged (nobody, no delegated cgroup), a container with
    memory and cpu limits runs, and the runtime says in one warning that
    they are not applied, as runc warns of a rootless container's limits."""
    top = tempfile.mkdtemp(prefix="sentry-test-", dir="/var/tmp")
    try:
        os.chmod(top, 0o755)
        python, env = nobody_sentry(top)
        rootfs = os.path.join(top, "rootfs")
        copy_root(busybox_root, rootfs)
        subprocess.run(["chmod", "-R", "a+rX", rootfs], check=True)
        spec = {"ociVersion": "1.0.2",
                "process": {"user": {"uid": 0, "gid": 0}, "args": ["echo", "hi"], "env": ["PATH=/bin"], "cwd": "/"},
                "root": {"path": rootfs, "readonly": True},
                "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}],
                          "resources": {"memory": {"limit": 64 << 20}, "cpu": {"quota": 50000, "period": 100000}}}}
        with open(os.path.join(top, "config.json"), "w") as f:
            json.dump(spec, f)
        os.chmod(os.path.join(top, "config.json"), 0o644)
        os.mkdir(os.path.join(top, "state"))
        os.chown(os.path.join(top, "state"), 65534, 65534)
        r = subprocess.run(NOBODY + [python, "-m", "sentry", "--root", os.path.join(top, "state"), "run", "--bundle",
                                     top, "rl1"], env=env, cwd="/", capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0 and r.stdout == "hi\n", (r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "limits are not applied" in r.stderr and "rootless" in r.stderr, r.stderr
        assert not os.path.exists("/sys/fs/cgroup/memory/sentry/rl1")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_the_default_root_is_runcs_choice():
    """/run/sentry for the host's root, whatever XDG_RUNTIME_DIR says;
    $XDG_RUNTIME_DIR/sentry for root of another user namespace (rootless
    podman's runtime) unless USER is root.  Asked of sentry itself in the
    host's namespace and in one of its own (unshare -r)."""
    probe = "from sentry.oci.state import default_root; print(default_root())"
    cases = [([], {"XDG_RUNTIME_DIR": "/x", "USER": "alice"}, "/run/sentry"),
             (["unshare", "-Ur"], {"XDG_RUNTIME_DIR": "/x", "USER": "alice"}, "/x/sentry"),
             (["unshare", "-Ur"], {"XDG_RUNTIME_DIR": "/x"}, "/x/sentry"),
             (["unshare", "-Ur"], {"XDG_RUNTIME_DIR": "/x", "USER": "root"}, "/run/sentry"),
             (["unshare", "-Ur"], {}, "/run/sentry")]
    for prefix, env, want in cases:
        r = subprocess.run(prefix + [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                           env={"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **env}, timeout=TIMEOUT)
        assert r.stdout.strip() == want, (prefix, env, r.stdout, r.stderr)
