"""Hidden paths: empty stand-ins mounted over what the guest must not read.

The default root is the host's own `/`: run as root, sentry would show the
guest the host's password hashes, host keys and people's files.  A hidden path
is an entry of the mount table of its own (kind "hidden"), so every lookup of
it, or of anything below it, ends there -- by path, through symlinks, `..`,
/proc/self/fd, a dirfd, the native fast path -- and its stand-in is what the
guest finds: an empty directory for a directory, an empty file for a file (a
socket node for a socket), with the original's mode and owner.  The guest may
write in it; nothing of it reaches the host, and nothing of the host's
content is ever behind it.

All stand-ins live in one private directory, the *store*, at their own
sandbox path (the stand-in of /etc/shadow is STORE/etc/shadow), so the whole
set takes one hidden fd, not one per path: each entry is rooted at its
stand-in (`root_rel`), and a host path the kernel reports for a guest fd
maps back into the sandbox by prefix, as for any mount.

What is hidden (DEFAULT_HIDDEN on the default root, plus --hide, less
--expose) is decided once, at start, before any entry exists: see plan().
"""
import fnmatch
import logging
import os
import stat

from sentry.vfs import resolve as _resolve
from sentry.host import openat2
from sentry.vfs.mount import O_PATH, Mount
from sentry.errors import SyscallError

log = logging.getLogger("sentry")

# Hidden on the default root (the host's /): what a platform team would not
# let a sandboxed CI job read.  A path that does not exist is skipped; `*`
# matches within one component.  /proc and /sys are synthetic already, /tmp
# private, and host sockets are never connected to (sentry/sandbox/mounts.py).
DEFAULT_HIDDEN = (
    # password hashes, and Debian's backup copies of them
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd",
    "/var/backups",
    # private keys and network credentials
    "/etc/ssh/*_key", "/etc/ssl/private", "/etc/letsencrypt", "/etc/krb5.keytab",
    "/etc/NetworkManager/system-connections", "/etc/wireguard",
    # people's files
    "/root", "/home", "/var/mail", "/var/spool/cron",
    # container engines and orchestrators: images, volumes, credentials
    "/etc/docker", "/etc/kubernetes", "/etc/rancher",
    "/var/lib/docker", "/var/lib/containerd", "/var/lib/kubelet", "/var/lib/rancher",
    "/var/lib/etcd", "/var/lib/lxd", "/var/lib/incus", "/var/lib/libvirt", "/var/lib/machines",
    "/var/lib/sentry",
    # databases
    "/var/lib/postgresql", "/var/lib/mysql", "/var/lib/redis", "/var/lib/mongodb",
    # system and cloud secrets
    "/var/lib/systemd/credential.secret", "/var/lib/private", "/var/lib/sss",
    "/var/lib/cloud", "/var/lib/waagent",
    # runtime state: secrets mounted by orchestrators, agents' and daemons' sockets
    "/run/secrets", "/var/run/secrets", "/run/credentials", "/run/user",
    "/run/docker", "/run/docker.sock", "/run/containerd", "/run/podman", "/run/crio",
)

# At most this many stand-ins (the native fast path's table holds 160 entries).
MAX_HIDDEN = 128

# Synthetic or private in every sandbox: neither hidden nor exposable.
SYNTHETIC = ("/proc", "/sys", "/dev")


def is_synthetic(path):
    return any(path == p or path.startswith(p + "/") for p in SYNTHETIC)


