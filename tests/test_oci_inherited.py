"""What config.json sets for the whole container beyond its files and
limits: the UTS domain name, a time namespace with linux.timeOffsets
(entered by the init and by each process `exec` adds), and what the
container process sets on itself for the whole sandbox to inherit
(sentry/oci/inherited.py): ioPriority, scheduler, personality.  runc 1.1
(these machines') ignores all but the domain name and refuses a time
namespace, so the reference is what the spec asks, read back inside with
the calls and files Linux gives for it; and what sentry cannot give is
refused at create in one line."""
import json

import pytest

from test_oci import _started, oci, read_when  # noqa: F401 (oci: the fixture)

INSIDE = ("cat /proc/sys/kernel/domainname; uname -m; cat /proc/1/personality; "
          "ionice -p 1; ionice; cut -d' ' -f19,41 /proc/1/stat /proc/self/stat")


def _bundle(oci, args, process=None, linux=None, **top):
    b = oci.bundle(args, **top)
    with open(f"{b}/config.json") as f:
        spec = json.load(f)
    spec["process"].update(process or {})
    spec["linux"].update(linux or {})
    with open(f"{b}/config.json", "w") as f:
        json.dump(spec, f)
    return b


def test_domainname_personality_io_priority_and_scheduler(oci):
    """Each as the spec asks it, for init and for its children: the domain
    name in /proc/sys (uname's from the same UTS state), LINUX32's i686 machine and its persona,
    the idle I/O class, SCHED_BATCH (policy 3) and nice 5."""
    b = _bundle(oci, ["sh", "-c", INSIDE], domainname="example.org",
                process={"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},
                         "scheduler": {"policy": "SCHED_BATCH", "nice": 5}},
                linux={"personality": {"domain": "LINUX32"}})
    r = oci.cmd("run", "--bundle", b, "attrs")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["example.org", "i686", "00000008", "idle", "idle",
                                     "5 3", "5 3"], r.stdout


def test_the_domainname_sysctl_is_the_uts_namespaces(oci):
    b = _bundle(oci, ["sh", "-c", "cat /proc/sys/kernel/domainname; uname -m"], linux={"sysctl": {"kernel.domainname": "sysctl.org"}})
    r = oci.cmd("run", "--bundle", b, "dn")
    assert (r.returncode, r.stdout) == (0, "sysctl.org\nx86_64\n"), r.stderr


def test_time_namespace_offsets_for_init_and_exec(oci):
    """linux.timeOffsets: the init's boottime (/proc/uptime) and the
    offsets file read them, and so does a process `exec` adds, which
    joins the container's namespace as runc's exec does; the namespace is
    frozen (a write is EACCES) as once a process entered it."""
    with open("/proc/uptime") as f:
        host_before = float(f.read().split()[0])
    r = _started(oci, "tns", ["sh", "-c", "cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets; "
                              "exec sleep 100"],
                 linux={"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "time"}],
                        "timeOffsets": {"monotonic": {"secs": 86400, "nanosecs": 0},
                                        "boottime": {"secs": 1000000, "nanosecs": 500}}})
    try:
        out = read_when(r.out, lambda t: t.count("\n") >= 3).splitlines()
        assert out[1:] == ["monotonic       86400         0", "boottime      1000000       500"], out
        assert 1000000 + host_before <= float(out[0]) < 1000000 + host_before + 60, (out, host_before)
        e = oci.cmd("exec", "tns", "sh", "-c", "cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets; "
                    "echo 'monotonic 1 0' > /proc/self/timens_offsets")
        lines = e.stdout.splitlines()
        assert 1000000 + host_before <= float(lines[0]) < 1000000 + host_before + 60, lines
        assert lines[1:] == out[1:] and "Permission denied" in e.stderr and e.returncode == 1, (e.stdout, e.stderr)
    finally:
        oci.cmd("delete", "--force", "tns")


@pytest.mark.parametrize("process,linux,text", [
    ({"scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 2000000, "period": 2000000}}, {},
     "SCHED_DEADLINE: not supported by sentry"),
    ({"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}, {},
     "process.scheduler.flags ['SCHED_FLAG_RESET_ON_FORK']: not supported by sentry"),
    ({"scheduler": {"policy": "SCHED_FIFO", "priority": 0}}, {}, "priority for SCHED_FIFO 0: between 1 and 99"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_NONE"}}, {}, "process.ioPriority"),
    ({}, {"personality": {"domain": "LINUX", "flags": ["UNAME26"]}}, "linux.personality.flags"),
    ({}, {"timeOffsets": {"monotonic": {"secs": 5}}}, "linux.timeOffsets: no time namespace"),
    ({}, {"namespaces": [{"type": "time", "path": "/proc/1/ns/time"}]},
     "sentry joins none of the host's"),
    ({}, {"namespaces": [{"type": "time"}], "timeOffsets": {"boottime": {"secs": 1, "nanosecs": 10 ** 9}}},
     "linux.timeOffsets: Invalid argument"),
])
def test_what_sentry_cannot_give_is_refused_at_create(oci, process, linux, text):
    r = oci.create("no", _bundle(oci, ["true"], process=process, linux=linux))
    err = open(r.err).read()
    assert r.returncode == 1 and text in err and err.count("\n") == 1, err
    assert oci.cmd("state", "no").returncode == 1
