"""podman with sentry as its OCI runtime (`podman --runtime .../sentry`), on
a busybox image imported from a local tarball, with a private podman set-up
as ../shared/oci/README.md describes for these machines: vfs storage,
cgroupfs, file events, no network plugins, ulimits within root's own."""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import pytest

from bench import podmanenv
from bench.podmanenv import IMAGE
from conftest import sentry_runtime, skip_or_fail, wait_podman_log

TIMEOUT = 120


@pytest.fixture(scope="session")
def podman(busybox_root):
    if shutil.which("podman") is None or shutil.which("conmon") is None:
        skip_or_fail("podman", "podman (or conmon) is missing: scripts/setup installs it")
    top = tempfile.mkdtemp(prefix="sentry-podman-", dir="/var/tmp")
    p = podmanenv.make(top, sentry_runtime(top), busybox_root)
    yield p
    p.close()
    shutil.rmtree(top, ignore_errors=True)


def test_run_rm_echo(podman):
    r = podman("run", "--rm", IMAGE, "echo", "hi")
    assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    assert podman("ps", "-a", "-q").stdout == ""        # --rm removed it


@pytest.mark.parametrize("args,code,text", [
    (["sh", "-c", "exit 3"], 3, None),
    (["nosuch"], 127, "executable file not found in $PATH"),
    (["/etc/passwd"], 126, "permission denied"),
    (["sh", "-c", "sh -c 'kill -9 $$'; exit $?"], 137, None),
])
def test_exit_codes(podman, args, code, text):
    r = podman("run", "--rm", IMAGE, *args)
    assert r.returncode == code, r.stderr
    if text:
        assert text in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_env_workdir_user_network_none(podman):
    r = podman("run", "--rm", "--network=none", "-e", "FOO=bar", "-w", "/tmp", "--user", "1000:1000", IMAGE,
               "sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g)")
    assert r.returncode == 0 and r.stdout == "bar /tmp 1000:1000\n", r.stderr


def test_bind_mounts_and_read_only(podman, tmp_path):
    (tmp_path / "f").write_text("data\n")
    v = str(tmp_path)
    r = podman("run", "--rm", "-v", f"{v}:/v:ro", IMAGE, "sh", "-c", "cat /v/f; touch /v/g")
    assert r.stdout == "data\n" and "Read-only file system" in r.stderr and r.returncode == 1
    r = podman("run", "--rm", "-v", f"{v}:/v", IMAGE, "sh", "-c", "echo w > /v/g")
    assert r.returncode == 0 and (tmp_path / "g").read_text() == "w\n"
    r = podman("run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /etc/x; echo y > /tmp/y && cat /tmp/y")
    assert r.returncode == 0 and r.stdout == "y\n" and "Read-only file system" in r.stderr


FILES = ("cat /etc/hosts /etc/resolv.conf /etc/hostname; echo; hostname; ls -a /etc /run; "
         "echo added >> /etc/hosts; tail -1 /etc/hosts; rm /etc/hostname; grep -c . /etc/hosts")


@pytest.mark.parametrize("net", [["--network=none"], ["--network=host", "--hostname=hn1", "--add-host=foo:10.1.2.3"]])
def test_etc_files_as_under_runc(podman, net):
    """podman's own /etc/hosts, /etc/hostname, /etc/resolv.conf (with a
    network) and /run/.containerenv are binds of single files: the same
    output as under runc (but the container's random id and name), writes
    through them and EBUSY for removing one."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    outs = []
    for rt in ("runc", podman.runtime):
        r = podman("run", "--rm", "--name", "sentry-etc", *net, IMAGE, "sh", "-c", FILES, runtime=rt)
        # the container's id, its hostname without --hostname, is its own
        outs.append((r.returncode, re.sub(r"\b[0-9a-f]{12}\b", "ID", r.stdout), r.stderr))
    assert "Device or resource busy" in outs[1][2]
    assert ".containerenv" in outs[1][1] and "added" in outs[1][1]
    assert outs[0] == outs[1]


def test_tty(podman):
    """-t: the console pty is the sandbox's own (/dev/pts/0 inside, listed
    there, its name what ttyname and ps see, /dev/tty its terminal), the
    same output as under runc; the exit code comes through."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    script = ("[ -t 0 ] && [ -t 1 ] && echo on-a-tty; tty; ls -l /proc/self/fd/0 | sed 's/.*-> //'; "
              "ps -o tty,comm | grep ps; ls /dev/pts; echo to-dev-tty > /dev/tty; exit 5")
    outs = []
    for rt in (shutil.which("runc"), podman.runtime):
        cmd = f"podman --runtime {rt} run --rm -t {IMAGE} sh -c \"{script}\""
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=podman.env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        outs.append((r.returncode, r.stdout))
    assert outs[1] == outs[0], outs
    lines = outs[1][1].replace("\r\n", "\n").split("\n")
    assert outs[1][0] == 5 and lines[:3] == ["on-a-tty", "/dev/pts/0", "/dev/pts/0"], outs
    assert lines[3].split() == ["136,0", "ps"] and "to-dev-tty" in lines, outs


