"""The state store: ROOT/ID/ holds state.json (what `create` recorded) and,
until `start`, exec.fifo, and exec.sock, where `exec` reaches the sandbox
(sandbox/spawner.py).  Every change is made under an flock on ROOT/ID
and written to a temporary file renamed over state.json, so a reader never
sees half a file and two commands racing on one ID take turns.

What a container's status is comes from the host, not from the file alone,
so it is right even after the Sentry was SIGKILLed: the Sentry's pid must
still be the process `create` started (same start time in /proc/PID/stat)
and not a zombie; then `paused` if the freezer says so, `created` while
exec.fifo exists, else `running`; `stopped` otherwise."""
import contextlib
import fcntl
import json
import os
import re
import time

from sentry import hostids
from sentry.oci import OCI_VERSION

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class StateError(Exception):
    """A command that cannot proceed: one line, exit status 1."""


def default_root():
    """runc's choice: /run/sentry for the host's root; $XDG_RUNTIME_DIR/sentry
    for anyone else, including root of a user namespace that is not the
    host's root by name (rootless podman runs its runtime as uid 0 of its
    own namespace, with the user's XDG_RUNTIME_DIR and USER)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if os.geteuid() == 0 and not (xdg and not hostids.in_initial_namespace() and os.environ.get("USER") != "root"):
        return "/run/sentry"
    if xdg:
        return os.path.join(xdg, "sentry")
    return f"/tmp/sentry-{os.geteuid()}"


def check_id(cid):
    if not cid:
        raise StateError("container id cannot be empty")
    if not ID_RE.fullmatch(cid) or len(cid) > 1024:
        raise StateError(f"invalid id format: {cid}")
    return cid


def now_rfc3339():
    """UTC, to the microsecond: 2006-01-02T15:04:05.000000Z."""
    t = time.time_ns() // 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000000)) + f".{t % 1000000:06d}Z"


def process_start_time(pid):
    """(start time in clock ticks, state letter) of a live pid, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields follow the last ')'
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[19]), fields[0].decode()


class Container:
    """One container's directory; methods that change it need `locked()`."""

    def __init__(self, root, cid):
        self.root = root
        self.id = check_id(cid)
        self.dir = os.path.join(root, cid)
        self.state_file = os.path.join(self.dir, "state.json")
        self.fifo = os.path.join(self.dir, "exec.fifo")
        self.control_socket = os.path.join(self.dir, "exec.sock")   # sandbox/spawner.py
        self.pids_file = os.path.join(self.dir, "pids.max")   # the live pids limit: kernel/limits.py
        self._data = None

    # -- existence and locking -------------------------------------------

    def exists(self):
        return os.path.exists(self.state_file)

    def make(self):
        """The directory of a new container; an ID in use is refused."""
        try:
            os.makedirs(self.root, mode=0o711, exist_ok=True)
            os.mkdir(self.dir, 0o711)
        except FileExistsError:
            raise StateError(f"container with id {self.id} already exists")
        except OSError as e:
            raise StateError(f"the state directory {e.filename}: {e.strerror}")

    def remove(self):
        """The directory and everything in it, as shutil.rmtree(ignore_errors)
        would; the directory holds files only (state.json, exec.fifo,
        exec.sock, pids.max), and importing shutil (zlib, bz2, lzma) was half of
        `delete`'s own time."""
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    import shutil
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass

    @contextlib.contextmanager
    def locked(self):
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError(f"container {self.id} does not exist")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- the record --------------------------------------------------------

    def load(self):
        try:
            with open(self.state_file) as f:
                self._data = json.load(f)
        except FileNotFoundError:
            raise StateError(f"container {self.id} does not exist")
        except ValueError as e:
            raise StateError(f"container {self.id}: state.json is unreadable ({e})")
        return self._data

    @property
    def data(self):
        return self._data if self._data is not None else self.load()

    def save(self, data):
        # atomic by the rename; not synced to the disk, as runc's: a state
        # names processes, which no crash of the machine leaves alive
        # (an fsync took 7 ms of create where the root is on a disk)
        tmp = os.path.join(self.dir, f".state.json.{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, self.state_file)
        self._data = data

    def update(self, **changes):
        data = dict(self.load())
        data.update(changes)
        self.save(data)

    # -- liveness ------------------------------------------------------------

    def sentry_alive(self):
        """Whether the container process `create` started is still running
        (not gone, not a zombie, and not another process with its pid)."""
        d = self.data
        pid = d.get("pid")
        if not pid:
            return False
        st = process_start_time(pid)
        return st is not None and st[0] == d.get("pid_start") and st[1] not in ("Z", "X")

    @property
    def sentry_pid(self):
        """The Sentry's host pid; `pid` is its stand-in's (oci/standin.py),
        the process the pid file names (a state from before: the Sentry)."""
        return self.data.get("sentry_pid") or self.data.get("pid")

    def status(self):
        if not self.sentry_alive():
            return "stopped"
        if self.data.get("paused"):
            return "paused"
        if os.path.exists(self.fifo):
            return "created"
        return "running"

    def oci_state(self, record=None, status=None):
        """The OCI state: of this container as it is now, or (for hooks that
        run before or after it exists) of `record` in `status`."""
        d = self.data if record is None else record
        status = status or self.status()
        state = {"ociVersion": OCI_VERSION, "id": self.id, "status": status,
                 "pid": d.get("pid", 0) if status != "stopped" else 0,
                 "bundle": d["bundle"], "rootfs": d["rootfs"], "created": d["created"],
                 "owner": d.get("owner", "")}
        if d.get("annotations"):
            state["annotations"] = d["annotations"]
        return state

    def guest_pids(self):
        """Host pids of the sandbox's processes: the tasks the Sentry traces
        (its helpers are its children but never traced)."""
        if not self.sentry_alive():
            return []
        sentry = self.sentry_pid
        spawner = self.data.get("spawner_pid")      # traced, but no guest
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/status") as f:
                    for line in f:
                        if line.startswith("TracerPid:"):
                            if int(line.split()[1]) == sentry and int(name) != spawner:
                                pids.append(int(name))
                            break
            except (OSError, ValueError):
                continue
        return sorted(pids)


def all_ids(root):
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.exists(os.path.join(root, n, "state.json"))]