class HiddenStore:
    """The private directory holding every stand-in, and its one fd."""

    path = "/"          # a path relative to it is a sandbox path (MountTable.by_guest_fd)

    def spath_of(self, rel):
        return "/" if rel == "." else "/" + rel

    def __init__(self, root):
        os.mkdir(root, 0o755)
        self.host_root = os.path.realpath(root)
        self.fd = os.open(self.host_root, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.guest_fd = None

    def stand_in(self, spath, st):
        """Make the stand-in for sandbox path spath, whose original's lstat
        is st, and return its mount-table entry."""
        host = self.host_root + spath
        os.makedirs(os.path.dirname(host), 0o755, exist_ok=True)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(host, 0o700)
        elif kind in (stat.S_IFSOCK, stat.S_IFIFO):
            os.mknod(host, kind | 0o600)
        else:                        # a file; a device node or a symlink too
            os.close(os.open(host, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        try:
            os.chown(host, st.st_uid, st.st_gid, follow_symlinks=False)
        except PermissionError:
            pass                     # an unprivileged Sentry keeps its own
        os.chmod(host, stat.S_IMODE(st.st_mode))
        return HiddenMount(self, spath)


class HiddenMount(Mount):
    """One hidden path: its stand-in, inside the store."""

    kind = "hidden"

    def __init__(self, store, path):
        self.path = path
        self.store = store
        self.root_rel = path.lstrip("/")
        self.host_root = store.host_root + path
        self.readonly = False
        self.fd = store.fd               # shared: MountTable.add gives them one hidden fd
        self.guest_fd = None
        self.allows_exec = True



# ---- what to hide ---------------------------------------------------------------

def _find(mounts, path, follow=True):
    """The resolved location of sandbox path `path`; None if absent."""
    try:
        return _resolve.resolve(mounts, "/", path, follow=follow, record=False)
    except SyscallError:
        return None


def _names(mounts, loc):
    """The entries of directory loc."""
    try:
        fd = openat2(loc.mount.fd, loc.rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except SyscallError:
        return []
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def _expand(mounts, pattern):
    """The sandbox paths a DEFAULT_HIDDEN pattern names."""
    if "*" not in pattern:
        return [pattern]
    parent, _, glob = pattern.rpartition("/")
    loc = _find(mounts, parent or "/")
    if loc is None or not loc.is_dir:
        return []
    return [f"{parent}/{n}" for n in _names(mounts, loc) if fnmatch.fnmatchcase(n, glob)]


def _under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def plan(mounts, defaults, hides, exposes):
    """{sandbox path: its original's lstat} of every path to hide, from the
    mount table as it stands (before any stand-in):

    - each path is taken where it leads, symlinks followed (hiding a symlink
      would leave its target in sight); one that does not exist is skipped,
      and so is a default that leads into another mount than the root (the
      user's own --mount);
    - --expose X drops every default at or below X, and an --hide strictly
      below X stays; X below a hidden directory H punches a hole: H's other
      entries are hidden one by one, down to X, which is left as it is;
    - a path below another hidden directory is hidden already."""
    found = {}            # canonical sandbox path -> (st, from --hide)
    root = mounts.mounts.get("/")

    def add(path, explicit, follow=True):
        loc = _find(mounts, path, follow)
        if loc is None or loc.spath == "/" or is_synthetic(loc.spath) \
                or (not explicit and loc.mount.owner is not root):
            return
        if loc.spath in found and found[loc.spath][1]:
            return
        found[loc.spath] = (loc.st, explicit)

    for pattern in defaults:
        for path in _expand(mounts, pattern):
            add(path, False)
    for path in hides:
        add(path, True)
    for x in exposes:
        loc = _find(mounts, x)
        x = loc.spath if loc is not None else x
        for path, (st, explicit) in list(found.items()):
            if path == x or (_under(path, x) and not explicit):
                del found[path]
            elif _under(x, path) and stat.S_ISDIR(st.st_mode):
                _punch(mounts, found, path, x)
    dirs = sorted(p for p, (st, _) in found.items() if stat.S_ISDIR(st.st_mode))
    return {p: st for p, (st, _) in sorted(found.items())
            if not any(_under(p, d) and p != d for d in dirs)}


def _punch(mounts, found, top, x):
    """Hide directory `top` but `x` below it: its other entries instead,
    and so on down to x."""
    explicit = found.pop(top)[1]
    while top != x:
        step = x[len(top.rstrip("/")) + 1:].split("/", 1)[0]
        loc = _find(mounts, top)
        if loc is None:
            return
        for name in _names(mounts, loc):
            if name != step:
                path = f"{top.rstrip('/')}/{name}"
                child = _find(mounts, path, follow=False)    # the name itself, a symlink too
                if child is not None and path not in found:
                    found[path] = (child.st, explicit)
        top = f"{top.rstrip('/')}/{step}"


def hide(mounts, store_dir, paths):
    """Mount a stand-in over each of `paths` ({sandbox path: lstat})."""
    if not paths:
        return
    store = HiddenStore(store_dir)
    others = list(mounts.mounts)
    for path, st in paths.items():
        mounts.add(store.stand_in(path, st))
        log.debug("hidden: %s", path)
        # another mount below a hidden directory (--mount dst=/home/me) has
        # its mount point there, as on Linux
        for other in others:
            if stat.S_ISDIR(st.st_mode) and _under(other, path) and other != path:
                os.makedirs(store.host_root + other, 0o755, exist_ok=True)