def test_detach_logs_kill_pause_stop_rm(podman):
    name = "sentry-d1"
    r = podman("run", "-d", "--name", name, IMAGE, "sh", "-c",
               "trap 'echo got-usr1' USR1; echo up; while :; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    try:
        assert "up" in wait_podman_log(podman, name, "up")
        assert podman("kill", "-s", "USR1", name).returncode == 0
        assert "got-usr1" in wait_podman_log(podman, name, "got-usr1")
        assert podman("pause", name).returncode == 0
        assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "paused"
        assert podman("unpause", name).returncode == 0
        assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "running"
        ex = podman("exec", name, "sh", "-c", "echo $$ from-exec; exit 4")
        assert ex.returncode == 4 and ex.stdout.split()[1:] == ["from-exec"], (ex.stdout, ex.stderr)
        # init has no TERM handler: TERM is ignored, as under runc; stop escalates
        r = podman("stop", "-t", "1", name)
        assert r.returncode == 0, r.stderr
        assert podman("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "137"
    finally:
        assert podman("rm", "-f", name).returncode == 0
    assert podman("ps", "-a", "-q", "--filter", f"name={name}").stdout == ""


def test_exec_joins_the_container(podman):
    """podman exec (conmon: exec --detach --pid-file --process): the output,
    the exit status, env/workdir/user, `ps` inside seeing init and itself,
    a missing program's 127, -t through the console socket; then stop, rm."""
    name = "sentry-x1"
    r = podman("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo hello > /tmp/f; exec sleep 1000")
    assert r.returncode == 0, r.stderr
    try:
        ex = podman("exec", "-e", "E=1", "-w", "/tmp", "--user", "7:8", name, "sh", "-c",
                    "cat f; echo $E $(pwd) $(id -u):$(id -g); ps -o pid,args; exit 6")
        assert ex.returncode == 6, ex.stderr
        lines = ex.stdout.splitlines()
        assert lines[:2] == ["hello", "1 /tmp 7:8"], ex.stdout
        ps = [l.split(None, 1) for l in lines[3:]]
        assert ["1", "sleep 1000"] in [[p, a.replace("{exe} ", "")] for p, a in ps], ex.stdout
        assert any("ps -o pid,args" in a for _, a in ps), ex.stdout
        missing = podman("exec", name, "nosuch")
        assert missing.returncode == 127, (missing.stdout, missing.stderr)
        t = subprocess.run(["script", "-qec", f"podman --runtime {podman.runtime} exec -t {name} "
                            "sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; tty; exit 2'", "/dev/null"],
                           env=podman.env, capture_output=True, text=True, timeout=TIMEOUT)
        # the sandbox's own pty, the first (the container has none), as under runc
        assert t.returncode == 2 and t.stdout.split() == ["on-a-tty", "/dev/pts/0"], (t.stdout, t.stderr)
        assert podman("stop", "-t", "1", name).returncode == 0
    finally:
        assert podman("rm", "-f", name).returncode == 0


def test_top_lists_no_host_process(podman):
    """podman top joins the mount namespace of the pid file's process and
    reads its /proc: that process is the Sentry's stand-in, whose /proc is
    empty, so nothing of the host is listed (not conmon, not podman, not
    the host's init) -- and the container's processes are in `podman exec
    ps`; the container's status still comes through the stand-in."""
    name = "sentry-top"
    assert podman("run", "-d", "--name", name, IMAGE, "sleep", "100").returncode == 0
    try:
        top = podman("top", name)
        assert top.returncode == 0, top.stderr
        assert top.stdout.splitlines()[1:] == [], top.stdout
        ps = podman("exec", name, "ps", "-o", "pid,args")
        assert ps.stdout.split("\n")[1].split() == ["1", "sleep", "100"], ps.stdout
        pid = int(podman("inspect", "-f", "{{.State.Pid}}", name).stdout)
        with open(f"/proc/{pid}/mountinfo") as f:
            assert any(l.split()[4] == "/proc" and " - tmpfs " in l and " ro," in l for l in f), pid
        assert podman("kill", name).returncode == 0
        assert podman("wait", name).stdout.strip() == "137"
    finally:
        podman("rm", "-f", name)


def test_top_with_ps_options_stats_and_checkpoint_beside_runc(podman):
    """What a user meets besides: `podman top NAME -o pid,comm` (options
    psgo does not know: podman runs ps in the container, through exec)
    lists init and that ps as under runc; `podman stats` reads the
    container's cgroup; `podman container checkpoint` is refused by podman
    itself, in one clear line (sentry's `checkpoint --help` fails, as
    podman asks), where runc's CRIU fails on this machine."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    tops = []
    for rt in (shutil.which("runc"), podman.runtime):
        assert podman("run", "-d", "--name", "sentry-top2", IMAGE, "sleep", "100", runtime=rt).returncode == 0
        try:
            top = podman("top", "sentry-top2", "-o", "pid,comm", runtime=rt)
            lines = [l.split() for l in top.stdout.splitlines()]
            tops.append((top.returncode, lines[:2], [l[1] for l in lines[2:]]))
            stats = podman("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "sentry-top2", runtime=rt)
            name, pids = stats.stdout.split()
            assert stats.returncode == 0 and name == "sentry-top2" and int(pids) >= 1, stats
            if rt == podman.runtime:
                ck = podman("container", "checkpoint", "sentry-top2", runtime=rt)
                assert ck.returncode == 125, ck
                assert ck.stderr == "Error: configured runtime does not support checkpoint/restore\n", ck.stderr
                assert podman("inspect", "-f", "{{.State.Status}}", "sentry-top2").stdout.strip() == "running"
        finally:
            podman("rm", "-f", "-t", "0", "sentry-top2", runtime=rt)
    assert tops[0] == tops[1] == (0, [["PID", "COMMAND"], ["1", "sleep"]], ["ps"]), tops


def test_init_as_under_runc(podman):
    """podman run --init: catatonit, bound from a host path that is a
    symlink (mount(2) binds its target), is pid 1 and runs the command;
    its exit code comes through, and `podman stop` ends it by TERM (143),
    which catatonit waits for blocked (signalfd): as under runc."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    seen = []
    for rt in (shutil.which("runc"), podman.runtime):
        r = podman("run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 3",
                   runtime=rt)
        assert podman("run", "-d", "--name", "sentry-init", "--init", IMAGE, "sleep", "100",
                      runtime=rt).returncode == 0
        try:
            stop = podman("stop", "-t", "20", "sentry-init", runtime=rt)
            code = podman("inspect", "-f", "{{.State.ExitCode}}", "sentry-init", runtime=rt).stdout.strip()
        finally:
            podman("rm", "-f", "-t", "0", "sentry-init", runtime=rt)
        seen.append((r.returncode, r.stdout, r.stderr, stop.returncode, code))
    assert seen[0] == seen[1], seen
    assert seen[1] == (3, "/run/podman-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '; exit 3 ", "", 0, "143"), seen


def test_cp_as_under_runc(podman, tmp_path):
    """podman cp into and out of a running container (podman joins the
    pid-file process's mount namespace and copies at "/" there): the
    container's files and its volume, as under runc -- never the host's
    (a copy to /etc/NAME wrote the host's /etc before the stand-in's root
    was the container's)."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    vol = tmp_path / "vol"
    vol.mkdir()
    src = tmp_path / "f"
    src.write_text("copied\n")
    name = f"sentry-cp-probe-{os.getpid()}"
    seen = []
    for rt in (shutil.which("runc"), podman.runtime):
        assert podman("run", "-d", "--name", "sentry-cp", "-v", f"{vol}:/vol", IMAGE, "sleep", "100",
                      runtime=rt).returncode == 0
        try:
            into = [podman("cp", str(src), f"sentry-cp:{d}/{name}", runtime=rt).returncode for d in ("/etc", "/vol")]
            inside = podman("exec", "sentry-cp", "cat", f"/etc/{name}", f"/vol/{name}", runtime=rt)
            out = tmp_path / "out"
            back = podman("cp", f"sentry-cp:/etc/{name}", str(out), runtime=rt)
            seen.append((into, inside.stdout, back.returncode, out.read_text()))
            assert not os.path.exists(f"/etc/{name}")
        finally:
            podman("rm", "-f", "-t", "0", "sentry-cp", runtime=rt)
            (vol / name).unlink(missing_ok=True)
    assert seen[0] == seen[1] == ([0, 0], "copied\ncopied\n", 0, "copied\n"), seen


def test_kill_9_is_137(podman):
    name = "sentry-k9"
    assert podman("run", "-d", "--name", name, IMAGE, "sleep", "100").returncode == 0
    try:
        assert podman("kill", "-s", "KILL", name).returncode == 0
        r = podman("wait", name)
        assert r.stdout.strip() == "137", r.stderr
    finally:
        podman("rm", "-f", name)


def test_the_default_seccomp_profile_applies(podman):
    """podman's config.json carries its default profile (defaultAction
    SCMP_ACT_ERRNO, an allowlist): the guest's one filter, as under runc
    (the Sentry's own are not the guest's); without it, none."""
    r = podman("run", "--rm", IMAGE, "grep", "Seccomp_filters", "/proc/self/status")
    assert r.returncode == 0 and r.stdout.split() == ["Seccomp_filters:", "1"], (r.stdout, r.stderr)
    r = podman("run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE, "grep", "Seccomp_filters",
               "/proc/self/status")
    assert r.returncode == 0 and r.stdout.split() == ["Seccomp_filters:", "0"], (r.stdout, r.stderr)


# The calls the Sentry makes a guest run for it, each made to happen: the
# staging area's mmap (any path), the fd handover's marker (root opening a
# mode-000 file), the signalfd trap's seccomp(2), a lock wait's nanosleep (a
# lock the Sentry keeps: a file of the read-only root), a refused fork's
# wait4 and a refused thread's exit (over the pids limit), execve rewritten
# to execveat.
INJECTED = r"""
import ctypes, fcntl, os, signal, struct, subprocess, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
with open("/tmp/secret", "w") as f:
    f.write("dac-ok\n")
os.chmod("/tmp/secret", 0)
print(open("/tmp/secret").read().strip())
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
mask = ctypes.c_uint64(1 << (signal.SIGUSR1 - 1))
sfd = libc.signalfd(-1, ctypes.byref(mask), 0)
os.kill(os.getpid(), signal.SIGUSR1)
print("signalfd", struct.unpack_from("<I", os.read(sfd, 128), 12)[0] == os.getpid())
r, w = os.pipe()
holder = os.fork()
if holder == 0:
    fd = os.open("/etc/hostname", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(w, b"x")
    time.sleep(0.5)
    os._exit(0)
os.read(r, 1)
t = time.monotonic()
fd = os.open("/etc/hostname", os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("lock waited", time.monotonic() - t > 0.2)
os.waitpid(holder, 0)
kids, refused = [], None
for _ in range(20):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused = "fork EAGAIN"
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
print(refused)
try:
    threading.Thread(target=time.sleep, args=(1,)).start()
    print("thread started")
except RuntimeError:
    print("thread refused")
for k in kids:
    os.kill(k, signal.SIGKILL)
    os.waitpid(k, 0)
print(subprocess.run(["/bin/echo", "exec-ok"], capture_output=True, text=True).stdout.strip())
"""


def test_the_sentrys_own_calls_work_under_podmans_profile(podman, tmp_path):
    """podman's real default profile (from the config.json it wrote for a
    container) on a bundle of the host's root with python3, against the
    same bundle without it: the same output."""
    name = "sentry-cfg"
    assert podman("create", "--name", name, IMAGE, "true").returncode == 0
    try:
        assert podman("init", name).returncode == 0
        path = podman("inspect", "-f", "{{.OCIConfigPath}}", name).stdout.strip()
        with open(path) as f:
            profile = json.load(f)["linux"]["seccomp"]
    finally:
        podman("rm", "-f", name)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and len(profile["syscalls"]) > 5
    root = str(tmp_path / "state")
    outs = []
    for n, linux in enumerate(({"seccomp": profile}, {})):
        b = tmp_path / f"b{n}"
        b.mkdir()
        linux["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
        (b / "config.json").write_text(json.dumps({
            "ociVersion": "1.0.2", "root": {"path": "/", "readonly": True},
            "process": {"args": ["/usr/bin/python3", "-c", INJECTED], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/usr/bin:/bin"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
            "annotations": {"dev.sentry.pids-limit": "8"}, "linux": linux}))
        r = subprocess.run([podman.runtime, "--root", root, "run", "--bundle", str(b), f"inj{n}"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] == ("dac-ok\nsignalfd True\nlock waited True\nfork EAGAIN\nthread refused\n"
                                  "exec-ok\n"), outs


def test_pids_limit_as_under_runc(podman):
    """podman --pids-limit (linux.resources.pids.limit): the sandbox's tasks
    at most, counted by the Sentry as a pids cgroup counts them (the shell
    and its children): the eighth fork fails with EAGAIN, as under runc;
    podman's own default (2048) is no obstacle to twelve."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 3 & echo $i; done"
    for limit, last in ((["--pids-limit", "8"], "7"), ([], "12")):
        outs = [podman("run", "--rm", *limit, IMAGE, "sh", "-c", script, runtime=rt)
                for rt in (shutil.which("runc"), podman.runtime)]
        runc, sentry = [(r.returncode, r.stdout, r.stderr) for r in outs]
        assert sentry == runc, (sentry, runc)
        assert sentry[1].split()[-1] == last, sentry


ALLOCATE = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived"


def test_memory_limit_ooms_as_under_runc(podman, tmp_path):
    """podman run --memory: the container's cgroup holds the whole sandbox
    and has the limit; a guest that allocates past it is OOM-killed: 137,
    and conmon, watching the memory cgroup of the pid-file process, records
    the OOM as under runc (its `oom` file, which conmon 2.1 writes in its
    working directory, podman's, where podman 4.3 never reads it: so
    {{.State.OOMKilled}} reads false under runc too here)."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    seen = []
    for rt in (shutil.which("runc"), podman.runtime):
        cwd = tmp_path / os.path.basename(rt)
        cwd.mkdir()
        os.chmod(cwd, 0o755)
        r = podman("run", "--name", "sentry-oom", "--memory", "96m", IMAGE, "sh", "-c", ALLOCATE,
                   runtime=rt, cwd=str(cwd))
        inspect = podman("inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", "sentry-oom", runtime=rt)
        podman("rm", "-f", "sentry-oom", runtime=rt)
        seen.append((r.returncode, r.stdout, inspect.stdout, (cwd / "oom").exists()))
    assert seen[0] == seen[1] and seen[1][0] == 137 and seen[1][3], seen


@pytest.mark.parametrize("adj", ["500", "-500"])
def test_oom_score_adj_as_under_runc(podman, adj):
    """podman --oom-score-adj (process.oomScoreAdj; kubelet sets one per
    QoS class): the container's processes have it, as under runc; lowering
    it needs CAP_SYS_RESOURCE, which root lacks on these machines: create
    fails then (126) under both."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    seen = [podman("run", "--rm", "--oom-score-adj", adj, IMAGE, "sh", "-c",
                   "cat /proc/self/oom_score_adj; sleep 0.1 & cat /proc/$!/oom_score_adj", runtime=rt)
            for rt in (shutil.which("runc"), podman.runtime)]
    runc, sentry = [(r.returncode, r.stdout) for r in seen]
    assert sentry == runc, (seen[0].stderr, seen[1].stderr)
    assert sentry[0] != 0 or sentry[1] == f"{adj}\n{adj}\n", sentry


