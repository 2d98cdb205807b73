"""`events`: runc's stats event for a sandbox, from /proc figures of its
processes (the Sentry, its helpers and every guest: the members of the
cgroup the Sentry joined at create, else the Sentry and its descendants).

runc reads its cgroup's controllers; the Sentry joins a freezer cgroup only,
so the figures are summed over the processes instead: CPU time of the live
ones and of the children they reaped (a guest's exit is reaped by the
Sentry, so its time stays counted), their resident memory (pages a forked
helper shares with the Sentry are counted in each) and their tasks."""
import os

from sentry.oci import freezer

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


def processes(cgroup, sentry_pid):
    members = freezer.members(cgroup)
    return members if members else _descendants(sentry_pid)


def stats(cgroup, sentry_pid):
    """runc's `Stats` (types/events.go) with what /proc tells: cpu.usage
    (total, user, kernel: ns), memory.usage.usage (bytes), pids.current."""
    user = kernel = rss = tasks = 0
    for pid in processes(cgroup, sentry_pid):
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
                    "throttling": {}},
            "memory": {"usage": {"limit": 0, "usage": rss, "failcnt": 0}},
            "pids": {"current": tasks},
            "blkio": {}, "hugetlb": {}, "intel_rdt": {}, "network_interfaces": None}
