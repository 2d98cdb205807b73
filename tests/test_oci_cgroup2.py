"""The container's cgroup on a real cgroup v2 hierarchy: these machines run
podman and containerd on cgroup v1 (tests/test_podman.py compares the
figures with runc's there), with a v2 hierarchy beside it that holds only
the controllers v1 leaves (here hugetlb).  sentry's OCI commands run with
that hierarchy as their cgroup file system (the mount found, or one made
under /var/tmp): create joins it, enabling controllers down the path, the
limits v2 names are written (hugetlb's, `unified` files), pause and resume
freeze and thaw it as cgroup.events reports, and delete removes it."""
import json
import os
import subprocess
import sys

import pytest

from conftest import skip_or_fail
from test_oci import ENV, TIMEOUT, Oci, read_when

MIB = 1 << 20


def _cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    return None


@pytest.fixture(scope="module")
def v2root():
    """A cgroup v2 hierarchy's root directory, with hugetlb enabled for its
    children for the test's length (as it was after)."""
    made = None
    top = _cgroup2_mount()
    if top is None:
        made = top = f"/var/tmp/sentry-cgroup2-{os.getpid()}"
        os.makedirs(made, exist_ok=True)
        if subprocess.run(["mount", "-t", "cgroup2", "none", made]).returncode != 0:
            os.rmdir(made)
            skip_or_fail("cgroup2", "no cgroup v2 hierarchy here, and none could be mounted (not root?)")
    with open(os.path.join(top, "cgroup.controllers")) as f:
        have = f.read().split()
    with open(os.path.join(top, "cgroup.subtree_control")) as f:
        enabled = f.read().split()
    if "hugetlb" not in have:
        skip_or_fail("cgroup2", f"the cgroup v2 hierarchy at {top} offers no hugetlb controller ({have})")
    yield top
    if "hugetlb" not in enabled:
        with open(os.path.join(top, "cgroup.subtree_control"), "w") as f:
            try:
                f.write("-hugetlb")
            except OSError:
                pass                        # another cgroup still uses it
    if made:
        subprocess.run(["umount", made])
        os.rmdir(made)


class OciOnV2(Oci):
    """sentry's OCI commands with cgroup v2 at `top` as their cgroup file
    system (what cgroup.layout() finds on a unified host)."""

    def __init__(self, tmp_path, rootfs, top):
        super().__init__(tmp_path, rootfs)
        self.prefix = [sys.executable, "-c",
                       "import runpy, sys; from sentry.oci import cgroup; "
                       f"cgroup._layout = ('v2', {{'': {top!r}}}); sys.argv[0] = 'sentry'; "
                       "runpy.run_module('sentry', run_name='__main__')"]

    def cmd(self, *args, glob=(), **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("timeout", TIMEOUT)
        return subprocess.run([*self.prefix, "--root", self.root, *glob, *args], env=ENV, text=True, **kw)

    def create(self, cid, bundle):
        out = str(self.tmp / f"{cid}.out")
        with open(out, "w") as o, open(out + ".err", "w") as e:
            r = subprocess.run([*self.prefix, "--root", self.root, "create", "--bundle", bundle, cid],
                               stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=ENV, timeout=TIMEOUT)
        r.out, r.err = out, out + ".err"
        return r


def _read(path):
    with open(path) as f:
        return f.read().strip()


def test_lifecycle_in_a_cgroup_v2_hierarchy(tmp_path, busybox_root, v2root):
    rootfs = str(tmp_path / "rootfs")
    subprocess.run(["cp", "-a", busybox_root, rootfs], check=True)
    oci = OciOnV2(tmp_path, rootfs, v2root)
    path = f"/sentry-v2-test-{os.getpid()}/c1"
    d = v2root + path
    share = tmp_path / "share"
    share.mkdir()
    (share / "tick").write_text("")
    b = oci.bundle(["sh", "-c", "while :; do date +%s%N > /share/tick; sleep 0.05; done"],
                   mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                           {"destination": "/share", "type": "bind", "source": str(share), "options": ["rbind"]}],
                   linux={"namespaces": [{"type": "pid"}, {"type": "mount"}], "cgroupsPath": path,
                          "resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * 2 * MIB}],
                                        "unified": {"cgroup.max.descendants": "7"}}})
    try:
        r = oci.create("v2c", b)
        assert r.returncode == 0, open(r.err).read()
        pid = oci.state("v2c")["pid"]
        # the whole sandbox is in it: the stand-in, and so the Sentry and its guests
        assert f"0::{path}\n" in open(f"/proc/{pid}/cgroup").read()
        assert _read(f"{d}/hugetlb.2MB.max") == str(8 * MIB)
        if os.path.exists(f"{d}/hugetlb.2MB.rsvd.max"):
            assert _read(f"{d}/hugetlb.2MB.rsvd.max") == str(8 * MIB)
        assert _read(f"{d}/cgroup.max.descendants") == "7"
        assert oci.cmd("start", "v2c").returncode == 0
        read_when(str(share / "tick"), bool)
        assert oci.cmd("pause", "v2c").returncode == 0
        assert "frozen 1" in _read(f"{d}/cgroup.events") and oci.state("v2c")["status"] == "paused"
        frozen_at = _read(share / "tick")
        assert read_when(str(share / "tick"), lambda t: t.strip() != frozen_at, timeout=0.5).strip() == frozen_at
        assert oci.cmd("resume", "v2c").returncode == 0
        assert "frozen 0" in _read(f"{d}/cgroup.events") and oci.state("v2c")["status"] == "running"
        assert read_when(str(share / "tick"), lambda t: t.strip() != frozen_at).strip() != frozen_at
        # update: the merged limits written again
        u = oci.cmd("update", "--resources", "-", "v2c", input=json.dumps(
            {"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * 2 * MIB}]}))
        assert u.returncode == 0 and _read(f"{d}/hugetlb.2MB.max") == str(4 * MIB), u.stderr
        assert oci.cmd("kill", "v2c", "KILL").returncode == 0
    finally:
        oci.cmd("delete", "--force", "v2c")
        gone = not os.path.exists(d)
        _rmdir(os.path.dirname(d))
    assert gone


def test_a_limit_of_a_controller_the_hierarchy_lacks_fails_create(tmp_path, busybox_root, v2root):
    """memory is v1's on these machines: a v2 memory limit cannot be had,
    and create fails in one line (runc: the same), leaving nothing."""
    with open(os.path.join(v2root, "cgroup.controllers")) as f:
        if "memory" in f.read().split():
            pytest.skip("this v2 hierarchy has the memory controller: nothing lacks")
    oci = OciOnV2(tmp_path, busybox_root, v2root)
    path = f"/sentry-v2-test-{os.getpid()}/c2"
    b = oci.bundle(["true"], linux={"namespaces": [{"type": "pid"}], "cgroupsPath": path,
                                    "resources": {"unified": {"memory.max": str(64 * MIB)}}})
    r = oci.create("v2m", b)
    err = open(r.err).read()
    assert r.returncode == 1 and "memory.max: no such file in the container's cgroup" in err, err
    assert err.count("\n") == 1, err
    assert oci.cmd("state", "v2m").returncode == 1
    gone = not os.path.exists(v2root + path)
    _rmdir(os.path.dirname(v2root + path))
    assert gone


def _rmdir(d):
    """The test's own parent cgroup, once its container's is gone."""
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