def _cgroup_limits(podman, name):
    """The memory, memory+swap, CPU and block I/O throttle figures of
    container `name`'s cgroup (cgroup v1's files, where podman's cgroupfs
    manager puts it)."""
    cid = podman("inspect", "-f", "{{.Id}}", name).stdout.strip()
    d = f"libpod_parent/libpod-{cid}"
    files = [f"memory/{d}/memory.limit_in_bytes", f"memory/{d}/memory.memsw.limit_in_bytes",
             f"cpu/{d}/cpu.cfs_quota_us", f"cpu/{d}/cpu.cfs_period_us", f"cpu/{d}/cpu.shares",
             f"blkio/{d}/blkio.throttle.read_bps_device", f"blkio/{d}/blkio.throttle.write_iops_device"]
    return [open(f"/sys/fs/cgroup/{f}").read().strip() if os.path.exists(f"/sys/fs/cgroup/{f}") else None
            for f in files]


def test_memory_and_cpu_limits_and_update_as_under_runc(podman):
    """podman run --memory --cpus --cpu-shares --device-read-bps
    --device-write-iops, then podman update --memory --cpus (the runtime's
    `update --resources -`): the container's cgroup holds the same figures
    as under runc, before and after."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        skip_or_fail("podman", "cgroup v1's memory controller is not mounted: the figures are read from it")
    disks = [d for d in sorted(os.listdir("/sys/block")) if not d.startswith(("loop", "zram", "ram"))]
    if not disks:
        skip_or_fail("podman", "no block device to throttle")
    disk = f"/dev/{disks[0]}"
    seen = []
    for rt in (shutil.which("runc"), podman.runtime):
        r = podman("run", "-d", "--name", "sentry-upd", "--memory", "64m", "--cpus", "1.5", "--cpu-shares", "512",
                   "--device-read-bps", f"{disk}:1mb", "--device-write-iops", f"{disk}:100",
                   IMAGE, "sleep", "100", runtime=rt)
        try:
            assert r.returncode == 0, r.stderr
            before = _cgroup_limits(podman, "sentry-upd")
            u = podman("update", "--memory", "128m", "--cpus", "0.5", "sentry-upd", runtime=rt)
            seen.append((before, u.returncode, _cgroup_limits(podman, "sentry-upd")))
        finally:
            podman("rm", "-f", "-t", "0", "sentry-upd", runtime=rt)
    assert seen[0] == seen[1], seen
    dev = open(f"/sys/block/{disks[0]}/dev").read().strip()
    assert seen[1] == (["67108864", "134217728", "150000", "100000", "512", f"{dev} 1048576", f"{dev} 100"], 0,
                       ["134217728", "268435456", "50000", "100000", "512", f"{dev} 1048576", f"{dev} 100"]), seen


def _cpuset_of(podman, name):
    """Container `name`'s cpuset cgroup (cpus, mems) and what its init and an
    exec'd process are allowed, as they see it."""
    cid = podman("inspect", "-f", "{{.Id}}", name).stdout.strip()
    d = f"/sys/fs/cgroup/cpuset/libpod_parent/libpod-{cid}"
    inside = podman("exec", name, "sh", "-c", "nproc; grep _allowed_list /proc/1/status /proc/self/status")
    return [open(f"{d}/cpuset.{f}").read().strip() for f in ("cpus", "mems")], inside.stdout.split()


