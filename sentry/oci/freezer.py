"""pause/resume: the whole sandbox (the Sentry, its helpers and every
guest) is in the container's cgroup (cgroup.py), frozen and thawed at once:
cgroup v1's freezer controller where it is mounted, else cgroup v2's
cgroup.freeze."""
import os
import time

from sentry.oci import cgroup


class FreezerError(Exception):
    pass


def _set(path, frozen):
    d, kind = cgroup.dir_of(path, "freezer"), cgroup.layout()[0]
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
            # the write only starts it: frozen once cgroup.events says so, as runc waits
            deadline = time.monotonic() + 5
            while _events(d).get("frozen") != ("1" if frozen else "0"):
                if time.monotonic() > deadline:
                    if frozen:
                        _set(path, False)
                    raise FreezerError(f"freezer: {'freeze' if frozen else 'thaw'} did not take")
                time.sleep(0.01)
    except OSError as e:
        raise FreezerError(f"freezer {d}: {e.strerror}")


def _events(d):
    """cgroup v2's cgroup.events as {key: value}."""
    with open(os.path.join(d, "cgroup.events")) as f:
        return dict(words for words in (line.split() for line in f) if len(words) == 2)


def freeze(path):
    _set(path, True)


def thaw(path, strict=False):
    try:
        _set(path, False)
    except FreezerError:
        if strict:
            raise
