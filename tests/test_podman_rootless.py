"""Rootless podman with sentry as its runtime: podman run by `nobody` (no
/etc/subuid range: podman's user namespace maps that one uid to 0), which
starts the runtime as uid 0 of that namespace.  sentry then runs as an
unprivileged user does, from a world-readable copy of this tree; its state
goes to $XDG_RUNTIME_DIR/sentry as runc's does, since podman never passes
--root.  Outputs are compared with rootless runc's on the same podman."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from bench import podmanenv
from bench.podmanenv import IMAGE
from conftest import NOBODY, nobody_sentry, skip_or_fail, wait_podman_log

NOBODY_UID = 65534
TIMEOUT = 120


@pytest.fixture(scope="module")
def rootless(busybox_root):
    if shutil.which("podman") is None or shutil.which("conmon") is None:
        skip_or_fail("podman", "podman (or conmon) is missing: scripts/setup installs it")
    if shutil.which("runc") is None:
        skip_or_fail("podman", "runc is missing (the reference): scripts/setup installs it")
    top = tempfile.mkdtemp(prefix="sentry-rootless-", dir="/var/tmp")
    os.chmod(top, 0o755)
    p = None
    try:
        tree = os.path.join(top, "tree")
        os.mkdir(tree)
        python, env = nobody_sentry(tree)
        # the launcher's module path as nobody's interpreter computes it
        # (root's may name directories nobody cannot read)
        seen = subprocess.run(NOBODY + [python, "-c", "import json, sys; print(json.dumps(sys.path))"],
                              env={"PATH": env["PATH"]}, cwd="/", capture_output=True, text=True, check=True)
        from sentry import launcher
        os.mkdir(os.path.join(top, "bin"), 0o755)
        runtime = os.path.join(top, "bin", "sentry")
        with open(runtime, "w") as f:
            f.write(launcher.script(python, tree, path=[d for d in json.loads(seen.stdout) if d]))
        os.chmod(runtime, 0o755)
        p = podmanenv.make(top, runtime, busybox_root, user=NOBODY_UID)
        yield p
    finally:
        if p is not None:
            p.close()
        shutil.rmtree(top, ignore_errors=True)


def _both(p, *args):
    """(returncode, stdout, stderr with the runtime's name as RT) under
    rootless runc and rootless sentry."""
    out = []
    for rt in ("runc", p.runtime):
        r = p(*args, runtime=shutil.which(rt) if rt == "runc" else rt)
        out.append((r.returncode, r.stdout, re.sub(r"\S*(runc|sentry)\b", "RT", r.stderr)))
    return out


@pytest.mark.parametrize("opts,args", [
    ([], ["echo", "hi"]),
    ([], ["sh", "-c", "exit 3"]),
    ([], ["nosuch"]),                                              # 127
    ([], ["/etc/passwd"]),                                         # 126
    ([], ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]),             # 137
    (["-e", "FOO=bar", "-w", "/tmp"], ["sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g)"]),
    (["--read-only"], ["sh", "-c", "touch /etc/x; echo y > /tmp/y && cat /tmp/y"]),
    (["--network=none"], ["sh", "-c", "ip -o link | cut -d: -f2"]),
    # /dev of the sandbox's own: the host's nodes bound (no CAP_MKNOD), devpts, mqueue
    ([], ["sh", "-c", "echo $(ls /dev); ls /dev/pts; grep -E ' /(proc|sys|dev|dev/pts|dev/mqueue) ' /proc/mounts | "
                      "cut -d' ' -f1-3 | sort"]),
    # stat without times: the two runs may straddle a minute
    ([], ["sh", "-c", "stat -c '%A %u %g %t:%T %n' /dev/null /dev/zero /dev/urandom; echo x > /tmp/x; "
                      "stat -c '%A %u %g %s %n' /tmp/*; cat /proc/1/cmdline; echo; cat /etc/hostname /etc/hosts | wc -l"]),
])
def test_rootless_run_as_under_runc(rootless, opts, args):
    runc, sentry = _both(rootless, "run", "--rm", *opts, IMAGE, *args)
    assert sentry == runc, (sentry, runc)


def test_rootless_user_and_binds(rootless):
    """--user needs no subuid range under sentry (ids are the Sentry's): the
    process runs as 1000:1000 where rootless runc cannot set it up; -v binds
    read-only and read-write reach the user's directory."""
    home = rootless.env["HOME"]
    v = os.path.join(home, "v")
    os.makedirs(v, exist_ok=True)
    with open(os.path.join(v, "f"), "w") as f:
        f.write("data\n")
    os.chown(v, NOBODY_UID, NOBODY_UID)
    r = rootless("run", "--rm", "--user", "1000:1000", IMAGE, "sh", "-c", "echo $(id -u):$(id -g)")
    assert (r.returncode, r.stdout) == (0, "1000:1000\n"), r.stderr
    r = rootless("run", "--rm", "-v", f"{v}:/v:ro", IMAGE, "sh", "-c", "cat /v/f; touch /v/g")
    assert (r.returncode, r.stdout) == (1, "data\n") and "Read-only file system" in r.stderr, r
    r = rootless("run", "--rm", "-v", f"{v}:/v", IMAGE, "sh", "-c", "echo w > /v/g; ls -ln /v/g")
    assert r.returncode == 0 and r.stdout.split()[2:4] == ["0", "0"], r
    st = os.stat(os.path.join(v, "g"))
    assert (st.st_uid, open(os.path.join(v, "g")).read()) == (NOBODY_UID, "w\n")


def test_rootless_detach_exec_kill_stop_rm(rootless):
    """-d, logs, kill -s, exec (output, status, ps inside), stop escalating
    to KILL (137), rm; the state lived in $XDG_RUNTIME_DIR/sentry and is
    gone after rm."""
    name = "sentry-rl1"
    state = os.path.join(rootless.env["XDG_RUNTIME_DIR"], "sentry")
    r = rootless("run", "-d", "--name", name, IMAGE, "sh", "-c",
                 "trap 'echo got-usr1' USR1; echo up; while :; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        assert os.path.exists(os.path.join(state, cid, "state.json"))
        assert "up" in wait_podman_log(rootless, name, "up")
        assert rootless("kill", "-s", "USR1", name).returncode == 0
        assert "got-usr1" in wait_podman_log(rootless, name, "got-usr1")
        ex = rootless("exec", name, "sh", "-c", "echo from-exec; ps -o pid,args; exit 4")
        assert ex.returncode == 4, ex.stderr
        lines = ex.stdout.splitlines()
        assert lines[0] == "from-exec" and lines[2].split(None, 1)[0] == "1", ex.stdout
        assert rootless("stop", "-t", "1", name).returncode == 0
        assert rootless("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "137"
    finally:
        assert rootless("rm", "-f", name).returncode == 0
    assert not os.path.exists(os.path.join(state, cid))


def test_rootless_tty(rootless):
    cmd = " ".join(rootless.command("run", "--rm", "-t", IMAGE, "sh", "-c",
                                    "'[ -t 0 ] && [ -t 1 ] && echo on-a-tty; tty; exit 5'"))
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=rootless.env, cwd=rootless.top,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 5 and r.stdout.split() == ["on-a-tty", "/dev/pts/0"], (r.stdout, r.stderr)
