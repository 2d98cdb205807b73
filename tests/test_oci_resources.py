"""linux.resources as sentry/oci/resources.py writes them: the files and
values of cgroup v2 (these machines run podman and containerd on cgroup v1,
where tests/test_podman.py compares the figures with runc's), written into a
directory laid out as a v2 cgroup, and the checks runc makes of the values."""
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


@pytest.mark.parametrize("res,text", [
    ({"memory": {"limit": 64 << 20, "swap": 32 << 20}}, "memory+swap limit should be >= memory limit"),
    ({"memory": {"swap": 32 << 20}}, "unable to set swap limit without memory limit"),
    ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit '64m': a number"),
    ({"cpu": {"shares": -2}}, "linux.resources.cpu.shares -2: a number of at least 0"),
    ({"memory": {"swappiness": 101}}, "swappiness 101: 0 to 100"),
    ({"cpu": []}, "linux.resources.cpu: an object"),
    ({"blockIO": {"weight": 100}}, "blockIO.weight: this kernel's I/O scheduler has no weight"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}}, "major, minor and rate, numbers"),
])
def test_values_runc_refuses_are_refused(v2, res, text):
    with pytest.raises(resources.ResourceError, match=text.replace("+", r"\+")):
        resources.apply("/sentry/c1", res)
    assert files(v2) == {}


def test_what_is_not_applied_is_named():
    res = {"memory": {"limit": 1, "kernel": 5}, "cpu": {"cpus": "0", "shares": 2}, "blockIO": {"weight": 10},
           "pids": {"limit": 3}, "devices": [{"allow": False}], "hugepageLimits": [{"limit": 1}]}
    assert resources.not_applied(res) == ["cpu.cpus", "hugepageLimits", "memory.kernel"]


def test_update_merges_field_by_field():
    old = {"memory": {"limit": 1 << 30, "swap": 2 << 30}, "cpu": {"shares": 512}}
    assert resources.merge(old, {"memory": {"limit": 1 << 29}}) == {
        "memory": {"limit": 1 << 29, "swap": 2 << 30}, "cpu": {"shares": 512}}
    assert old["memory"]["limit"] == 1 << 30          # the record it came from is untouched
