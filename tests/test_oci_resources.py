"""linux.resources as sentry/oci/resources.py writes them: the files and
values of cgroup v2 (these machines run podman and containerd on cgroup v1,
where tests/test_podman.py compares the figures with runc's), written into a
directory laid out as a v2 cgroup, and the checks runc makes of the values;
and hugepageLimits on this host's own cgroups beside runc."""
import pytest

from sentry.oci import cgroup, resources


@pytest.fixture
def v2(tmp_path, monkeypatch):
    d = tmp_path / "sentry" / "c1"
    d.mkdir(parents=True)
    monkeypatch.setattr(cgroup, "_layout", ("v2", {"": str(tmp_path)}))
    return d


def files(d):
    return {p.name: p.read_text() for p in d.iterdir()}


@pytest.mark.parametrize("res,want", [
    # podman --memory 64m (swap twice the limit): v2's swap.max is the swap alone
    ({"memory": {"limit": 64 << 20, "swap": 128 << 20}}, {"memory.max": str(64 << 20), "memory.swap.max": str(64 << 20)}),
    ({"memory": {"limit": -1}}, {"memory.max": "max", "memory.swap.max": "max"}),
    ({"memory": {"limit": 64 << 20, "swap": -1, "reservation": 32 << 20}},
     {"memory.max": str(64 << 20), "memory.swap.max": "max", "memory.low": str(32 << 20)}),
    # --cpus 1.5, --cpu-shares 512 (runc's mapping to cpu.weight)
    ({"cpu": {"quota": 150000, "period": 100000, "shares": 512}}, {"cpu.max": "150000 100000", "cpu.weight": "20"}),
    ({"cpu": {"quota": -1, "period": 100000, "shares": 2}}, {"cpu.max": "max 100000", "cpu.weight": "1"}),
    ({"cpu": {"shares": 262144}}, {"cpu.weight": "10000"}),
    # --device-read-bps /dev/vda:1mb, --device-write-iops /dev/vda:100
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1 << 20}],
                  "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]}},
     {"io.max": "254:0 wiops=100"}),
])
def test_cgroup_v2_files(v2, res, want):
    resources.apply("/sentry/c1", res)
    assert files(v2) == want


@pytest.mark.parametrize("res,have,want", [
    # --cpuset-cpus 1 --cpuset-mems 0
    ({"cpu": {"cpus": "1", "mems": "0"}}, [], {"cpuset.cpus": "1", "cpuset.mems": "0"}),
    # --blkio-weight 300 --blkio-weight-device /dev/vda:200: io.weight scaled as runc scales it, BFQ's not
    ({"blockIO": {"weight": 300, "weightDevice": [{"major": 254, "minor": 0, "weight": 200}]}}, ["io.weight"],
     {"io.weight": "254:0 1920"}),
    ({"blockIO": {"weightDevice": [{"major": 254, "minor": 0, "weight": 200}]}}, ["io.bfq.weight", "io.weight"],
     {"io.bfq.weight": "254:0 200", "io.weight": ""}),
    # each size's limit, and its reservations' where the kernel has them
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]}, ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"],
     {"hugetlb.2MB.max": str(4 << 21), "hugetlb.2MB.rsvd.max": str(4 << 21)}),
    # v2's own files by name, after the fields (they win, as with runc)
    ({"memory": {"limit": 1 << 20}, "unified": {"memory.max": "2097152", "memory.high": "max"}}, ["memory.high"],
     {"memory.max": "2097152", "memory.high": "max"}),
])
def test_cgroup_v2_files_of_existing_ones(v2, monkeypatch, res, have, want):
    """Files a v2 cgroup has only where its controller (or I/O scheduler)
    offers them: made empty first, as the kernel would show them."""
    monkeypatch.setattr(resources, "page_sizes", lambda: ["1GB", "2MB"])
    for name in have:
        (v2 / name).write_text("")
    resources.apply("/sentry/c1", res)
    assert files(v2) == want


