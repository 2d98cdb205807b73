"""Peak memory of a runner's whole process tree (tracer + guests).

ru_maxrss only gives the largest single process, which hides a tracer
that is smaller than its guest.  Here the tree is sampled from /proc while
it runs and its PSS summed: PSS splits shared pages (libc, libpython)
between the processes mapping them, so the sum is not inflated the way an
RSS sum would be.  Sampling costs CPU, so it runs in its own untimed pass.
"""

import os
from collections import defaultdict


def _children_map():
    # No /proc/PID/task/TID/children on kernels without CONFIG_PROC_CHILDREN,
    # so build the tree from every process's ppid.
    kids = defaultdict(list)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        kids[ppid].append(int(name))
    return kids


def _pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0  # exited, zombie or kernel thread


def tree_pss_kb(root, include_root=False):
    kids = _children_map()
    todo = [root] if include_root else list(kids.get(root, []))
    total = 0
    while todo:
        pid = todo.pop()
        total += _pss_kb(pid)
        todo.extend(kids.get(pid, []))
    return total


class PeakSampler:
    """Callable for measure.run(poll=...): keeps the largest tree PSS seen.

    The root passed in is the launcher, which is not part of the runner.
    """

    def __init__(self):
        self.peak_kb = 0

    def __call__(self, launcher_pid):
        self.peak_kb = max(self.peak_kb, tree_pss_kb(launcher_pid))
