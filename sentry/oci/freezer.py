"""pause/resume: the whole sandbox (the Sentry, its helpers and every
guest) in one freezer cgroup, frozen and thawed at once.  The container
process joins it first thing, so all it forks is inside.  cgroup v1's
freezer controller where it is mounted, else cgroup v2's cgroup.freeze."""
import os
import time

V1 = "/sys/fs/cgroup/freezer"
V2 = "/sys/fs/cgroup"


class FreezerError(Exception):
    pass


def path_for(cgroups_path, cid):
    """The spec's cgroupsPath when it is a path (podman's cgroupfs manager
    gives /libpod_parent/libpod-ID); a systemd slice:prefix:name or none
    gives one of sentry's own."""
    if cgroups_path and cgroups_path.startswith("/"):
        return os.path.normpath(cgroups_path)
    return f"/sentry/{cid}"


def _dir(path):
    if os.path.isfile(os.path.join(V1, "freezer.state")) or os.path.isdir(V1) and os.path.ismount(V1):
        return os.path.join(V1, path.lstrip("/")), "v1"
    if os.path.isfile(os.path.join(V2, "cgroup.controllers")):
        return os.path.join(V2, path.lstrip("/")), "v2"
    return None, None


def join(path):
    """Move the calling process into the cgroup (made if missing); where no
    freezer can be had (not root), nothing: pause then says why."""
    d, _ = _dir(path)
    if d is None:
        return
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write("0")
    except OSError:
        pass


class EarlyJoin:
    """join(path) by a thread of the calling process (create) while its main
    thread goes on importing the sandbox's modules: cgroup v1's migration
    waits for an RCU grace period (6 to 14 ms here), which blocks only the
    writer, not a thread that neither forks nor exits.  wait() before the
    first fork, so that everything forked after is inside; leave() on a
    failure: back to the cgroup it came from, and the cgroup removed if
    this join made it."""

    def __init__(self, path):
        import _thread
        self.path = path
        self.made = False
        self.origin = _own_cgroup()
        self.done = _thread.allocate_lock()
        self.done.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self):
        try:
            d, _ = _dir(self.path)
            self.made = d is not None and not os.path.isdir(d)
            join(self.path)
        finally:
            self.done.release()

    def wait(self):
        self.done.acquire()
        self.done.release()

    def leave(self):
        self.wait()
        if self.origin is False:
            return                      # left already
        d, _ = _dir("/")
        if d is None:
            return
        try:
            with open(os.path.join(d, (self.origin or "/").lstrip("/"), "cgroup.procs"), "w") as f:
                f.write("0")
        except OSError:
            pass
        self.origin = False
        if self.made:
            remove(self.path, patience=0)


def _own_cgroup():
    """The calling process's cgroup in the freezer's hierarchy (v1's freezer
    line, else v2's), from /proc/self/cgroup; None if it says none."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    v1 = os.path.isdir(V1) and os.path.ismount(V1)
    for _, controllers, path in lines:
        if (v1 and "freezer" in controllers.split(",")) or (not v1 and controllers == ""):
            return path
    return None


def members(path):
    """The pids in the cgroup (the Sentry, its helpers, the guests); None
    where there is none to read."""
    d, _ = _dir(path) if path else (None, None)
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, TypeError, ValueError):
        return None


def _set(path, frozen):
    d, kind = _dir(path) if path else (None, None)
    if d is None or not os.path.isdir(d):
        raise FreezerError("pause: no freezer cgroup for this container (needs cgroup v1's freezer or cgroup v2, as root)")
    try:
        if kind == "v1":
            want = "FROZEN" if frozen else "THAWED"
            deadline = time.monotonic() + 5
            while True:
                # written again at every turn: a guest task that entered a
                # ptrace stop after the freezer passed it (its tracer, the
                # Sentry, frozen first) is frozen only by a later pass
                with open(os.path.join(d, "freezer.state"), "w") as f:
                    f.write(want)
                with open(os.path.join(d, "freezer.state")) as f:
                    if f.read().strip() == want:
                        return
                if time.monotonic() > deadline:
                    if frozen:
                        _set(path, False)       # never leave it half frozen
                    raise FreezerError(f"freezer: {want.lower()} did not take")
                time.sleep(0.01)
        else:
            with open(os.path.join(d, "cgroup.freeze"), "w") as f:
                f.write("1" if frozen else "0")
    except OSError as e:
        raise FreezerError(f"freezer {d}: {e.strerror}")


def freeze(path):
    _set(path, True)


def thaw(path, strict=False):
    try:
        _set(path, False)
    except FreezerError:
        if strict:
            raise


def remove(path, patience=2.0):
    """rmdir the cgroup once it is empty: the Sentry's helpers (the
    janitor removing its directories, the mount helper) leave it just
    after the Sentry."""
    d, _ = _dir(path) if path else (None, None)
    if d is None or not os.path.isdir(d):
        return
    deadline = time.monotonic() + patience
    while True:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return          # still busy: left for the host to collect
            time.sleep(0.02)