def test_cpuset_and_update_as_under_runc(podman):
    """podman run --cpuset-cpus --cpuset-mems, then podman update
    --cpuset-cpus: the container's cpuset cgroup and what its processes may
    run on (nproc, /proc/PID/status) are as under runc, before and after."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    if not os.path.isdir("/sys/fs/cgroup/cpuset") or len(os.sched_getaffinity(0)) < 2:
        skip_or_fail("podman", "cgroup v1's cpuset is not mounted, or this machine has one CPU")
    first, last = sorted(os.sched_getaffinity(0))[0], sorted(os.sched_getaffinity(0))[-1]
    seen = []
    for rt in (shutil.which("runc"), podman.runtime):
        r = podman("run", "-d", "--name", "sentry-cpuset", "--cpuset-cpus", str(last), "--cpuset-mems", "0",
                   IMAGE, "sleep", "100", runtime=rt)
        try:
            assert r.returncode == 0, r.stderr
            before = _cpuset_of(podman, "sentry-cpuset")
            u = podman("update", "--cpuset-cpus", str(first), "sentry-cpuset", runtime=rt)
            seen.append((before, u.returncode, _cpuset_of(podman, "sentry-cpuset")))
        finally:
            podman("rm", "-f", "-t", "0", "sentry-cpuset", runtime=rt)
    assert seen[0] == seen[1], seen
    assert seen[1][0][0] == [str(last), "0"] and seen[1][2][0] == [str(first), "0"], seen


def test_blkio_weight_device_as_under_runc(podman):
    """podman run --blkio-weight-device DISK:200: the weight written to the
    container's blkio cgroup as runc writes it, or, where the disk's I/O
    scheduler has no weights (not BFQ), create failing as runc's does."""
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    disks = [d for d in sorted(os.listdir("/sys/block")) if not d.startswith(("loop", "zram", "ram"))]
    if not disks:
        skip_or_fail("podman", "no block device to weigh")
    seen = []
    for rt in (shutil.which("runc"), podman.runtime):
        r = podman("run", "--rm", "--blkio-weight-device", f"/dev/{disks[0]}:200", IMAGE,
                   "echo", "ran", runtime=rt)
        seen.append((r.returncode, r.stdout, "operation not supported" in r.stderr.lower()))
    assert seen[0] == seen[1], seen
    bfq = "[bfq]" in open(f"/sys/block/{disks[0]}/queue/scheduler").read()
    assert seen[1] == ((0, "ran\n", False) if bfq else (126, "", True)), seen


