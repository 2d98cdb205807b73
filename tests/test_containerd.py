"""containerd with sentry as the runc shim's binary: a private containerd
(its own config, socket, root and state; the CRI plugin off), a busybox
image imported from an OCI archive built here from a local tarball, and
`ctr run --runtime io.containerd.runc.v2 --runc-binary .../sentry` -- the
same option the shim's BinaryName sets (../shared/oci/README.md).  The shim
passes `--root /run/containerd/runc/<namespace>`: each run uses a namespace
of its own, removed at the end."""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import sentry_runtime, skip_or_fail

IMAGE = "localhost/bb:latest"
TIMEOUT = 120


def oci_archive(rootfs, path):
    """An OCI image layout (one uncompressed layer, CMD /bin/sh) as a tar."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        t.add(rootfs, arcname=".")
    layer = layer.getvalue()
    blobs = {}

    def blob(data, media):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"mediaType": media, "digest": f"sha256:{d}", "size": len(data)}

    layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = blob(json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode(),
        "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": config, "layers": [layer_desc]}).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "latest"}
    index = json.dumps({"schemaVersion": 2, "manifests": [manifest]}).encode()
    with tarfile.open(path, "w") as t:
        def put(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        put("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        put("index.json", index)
        for d, data in blobs.items():
            put(f"blobs/sha256/{d}", data)


class Ctr:
    def __init__(self, top, sock, runtime, namespace):
        self.top, self.sock, self.runtime, self.ns = top, sock, runtime, namespace

    def __call__(self, *args, timeout=TIMEOUT, **kw):
        kw.setdefault("capture_output", True)
        return subprocess.run(["ctr", "-a", self.sock, "-n", self.ns, *args], text=True, timeout=timeout, **kw)

    def run(self, cid, *args, opts=()):
        return self("run", "--rm", "--runtime", "io.containerd.runc.v2", "--runc-binary", self.runtime,
                    "--snapshotter", "native", *opts, IMAGE, cid, *args)


@pytest.fixture(scope="module")
def ctr(busybox_root):
    if shutil.which("containerd") is None or shutil.which("ctr") is None \
            or shutil.which("containerd-shim-runc-v2") is None:
        skip_or_fail("containerd", "containerd (or its runc shim) is missing: scripts/setup installs it")
    if os.geteuid() != 0:
        skip_or_fail("containerd", "a private containerd needs root here")
    top = tempfile.mkdtemp(prefix="sentry-ctrd-", dir="/var/tmp")
    sock = os.path.join(top, "containerd.sock")
    with open(os.path.join(top, "config.toml"), "w") as f:
        f.write(f'version = 2\nroot = "{top}/root"\nstate = "{top}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n')
    log = open(os.path.join(top, "containerd.log"), "w")
    daemon = subprocess.Popen(["containerd", "--config", os.path.join(top, "config.toml")],
                              stdout=log, stderr=log, start_new_session=True)
    namespace = f"sentry-test-{os.getpid()}"
    c = Ctr(top, sock, sentry_runtime(top), namespace)
    try:
        deadline = time.monotonic() + 30
        while c("version").returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, open(log.name).read()[-2000:]
            time.sleep(0.1)
        archive = os.path.join(top, "bb.tar")
        oci_archive(busybox_root, archive)
        r = c("images", "import", "--snapshotter", "native", archive)
        assert r.returncode == 0 and c("images", "ls", "-q").stdout.split() == [IMAGE], (r.stdout, r.stderr)
        yield c
    finally:
        for cid in c("containers", "ls", "-q").stdout.split():
            c("tasks", "kill", "-s", "KILL", cid)
            c("tasks", "delete", "-f", cid)
            c("containers", "delete", cid)
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        shutil.rmtree(f"/run/containerd/runc/{namespace}", ignore_errors=True)
        shutil.rmtree(top, ignore_errors=True)


def test_run_output_and_exit_codes(ctr):
    r = ctr.run("c-echo", "echo", "hi")
    assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    r = ctr.run("c-exit", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    # pid 1 ignores a SIGKILL from inside its namespace, as on Linux: a child's
    r = ctr.run("c-kill", "sh", "-c", "sh -c 'kill -9 $$'; exit $?")
    assert r.returncode == 137, r.stderr
    assert ctr("containers", "ls", "-q").stdout == ""       # --rm removed them


def test_env_cwd_and_bind_mounts(ctr, tmp_path):
    (tmp_path / "f").write_text("data\n")
    r = ctr.run("c-env", "sh", "-c", "echo $FOO $(pwd) $(id -u); cat /v/f; echo w > /v/g; ps -o pid,args",
                opts=("--env", "FOO=bar", "--cwd", "/tmp", "--mount",
                      f"type=bind,src={tmp_path},dst=/v,options=rbind:rw"))
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[:2] == ["bar /tmp 0", "data"], (r.stdout, r.stderr)
    assert (tmp_path / "g").read_text() == "w\n"
    r = ctr.run("c-ro", "sh", "-c", "cat /v/f; touch /v/h",
                opts=("--mount", f"type=bind,src={tmp_path},dst=/v,options=rbind:ro"))
    assert r.stdout == "data\n" and r.returncode == 1 and "Read-only file system" in r.stderr
    assert not (tmp_path / "h").exists()


def test_task_exec(ctr):
    cid = "c-exec"
    r = ctr("run", "-d", "--runtime", "io.containerd.runc.v2", "--runc-binary", ctr.runtime,
            "--snapshotter", "native", IMAGE, cid, "sh", "-c", "echo x > /tmp/mark; exec sleep 1000")
    assert r.returncode == 0, r.stderr
    try:
        e = ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "sleep 0.2; cat /tmp/mark; ps -o pid,args; exit 5")
        assert e.returncode == 5, (e.stdout, e.stderr)
        lines = e.stdout.splitlines()
        assert lines[0] == "x" and any(l.split()[0] == "1" for l in lines[2:]), e.stdout
        ps = ctr("tasks", "ps", cid)
        assert ps.returncode == 0, ps.stderr
    finally:
        ctr("tasks", "kill", "-s", "KILL", cid)
        deadline = time.monotonic() + 20
        while ctr("tasks", "delete", cid).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        ctr("containers", "delete", cid)


def _both(ctr, cid, args, opts=()):
    """(returncode, stdout, stderr with the runtime's name as RT) of `ctr run`
    under runc and under sentry."""
    out = []
    for rt in (shutil.which("runc"), ctr.runtime):
        r = ctr("run", "--rm", "--runtime", "io.containerd.runc.v2", "--runc-binary", rt,
                "--snapshotter", "native", *opts, IMAGE, f"{cid}-{len(out)}", *args)
        out.append((r.returncode, r.stdout, re.sub(r"\S*(runc|sentry)\b", "RT", r.stderr)))
    return out


@pytest.mark.parametrize("opts,args", [
    ([], ["nosuch"]),
    ([], ["/etc/passwd"]),
    (["--user", "1000:1000"], ["sh", "-c", "id -u; id -g"]),
    (["--read-only"], ["sh", "-c", "touch /etc/x || echo refused"]),
    ([], ["sh", "-c", "ip -o link | cut -d: -f2; hostname"]),          # a network namespace of its own
    ([], ["sh", "-c", "grep -E ' /(proc|dev|dev/pts|dev/mqueue|dev/shm|sys) ' /proc/mounts | cut -d' ' -f1-3 | sort"]),
])
def test_run_as_under_runc(ctr, opts, args):
    """The same output and exit status as under runc: a missing or
    non-executable entrypoint, --user, --read-only, the container's own
    network, the mounts the spec names."""
    if shutil.which("runc") is None:
        skip_or_fail("containerd", "runc is missing (the reference): scripts/setup installs it")
    runc, sentry = _both(ctr, "c-diff", args, opts)
    assert sentry == runc, (sentry, runc)


ALLOCATE = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived"


def test_memory_limit_and_oom_events_as_under_runc(ctr):
    """ctr run --memory-limit: the limit is the container's cgroup's, which
    holds the whole sandbox; a guest that allocates past it is OOM-killed
    (137, as under runc), and containerd's shim, which watches the memory
    cgroup of the pid-file process, publishes /tasks/oom for it."""
    if shutil.which("runc") is None:
        skip_or_fail("containerd", "runc is missing (the reference): scripts/setup installs it")
    events = subprocess.Popen(["ctr", "-a", ctr.sock, "-n", ctr.ns, "events"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)         # subscribed
        outcome = _both(ctr, "c-oom", ["sh", "-c", ALLOCATE], ("--memory-limit", str(96 << 20)))
    finally:
        time.sleep(1)           # the shim publishes the OOM event by itself
        events.terminate()
        seen = events.communicate(timeout=TIMEOUT)[0]
    assert outcome[0][0] == 137 and outcome[1] == outcome[0], outcome
    ooms = re.findall(r"/tasks/oom .*\"container_id\":\"(c-oom-\d)\"", seen)
    assert "c-oom-0" in ooms and "c-oom-1" in ooms, seen


def test_tty_signals_pause_and_ps(ctr):
    """ctr run -t (a pty of the sandbox's own), and a detached task's
    signals (kill -s to a handler), pause/resume, ps, kill and delete."""
    cmd = (f"ctr -a {ctr.sock} -n {ctr.ns} run --rm -t --runtime io.containerd.runc.v2 --runc-binary {ctr.runtime} "
           f"--snapshotter native {IMAGE} c-tty sh -c '[ -t 0 ] && tty; exit 4'")
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=TIMEOUT)
    # (ctr's terminal echoes the NUL it writes first, as ^@, under runc too)
    assert r.returncode == 4 and r.stdout.replace("^@", "").split() == ["/dev/pts/0"], (r.stdout, r.stderr)
    cid = "c-sig"
    log = os.path.join(ctr.top, "c-sig.log")
    r = ctr("run", "-d", "--log-uri", f"file://{log}", "--runtime", "io.containerd.runc.v2", "--runc-binary",
            ctr.runtime, "--snapshotter", "native", IMAGE, cid, "sh", "-c",
            "trap 'echo got-usr1' USR1; echo up; while :; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    try:
        deadline = time.monotonic() + 20
        while "up" not in _read(log) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ctr("tasks", "kill", "-s", "USR1", cid).returncode == 0
        while "got-usr1" not in _read(log) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "got-usr1" in _read(log), _read(log)
        assert ctr("tasks", "pause", cid).returncode == 0
        assert "PAUSED" in ctr("tasks", "ls").stdout
        assert ctr("tasks", "resume", cid).returncode == 0
        assert "RUNNING" in ctr("tasks", "ls").stdout
        ps = ctr("tasks", "ps", cid)
        assert ps.returncode == 0 and len(ps.stdout.splitlines()) >= 2, ps
        assert ctr("tasks", "kill", "-s", "KILL", cid).returncode == 0
    finally:
        deadline = time.monotonic() + 20
        while ctr("tasks", "delete", cid).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        ctr("containers", "delete", cid)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""