@pytest.mark.parametrize("res,text", [
    ({"memory": {"limit": 64 << 20, "swap": 32 << 20}}, "memory+swap limit should be >= memory limit"),
    ({"memory": {"swap": 32 << 20}}, "unable to set swap limit without memory limit"),
    ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit '64m': a number"),
    ({"cpu": {"shares": -2}}, "linux.resources.cpu.shares -2: a number of at least 0"),
    ({"memory": {"swappiness": 101}}, "swappiness 101: 0 to 100"),
    ({"cpu": []}, "linux.resources.cpu: an object"),
    ({"blockIO": {"weight": 100}}, "blockIO.weight: this kernel's I/O scheduler has no weight"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}}, "major and minor and rate, numbers"),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": -1}]}}, "major and minor and weight and"),
    ({"cpu": {"cpus": "0;1"}}, "cpu.cpus '0;1': a list of numbers and ranges"),
    ({"cpu": {"realtimeRuntime": 950000}}, "cgroup v2 has no real-time CPU limits"),
    # a size names a file: nothing but the kernel's own sizes reaches the path
    ({"hugepageLimits": [{"pageSize": "../../../memory.max", "limit": 1}]}, "invalid hugepage size: ../../../memory"),
    ({"hugepageLimits": [{"pageSize": "4MB", "limit": 1}]}, "invalid hugepage size: 4MB"),
    ({"unified": {"../memory.max": "1"}}, "'../memory.max': a cgroup v2 file name"),
    ({"unified": {"memory.max": 5}}, "'memory.max': a cgroup v2 file name"),
    ({"unified": {"..": "1"}}, "'..': a cgroup v2 file name"),
    ({"unified": {"cgroup.procs": "1"}}, "'cgroup.procs': the cgroup's membership and state are sentry's"),
    ({"unified": {"cgroup.kill": "1"}}, "'cgroup.kill': the cgroup's membership and state are sentry's"),
    # only a file the cgroup has: never one made
    ({"unified": {"memory.nosuch": "1"}}, "memory.nosuch: no such file in the container's cgroup"),
])
def test_values_runc_refuses_are_refused(v2, monkeypatch, res, text):
    monkeypatch.setattr(resources, "page_sizes", lambda: ["1GB", "2MB"])
    with pytest.raises(resources.ResourceError, match=text.replace("+", r"\+")):
        resources.apply("/sentry/c1", res)
    assert files(v2) == {}


def test_what_is_not_applied_is_named():
    res = {"memory": {"limit": 1, "kernel": 5}, "cpu": {"cpus": "0", "shares": 2}, "blockIO": {"weight": 10},
           "pids": {"limit": 3}, "devices": [{"allow": False}], "hugepageLimits": [{"limit": 1}],
           "unified": {"memory.high": "1"}, "rdma": {"mlx": {}}, "network": {"classID": 1}}
    assert resources.not_applied(res) == ["memory.kernel", "network", "rdma"]


def test_unified_on_cgroup_v1_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroup, "_layout", ("v1", {"memory": str(tmp_path)}))
    with pytest.raises(resources.ResourceError, match="cgroup v2 files, and this host's cgroups are v1"):
        resources.apply("/sentry/c1", {"unified": {"memory.high": "1"}})


def test_update_merges_field_by_field():
    old = {"memory": {"limit": 1 << 30, "swap": 2 << 30}, "cpu": {"shares": 512}}
    assert resources.merge(old, {"memory": {"limit": 1 << 29}}) == {
        "memory": {"limit": 1 << 29, "swap": 2 << 30}, "cpu": {"shares": 512}}
    assert old["memory"]["limit"] == 1 << 30          # the record it came from is untouched


def test_hugepage_limits_as_under_runc(tmp_path, busybox_root):
    """linux.resources.hugepageLimits on this host's cgroups: where cgroup
    v1 mounts hugetlb, the limit is written as runc writes it; where it
    does not (these machines: hugetlb is the v2 hierarchy's), create fails
    in one line, as runc's does -- never a container without its limit."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    runc = shutil.which("runc")
    if runc is None:
        pytest.fail("runc is missing (the reference): scripts/setup installs it")
    rootfs = str(tmp_path / "rootfs")
    subprocess.run(["cp", "-a", busybox_root, rootfs], check=True)
    size = resources.page_sizes()[0]
    path = f"/sentry-huge-{os.getpid()}"
    spec = {"ociVersion": "1.0.2",
            "process": {"args": ["sh", "-c", f"cat /sys/fs/cgroup/hugetlb/hugetlb.{size}.limit_in_bytes 2>/dev/null; "
                                 "echo ran"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "root": {"path": rootfs, "readonly": True},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "cgroupsPath": path,
                      "resources": {"hugepageLimits": [{"pageSize": size, "limit": 16 << 21}]}}}
    (tmp_path / "config.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    seen = {}
    for name, argv in (("runc", [runc, "--root", str(tmp_path / "runc-state")]),
                       ("sentry", [sys.executable, "-m", "sentry", "--root", str(tmp_path / "state")])):
        r = subprocess.run(argv + ["run", "--bundle", str(tmp_path), f"huge-{name}"], capture_output=True, text=True,
                           env=env, timeout=60, stdin=subprocess.DEVNULL, cwd=str(tmp_path))
        seen[name] = (r.returncode, r.stderr)
        for d in cgroup.dirs(path):
            try:
                os.rmdir(d)
            except OSError:
                pass
    if os.path.isdir("/sys/fs/cgroup/hugetlb"):
        assert seen["runc"][0] == seen["sentry"][0] == 0, seen
    else:
        assert seen["runc"][0] != 0 and "hugetlb" in seen["runc"][1], seen
        code, err = seen["sentry"]
        assert code == 1 and f"hugetlb.{size}.limit_in_bytes: the controller is not mounted" in err, seen
        assert err.count("\n") == 1, err