def test_personality_as_natively(podman):
    """podman run --personality=LINUX32: the container's machine is i686,
    as `setarch linux32` gives natively (runc 1.1 ignores the field and
    says x86_64)."""
    native = subprocess.run(["setarch", "linux32", "uname", "-m"], capture_output=True, text=True)
    r = podman("run", "--rm", "--personality=LINUX32", IMAGE, "sh", "-c", "uname -m; cat /proc/self/personality")
    assert (r.returncode, r.stdout) == (0, native.stdout + "00000008\n"), r.stderr


def _bridge_or_fail(podman):
    """podman's bridge network needs netavark (or CNI's plugins) and iptables."""
    if not any(shutil.which(p, path="/usr/lib/podman:/usr/libexec/podman:/usr/local/libexec/podman")
               for p in ("netavark",)) or shutil.which("iptables") is None:
        skip_or_fail("podman-bridge", "netavark or iptables is missing: podman's bridge network needs them")


def _web(podman, name, port, www, runtime=None):
    """A busybox httpd in container `name` on podman's bridge network,
    serving www on its port 80, published on the host's `port`."""
    return podman("run", "-d", "--name", name, "--network=bridge", "-p", f"{port}:80", "-v", f"{www}:/www:ro",
                  IMAGE, "httpd", "-f", "-p", "80", "-h", "/www", runtime=runtime)


