"""The container's cgroup: one path (the spec's cgroupsPath, or /sentry/ID)
in each hierarchy sentry uses, holding the whole sandbox -- the Sentry, its
helpers and every guest.  create joins it first thing, so all it forks is
inside.  cgroup v1: that path under each controller's own mount (freezer,
memory, cpu, cpuacct, pids, blkio, cpuset, hugetlb: what pause, the limits
and the figures of `events` use); cgroup v2: under the unified hierarchy,
its controllers enabled down the path as runc enables them."""
import os
import select
import time

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("freezer", "memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "hugetlb")
V2_CONTROLLERS = ("memory", "cpu", "pids", "io", "cpuset", "hugetlb")


def path_for(cgroups_path, cid):
    """The spec's cgroupsPath when it is a path (podman's cgroupfs manager
    gives /libpod_parent/libpod-ID); a systemd slice:prefix:name or none
    gives one of sentry's own."""
    if cgroups_path and cgroups_path.startswith("/"):
        return os.path.normpath(cgroups_path)
    return f"/sentry/{cid}"


_layout = None


def layout():
    """("v1", {controller: its mount}) where cgroup v1's freezer is mounted
    (a hybrid host's unified hierarchy holds none of these controllers),
    ("v2", {"": ROOT}) on a unified host, (None, {}) where there is none."""
    global _layout
    if _layout is None:
        if os.path.isfile(os.path.join(ROOT, "freezer", "cgroup.procs")):
            mounts = {}
            for name in V1_CONTROLLERS:
                d = os.path.join(ROOT, name)
                if os.path.isfile(os.path.join(d, "cgroup.procs")):
                    mounts[name] = d
            _layout = ("v1", mounts)
        elif os.path.isfile(os.path.join(ROOT, "cgroup.controllers")):
            _layout = ("v2", {"": ROOT})
        else:
            _layout = (None, {})
    return _layout


def dir_of(path, controller):
    """The host directory of cgroup `path` that holds `controller`'s files
    (v2: the one directory); None where that controller is not mounted."""
    kind, mounts = layout()
    if not path or kind is None:
        return None
    top = mounts.get(controller if kind == "v1" else "")
    return os.path.join(top, path.lstrip("/")) if top else None


def dirs(path):
    """Each distinct host directory of cgroup `path` (co-mounted v1
    controllers share one)."""
    _, mounts = layout()
    seen, out = set(), []
    for top in mounts.values():
        d = os.path.join(top, path.lstrip("/"))
        real = os.path.realpath(top)
        if real not in seen:
            seen.add(real)
            out.append(d)
    return out


def join(path):
    """Move the calling process into the cgroup (made if missing) in every
    hierarchy; where one cannot be had (not root, no delegation), nothing:
    pause says why, and create warns of limits it could not apply.  Only the
    first write waits for cgroup v1's RCU grace period: the others follow
    within it."""
    kind, mounts = layout()
    if kind == "v2":
        _enable_controllers(path)
    elif "cpuset" in mounts:
        _make_cpuset(mounts["cpuset"], path)
    for d in dirs(path):
        try:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write("0")
        except OSError:
            pass


def _make_cpuset(top, path):
    """cgroup v1's cpuset: a new cgroup has no CPUs and no memory nodes, and
    nothing can join it so; each one made down the path takes its parent's,
    as runc fills them (the limits narrow them after)."""
    d = top
    for part in [p for p in path.strip("/").split("/") if p]:
        parent, d = d, os.path.join(d, part)
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        except OSError:
            return
        for name in ("cpuset.cpus", "cpuset.mems"):
            try:
                with open(os.path.join(d, name)) as f:
                    if f.read().strip():
                        continue
                with open(os.path.join(parent, name)) as f:
                    value = f.read().strip()
                with open(os.path.join(d, name), "w") as f:
                    f.write(value)
            except OSError:
                return


def _enable_controllers(path):
    """cgroup v2: a controller's files exist in a cgroup only when its
    parent's cgroup.subtree_control enables it; enabled from the root down
    (each available one of V2_CONTROLLERS), as runc does."""
    parts = [p for p in path.strip("/").split("/") if p]
    d = layout()[1][""]
    for part in parts:
        try:
            with open(os.path.join(d, "cgroup.controllers")) as f:
                have = set(f.read().split())
            want = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in have)
            if want:
                with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                    f.write(want)
        except OSError:
            pass
        d = os.path.join(d, part)
        try:
            os.mkdir(d)
        except OSError:
            pass


class EarlyJoin:
    """join(path) by a thread of the calling process (create) while its main
    thread goes on importing the sandbox's modules: cgroup v1's migration
    waits for an RCU grace period (6 to 14 ms here), which blocks only the
    writer, not a thread that neither forks nor exits.  wait() before the
    first fork, so that everything forked after is inside; leave() on a
    failure: back to the cgroups it came from, and the cgroup removed if
    this join made it."""

    def __init__(self, path):
        import _thread
        self.path = path
        self.made = False
        self.origin = own()
        self.done = _thread.allocate_lock()
        self.done.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self):
        try:
            d = (dirs(self.path) or [None])[0]
            self.made = d is not None and not os.path.isdir(d)
            join(self.path)
        finally:
            self.done.release()

    def wait(self):
        self.done.acquire()
        self.done.release()

    def leave(self):
        self.wait()
        if self.origin is None:
            return                      # left already
        for name, top in layout()[1].items():
            back = self.origin.get(name if layout()[0] == "v1" else "")
            if back is None:
                continue
            try:
                with open(os.path.join(top, back.lstrip("/"), "cgroup.procs"), "w") as f:
                    f.write("0")
            except OSError:
                pass
        self.origin = None
        if self.made:
            remove(self.path, patience=0)


def own():
    """The calling process's cgroups, from /proc/self/cgroup: {v1
    controller: path}, and "" for v2's."""
    out = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    out[name] = path
    except (OSError, ValueError):
        pass
    return out


def members(path):
    """The pids in the cgroup (the Sentry, its helpers, the guests); None
    where there is none to read."""
    d = (dirs(path) or [None])[0] if path else None
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, TypeError, ValueError):
        return None


def remove(path, patience=2.0):
    """rmdir the cgroup in every hierarchy once it is empty: the Sentry's
    helpers (the janitor removing its directories, the mount helper) leave
    it just after the Sentry, and are waited for by their pidfds, so the
    rmdir follows the last one's exit at once."""
    if not path:
        return
    deadline = time.monotonic() + patience
    for d in dirs(path):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                left = deadline - time.monotonic()
                if left <= 0:
                    break           # still busy: left for the host to collect
                _wait_for_members(d, min(left, 0.1))


def _wait_for_members(d, timeout):
    """Until one of cgroup directory d's processes exits (or timeout):
    each by a pidfd, readable once it has exited; a short sleep where
    there is none to wait on (the last one's exit not yet seen by rmdir)."""
    fds = []
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    fds.append(os.pidfd_open(int(pid)))
                except (OSError, ValueError):
                    pass
        if fds:
            select.select(fds, [], [], timeout)
        else:
            time.sleep(min(timeout, 0.002))
    except OSError:
        time.sleep(min(timeout, 0.002))
    finally:
        for fd in fds:
            os.close(fd)
