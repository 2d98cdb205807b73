"""`events`: runc's stats event for a sandbox (the Sentry, its helpers and
every guest: the members of the container's cgroup, else the Sentry and its
descendants).

Memory and CPU throttling are the cgroup's own figures, as runc reads them,
where the sandbox has a memory and a cpu cgroup (cgroup.py).  CPU time and
tasks are summed over the processes from /proc: CPU time of the live ones and
of the children they reaped (a guest's exit is reaped by the Sentry, so its
time stays counted), and their tasks -- the Sentry's own among them, which a
cgroup's pids.current would count too.  Without a memory cgroup, memory is
their resident memory (pages a forked helper shares with the Sentry are
counted in each)."""
import os

from sentry.oci import cgroup

TICK_NS = 10 ** 9 // os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid):
    """The fields of /proc/pid/stat after the command name; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def processes(cgroup_path, sentry_pid):
    members = cgroup.members(cgroup_path)
    return members if members else _descendants(sentry_pid)


def stats(cgroup_path, sentry_pid):
    """runc's `Stats` (types/events.go) with what /proc tells: cpu.usage
    (total, user, kernel: ns), memory.usage.usage (bytes), pids.current."""
    user = kernel = rss = tasks = 0
    for pid in processes(cgroup_path, sentry_pid):
        f = _stat(pid)
        if f is None or f[0] in ("Z", "X"):
            continue
        # fields from 3 (state) on: utime 14, stime 15, cutime 16, cstime 17,
        # num_threads 20, rss 24 (man 5 proc), here 12 places earlier
        user += int(f[11]) + int(f[13])
        kernel += int(f[12]) + int(f[14])
        tasks += int(f[17])
        rss += int(f[21]) * PAGE
    return {"cpu": {"usage": {"total": (user + kernel) * TICK_NS, "user": user * TICK_NS,
                              "kernel": kernel * TICK_NS},
                    "throttling": _throttling(cgroup_path)},
            "memory": {"usage": _memory(cgroup_path) or {"limit": 0, "usage": rss, "failcnt": 0}},
            "pids": {"current": tasks},
            "blkio": {}, "hugetlb": {}, "intel_rdt": {}, "network_interfaces": None}


def _values(d, name):
    """A cgroup file of "key value" lines as a dict of ints; {} if unread."""
    out = {}
    try:
        with open(os.path.join(d, name)) as f:
            for line in f:
                key, _, value = line.partition(" ")
                out[key] = int(value) if value.strip().isdigit() else value.strip()
    except (OSError, TypeError):
        pass
    return out


def _number(d, name):
    """A cgroup file of one number ("max": no limit, 0 as runc shows it)."""
    try:
        with open(os.path.join(d, name)) as f:
            text = f.read().strip()
        return 0 if text == "max" else int(text)
    except (OSError, TypeError, ValueError):
        return None


def _memory(path):
    """runc's memory.usage (usage, max, limit, failcnt) from the memory
    cgroup; None where the sandbox has none."""
    d = cgroup.dir_of(path, "memory")
    if d is None or not os.path.isdir(d):
        return None
    if cgroup.layout()[0] == "v1":
        names = ("memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt")
        usage, peak, limit, failcnt = (_number(d, n) for n in names)
    else:
        usage, peak, limit = (_number(d, n) for n in ("memory.current", "memory.peak", "memory.max"))
        failcnt = _values(d, "memory.events").get("max", 0)
    if usage is None:
        return None
    return {"usage": usage, "max": peak or 0, "limit": limit or 0, "failcnt": failcnt or 0}


def _throttling(path):
    """runc's cpu.throttling (periods, throttledPeriods, throttledTime in
    ns) from the cpu cgroup's cpu.stat; {} where there is none."""
    d = cgroup.dir_of(path, "cpu")
    st = _values(d, "cpu.stat") if d else {}
    if "nr_periods" not in st:
        return {}
    ns = st.get("throttled_time", st.get("throttled_usec", 0) * 1000)
    return {"periods": st["nr_periods"], "throttledPeriods": st.get("nr_throttled", 0), "throttledTime": ns}