def _fetch(url, timeout=10):
    """The body at url, retried while the server starts; None if it never answers."""
    import time
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.1)
    return None


NETAVARK_CHAINS = {"filter": ["NETAVARK_FORWARD"],
                   "nat": ["NETAVARK-HOSTPORT-DNAT", "NETAVARK-HOSTPORT-MASQ", "NETAVARK-HOSTPORT-SETMARK"]}


def _netavark_leftovers(forward_was):
    """Undo what netavark leaves once its last container is gone: its
    chains (when they hold nothing of any container's: another user's
    container keeps them) and the jumps to them; ip_forward as it was."""
    def rules(table):
        return subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines()
    for table, chains in NETAVARK_CHAINS.items():
        mine = [r for r in rules(table) if r.startswith("-A ") and r.split()[1] in chains]
        if any("comment" not in r and "MARK" not in r for r in mine) or any(
                "10." in r or "dport" in r for r in mine):
            return                          # a container's rules: someone's bridge is in use
    for table, chains in NETAVARK_CHAINS.items():
        for r in rules(table):
            words = shlex.split(r)
            if words[0] == "-A" and "-j" in words and words[words.index("-j") + 1] in chains:
                subprocess.run(["iptables", "-t", table, "-D", *words[1:]])
        for c in chains:
            subprocess.run(["iptables", "-t", table, "-F", c], capture_output=True)
            subprocess.run(["iptables", "-t", table, "-X", c], capture_output=True)
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write(forward_was)


def test_bridge_network_and_published_port_as_under_runc(podman, tmp_path):
    """podman's default rootful network (netavark's bridge): the container
    lives in the network namespace podman made, passed by path: its
    interface, address and routes (as nsenter shows them there), its server
    on port 80 (a root guest binds it) reached through the published port
    from the host's loopback and its address, and at the container's own
    address; the same as under runc."""
    import socket
    _bridge_or_fail(podman)
    (tmp_path / "index.html").write_text("from-the-container\n")
    os.chmod(tmp_path, 0o755)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    seen = {}
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward_was = f.read()
    chains_were = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.count("NETAVARK")
    for runtime in (None, "runc"):
        name = f"sentry-web-{runtime or 'sentry'}"
        r = _web(podman, name, port, tmp_path, runtime=runtime)
        try:
            assert r.returncode == 0, r.stderr
            ip = podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
            key = podman("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", name).stdout.strip()
            assert ip and key.startswith("/run/netns/"), (ip, key)
            got = [_fetch(f"http://127.0.0.1:{port}/"), _fetch(f"http://{ip}/")]
            inside = podman("exec", name, "sh", "-c", "ip -o -4 addr; ip route; hostname -i")
            assert inside.returncode == 0, inside.stderr
            native = subprocess.run(["nsenter", f"--net={key}", "sh", "-c", "ip -o -4 addr; ip route"],
                                    capture_output=True, text=True, timeout=TIMEOUT)
            # busybox's ip prints what iproute2 prints, bar a word or two
            words = lambda text: [w for w in text.split() if re.match(r"\d+\.\d+\.\d+\.\d+(/\d+)?$", w)]
            assert words(inside.stdout)[:-1] == words(native.stdout), (inside.stdout, native.stdout)
            seen[runtime] = (got, words(inside.stdout)[-1] == ip)
        finally:
            assert podman("rm", "-f", "-t", "0", name, runtime=runtime).returncode == 0
    if not chains_were:
        _netavark_leftovers(forward_was)
    assert seen[None] == seen["runc"] == (["from-the-container\n"] * 2, True), seen


def test_network_of_another_container_as_under_runc(podman, tmp_path):
    """podman --network container:ID (what a pod's containers get too): the
    engine passes /proc/PID/ns/net of the other container's pid-file
    process, which under sentry is in the sandbox's network namespace: the
    same interfaces, and the other container's server on the shared
    loopback, as under runc."""
    _bridge_or_fail(podman)
    (tmp_path / "index.html").write_text("from-the-first\n")
    os.chmod(tmp_path, 0o755)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward_was = f.read()
    chains_were = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.count("NETAVARK")
    seen = {}
    for runtime in (None, "runc"):
        name = f"sentry-net-{runtime or 'sentry'}"
        r = podman("run", "-d", "--name", name, "--network=bridge", "-v", f"{tmp_path}:/www:ro", IMAGE,
                   "httpd", "-f", "-p", "80", "-h", "/www", runtime=runtime)
        try:
            assert r.returncode == 0, r.stderr
            ip = podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
            r = podman("run", "--rm", "--network", f"container:{name}", IMAGE, "sh", "-c",
                       "ip -o -4 addr | tr -s ' ' | cut -d' ' -f2,4; for i in 1 2 3 4 5 6 7 8 9 10; do "
                       "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80 | tail -1 | grep . && break; sleep 0.2; done",
                       runtime=runtime)
            assert r.returncode == 0, r.stderr
            seen[runtime] = r.stdout.replace(ip, "IP")
        finally:
            assert podman("rm", "-f", "-t", "0", name, runtime=runtime).returncode == 0
    if not chains_were:
        _netavark_leftovers(forward_was)
    assert seen[None] == seen["runc"] == "lo 127.0.0.1/8\neth0 IP/16\nfrom-the-first\n", seen
