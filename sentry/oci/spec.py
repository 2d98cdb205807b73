"""config.json -> the sandbox's Config (sentry/sandbox/config.py), and the checks
`create` makes before anything starts.

What maps where:
  root.path (+readonly)        the sandbox's root (--rootfs), writable in place
  process.args/env/cwd         argv, environment, --cwd
  process.user uid/gid/additionalGids, umask   --uid, --gid, --groups; umask
  process.rlimits              set in the container process, inherited by the guest
  process.oomScoreAdj, ioPriority, scheduler, linux.personality
                               set by the container process before it forks the
                               Sentry: the whole sandbox inherits them (inherited.py)
  hostname                     --hostname (none: the host's name, which a new UTS
                               namespace starts with, as under runc)
  domainname (or sysctl kernel.domainname)   the UTS namespace's domain name
  linux.namespaces time + linux.timeOffsets  a time namespace with those offsets, entered
                               by each process at its first execve (kernel/timens.py)
  mounts: bind (ro/rw)         --mount type=bind (a directory or a regular file), its
                               mount point made in the rootfs first, as runc does
          tmpfs (size=)        --mount type=tmpfs
          proc, sysfs, devpts, mqueue, cgroup, and anything at or below
          /proc, /sys, /dev    the sandbox's own synthetic trees already (mqueue
                               a real one, of the sandbox's IPC namespace); all
                               but binds named in /proc/mounts as the spec says
  linux.namespaces network without a path   --network=none (none at all: --network=host);
                   with a path  --network=none in that namespace, joined as it is
  linux.seccomp                the guest's own filter, on top of the Sentry's (seccomp.py)
  linux.resources.pids.limit   --pids-limit (the Sentry counts the sandbox's tasks)
  linux.resources memory, cpu and blockIO: the container's cgroup, which holds
                               the whole sandbox (resources.py, written by create and update)
  linux.sysctl                 set in the sandbox's IPC and network namespaces (vfs/mountns.py)
  annotations dev.sentry.*     sentry's own options (dev.sentry.network=host,
                               dev.sentry.strace=true, dev.sentry.pids-limit=N …)
"""
import errno
import json
import logging
import os
import resource
import stat

from sentry.errors import SyscallError
from sentry.host import RESOLVE_NO_MAGICLINKS, openat2
from sentry.oci import hooks, inherited, resources, seccomp
from sentry.vfs.mount import O_PATH
from sentry.vfs.resolve import RESOLVE_IN_ROOT

# the rootfs is the root: an image's absolute or ".." symlink stays inside it
IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS

log = logging.getLogger("sentry")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# the sandbox has its own of these; a spec mount there is accepted as asking
# for what is present already
SYNTHETIC = ("/proc", "/sys", "/dev")
SYNTHETIC_TYPES = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}

# annotation (dev.sentry.NAME) or global flag (--NAME) -> Config keyword, kind
SENTRY_OPTIONS = {
    "network": ("network", str), "strace": ("strace", "strace"), "overlay": ("overlay", bool),
    "audit": ("audit", str), "pids-limit": ("pids_limit", int), "cpus": ("cpus", int),
    "memory": ("memory", str), "kernel-release": ("kernel_release", str),
}


class SpecError(Exception):
    """config.json asks for what cannot be done: create fails with this line."""


def load(bundle):
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise SpecError(f"cannot load {path}: no such file or directory (is {bundle} a bundle?)")
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot load {path}: {e}")
    if not isinstance(spec, dict) or not isinstance(spec.get("process"), dict):
        raise SpecError(f"{path}: no process to run (the process section is missing)")
    if not spec["process"].get("args"):
        raise SpecError(f"{path}: process.args must not be empty")
    return spec


def rootfs_of(spec, bundle):
    root = (spec.get("root") or {}).get("path")
    if not root:
        raise SpecError("config.json: root.path is missing")
    path = root if os.path.isabs(root) else os.path.join(bundle, root)
    path = os.path.realpath(path)
    if not os.path.isdir(path):
        raise SpecError(f"rootfs {path}: no such directory")
    return path


def env_of(process):
    env = {}
    for item in process.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    return env


def _bool(v):
    return str(v).lower() in ("1", "true", "yes", "on", "")


def sentry_options(spec, flags):
    """dev.sentry.* annotations, then global flags over them (the engine's
    --runtime-flag is the user's word for this one run)."""
    out = {}
    sources = [{k[len("dev.sentry."):]: v for k, v in (spec.get("annotations") or {}).items()
                if k.startswith("dev.sentry.")}, flags]
    for src in sources:
        for name, value in src.items():
            if name not in SENTRY_OPTIONS:
                raise SpecError(f"dev.sentry.{name}: not an option of sentry's "
                                f"(one of {', '.join(sorted(SENTRY_OPTIONS))})")
            key, kind = SENTRY_OPTIONS[name]
            try:
                out[key] = _strace(value) if kind == "strace" else _bool(value) if kind is bool else kind(value)
            except ValueError:
                raise SpecError(f"dev.sentry.{name}={value}: not a valid {getattr(kind, '__name__', kind)}")
    return out


def _strace(value):
    """--strace as a flag (all calls), or strace's -e trace= list."""
    if value is True or str(value).lower() in ("1", "true", "yes", "on", "all"):
        return "all"
    if value is False or str(value).lower() in ("0", "false", "no", "off", ""):
        return False
    return str(value)


def _under(path, tops):
    return any(path == t or path.startswith(t + "/") for t in tops)


def mount_options(spec, rootfs):
    """The spec's mounts as --mount SPECs, each at its destination as the
    image's symlinks lead it (resolved_in_root, through the binds before
    it, as runc mounts them in order); the ones the sandbox has itself are
    dropped (logged at debug)."""
    out = []
    binds = {}
    for m in spec.get("mounts") or []:
        dst = os.path.normpath(m.get("destination") or "")
        kind = m.get("type") or ""
        opts = m.get("options") or []
        if not dst.startswith("/"):
            raise SpecError(f"mount {dst!r}: the destination must be an absolute path")
        given, dst = dst, resolved_in_root(rootfs, dst, binds)
        if dst is None:
            raise SpecError(f"mount {given}: too many levels of symbolic links")
        if _under(given, SYNTHETIC) or _under(dst, SYNTHETIC) or kind in SYNTHETIC_TYPES:
            # /dev/shm, /dev/pts, /proc, /sys/fs/cgroup … : the sandbox's own
            log.debug("mount %s (%s): the sandbox's own", given, kind or "bind")
            continue
        if kind == "bind" or "bind" in opts or "rbind" in opts:
            src = m.get("source") or ""
            if not os.path.exists(src):
                raise SpecError(f"mount {src} to {dst}: no such file or directory")
            # mount(2) follows the source's symlinks: the bind is of their
            # target (podman --init binds /usr/libexec/podman/catatonit, a link)
            src = os.path.realpath(src)
            if not (os.path.isdir(src) or os.path.isfile(src)):
                raise SpecError(f"mount {src} to {dst}: only directories and regular files can be bound")
            spec_ = f"type=bind,src={src},dst={dst}"
            if "ro" in opts:
                spec_ += ",ro"
            out.append(spec_)
            binds[dst] = src
        elif kind == "tmpfs":
            spec_ = f"type=tmpfs,dst={dst}"
            size = [o for o in opts if o.startswith("size=")]
            if size:
                spec_ += "," + size[-1]
            out.append(spec_)
        else:
            raise SpecError(f"mount {dst}: type {kind!r} is not supported (bind, tmpfs, or the "
                            f"sandbox's own proc, sysfs, devpts, mqueue, cgroup)")
    return out


# mount flags /proc/mounts lists beside ro/rw, as the spec's options say them
SHOWN_FLAGS = ("nosuid", "nodev", "noexec", "relatime", "noatime", "strictatime")


def shown_mounts(spec, rootfs):
    """How the guest's /proc/mounts names the spec's mounts (not binds, whose
    line is the file system beneath; not cgroup, of which the sandbox's /sys
    has only empty directories): {destination: (source, type, flags)}, the
    spec's words, as runtime-tools checks them against mountinfo (the
    sandbox's own /proc, /sys, /dev … are those mounts)."""
    out = {}
    for m in spec.get("mounts") or []:
        kind, opts = m.get("type") or "", m.get("options") or []
        if kind in ("", "bind", "cgroup", "cgroup2") or "bind" in opts or "rbind" in opts:
            continue            # a bind's line is its file system's; the sandbox has no cgroupfs
        flags = [o for o in opts if o in SHOWN_FLAGS]
        dst = os.path.normpath(m["destination"])
        if not _under(dst, SYNTHETIC):
            dst = resolved_in_root(rootfs, dst) or dst     # where mount_options placed it
        out[dst] = (m.get("source") or kind, kind, flags)
    return out


def make_mount_points(rootfs, mounts):
    """Make each --mount's mount point in the rootfs where it is missing, as
    runc does (a directory, or an empty file for a file's bind), so that its
    directory's listing shows it.  Resolved in the rootfs by the kernel
    (RESOLVE_IN_ROOT): an image's symlink never leads the creation out.
    One below another mount is that mount's business, and left alone."""
    specs = [dict(x.partition("=")[::2] for x in m.split(",")) for m in mounts]
    dsts = [os.path.normpath(o["dst"]) for o in specs]
    root = os.open(rootfs, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for o, dst in zip(specs, dsts):
            if any(_under(dst, [d]) and dst != d for d in dsts):
                continue
            is_dir = o.get("type") != "bind" or os.path.isdir(o["src"])
            try:
                _make_in_root(root, dst.strip("/").split("/"), is_dir)
            except (OSError, SyscallError) as e:
                log.debug("mount point %s: %s", dst, os.strerror(e.errno))
    finally:
        os.close(root)


def _make_in_root(root, parts, is_dir):
    for i, name in enumerate(parts):
        prefix = "/".join(parts[:i + 1])
        try:
            os.close(openat2(root, prefix, O_PATH | os.O_CLOEXEC, resolve=IN_ROOT))
            continue
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
        parent = openat2(root, "/".join(parts[:i]) or ".", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, resolve=IN_ROOT)
        try:
            if is_dir or i < len(parts) - 1:
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
        finally:
            os.close(parent)


def sysctl_of(spec, network):
    """linux.sysctl, checked before anything starts: only the sandbox's own
    namespaces' (vfs/mountns.py sysctl_refused: IPC, and the network's when
    the container has one), never the host's."""
    from sentry.vfs.mountns import sysctl_refused
    out = {}
    for key, value in ((spec.get("linux") or {}).get("sysctl") or {}).items():
        value = str(value)
        if key == "kernel.hostname":
            raise SpecError(f'sysctl "{key}" is not allowed as it conflicts with the OCI "hostname" field')
        if key == "kernel.domainname":
            if spec.get("domainname"):
                raise SpecError(f'sysctl "{key}" is not allowed as it conflicts with the OCI "domainname" field')
            continue                    # the UTS namespace's (domainname_of)
        why = sysctl_refused(key, value, network != "host")
        if why:
            raise SpecError(f"sysctl {key}: {why}")
        out[key] = value
    return out


def domainname_of(spec):
    """The UTS namespace's NIS domain name: the spec's domainname, else its
    sysctl kernel.domainname (sysctl_of refuses both at once); None for
    neither ("(none)", as a new UTS namespace starts)."""
    name = spec.get("domainname") or ((spec.get("linux") or {}).get("sysctl") or {}).get("kernel.domainname")
    if name is None or name == "":
        return None
    if not isinstance(name, str) or len(name.encode()) > 64:
        raise SpecError(f"domainname {name!r}: a name of at most 64 bytes")
    return name


def time_offsets_of(spec):
    """linux.timeOffsets of a time namespace without a path, as
    /proc/<pid>/timens_offsets takes them (and checked as Linux checks a
    write there: kernel/timens.py); None without a namespace or offsets,
    whose clocks read as the host's."""
    from sentry.errors import SyscallError
    from sentry.kernel import timens
    linux = spec.get("linux") or {}
    ns = [n for n in linux.get("namespaces") or [] if isinstance(n, dict) and n.get("type") == "time"]
    offsets = linux.get("timeOffsets")
    if not ns:
        if offsets:
            raise SpecError("linux.timeOffsets: no time namespace in linux.namespaces")
        return None
    if ns[0].get("path"):
        raise SpecError(f"time namespace path {ns[0]['path']!r}: the sandbox's time namespaces are its own, "
                        "sentry joins none of the host's")
    if not offsets:
        return None
    if not isinstance(offsets, dict) or set(offsets) - {"monotonic", "boottime"}:
        raise SpecError(f"linux.timeOffsets {offsets!r}: monotonic and boottime, each {{secs, nanosecs}}")
    text = ""
    for clock, o in offsets.items():
        secs, nsecs = (o or {}).get("secs", 0), (o or {}).get("nanosecs", 0)
        if any(not isinstance(v, int) or isinstance(v, bool) for v in (secs, nsecs)):
            raise SpecError(f"linux.timeOffsets.{clock} {o!r}: secs and nanosecs, numbers")
        text += f"{clock} {secs} {nsecs}\n"
    try:
        timens.with_offsets(text)
    except SyscallError as e:
        raise SpecError(f"linux.timeOffsets: {os.strerror(e.errno)}")
    return text


def network_option(spec):
    """(--network, the network namespace's path): a network namespace
    without a path is a fresh, loopback-only network; with one, that
    namespace, joined as it is (as runc joins it)."""
    for ns in ((spec.get("linux") or {}).get("namespaces") or []):
        if ns.get("type") == "network":
            path = ns.get("path")
            if path is not None and (not isinstance(path, str) or not os.path.isabs(path)):
                raise SpecError(f"network namespace path {path!r}: an absolute path")
            return "none", path or None
    return "host", None     # no network namespace: the host's network, as runc gives


RLIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}


def rlimits_of(process):
    out = []
    for r in process.get("rlimits") or []:
        kind = r.get("type")
        if kind not in RLIMITS:
            raise SpecError(f"rlimit {kind}: unknown")
        out.append((RLIMITS[kind], int(r.get("soft", 0)), int(r.get("hard", 0)), kind))
    return out


def config_kwargs(spec, bundle, flags, cache=None):
    """Keyword arguments for sandbox.Config (cache: where compiled seccomp
    profiles are kept, seccomp.profile_of)."""
    process = spec["process"]
    user = process.get("user") or {}
    rootfs = rootfs_of(spec, bundle)
    kw = dict(rootfs=rootfs, cwd=process.get("cwd") or "/", env=env_of(process),
              hostname=spec.get("hostname") or os.uname().nodename, mounts=mount_options(spec, rootfs),
              shown_mounts=shown_mounts(spec, rootfs),
              uid=user.get("uid", 0), gid=user.get("gid", 0),
              groups=[g for g in (user.get("additionalGids") or []) if g != user.get("gid", 0)])
    if (spec.get("root") or {}).get("readonly"):
        kw["readonly_root"] = True
    kw["network"], netns = network_option(spec)
    if netns:
        kw["netns"] = netns
    kw["no_new_privs"] = bool(process.get("noNewPrivileges"))
    try:
        inherited.check(spec)
    except inherited.InheritedError as e:
        raise SpecError(str(e))
    kw["sysctl"] = sysctl_of(spec, kw["network"])
    kw["domainname"] = domainname_of(spec)
    kw["time_offsets"] = time_offsets_of(spec)
    try:
        kw["guest_seccomp"] = seccomp.profile_of(spec, cache)
    except seccomp.ProfileError as e:
        raise SpecError(str(e))
    kw["hide"], ro = masked_and_readonly(spec, kw["rootfs"], kw["mounts"])
    kw["mounts"] = kw["mounts"] + ro
    kw.update(resources_of(spec))
    kw.update(sentry_options(spec, flags))
    return kw


def resources_of(spec):
    """linux.resources that the Sentry enforces itself: pids.limit, the
    sandbox's tasks at most (its fork/clone past it is EAGAIN, as a pids
    cgroup's; 0 or less: none).  Memory and CPU are the cgroup's
    (resources.py, written by create); what neither applies is named in a
    warning."""
    res = (spec.get("linux") or {}).get("resources") or {}
    out = {}
    pids = (res.get("pids") or {}).get("limit")
    if pids is not None:
        if not isinstance(pids, int) or isinstance(pids, bool):
            raise SpecError(f"linux.resources.pids.limit {pids!r}: a number of tasks")
        out["pids_limit"] = max(0, pids)
    ignored = resources.not_applied(res)
    if ignored:
        log.warning("linux.resources: %s not applied (sentry writes the memory, cpu, cpuset, blkio and hugetlb "
                    "controllers, and v2's unified files)", ", ".join(ignored))
    if (spec.get("linux") or {}).get("intelRdt"):
        log.warning("linux.intelRdt: not applied (sentry sets no cache or memory bandwidth allocation%s)",
                    "" if os.path.isdir("/sys/fs/resctrl/info") else "; this host has no resctrl file system")
    return out


def masked_and_readonly(spec, rootfs, mounts):
    """linux.maskedPaths as --hide (an empty stand-in, as runc's /dev/null
    or empty tmpfs), linux.readonlyPaths as read-only binds of themselves.
    Under /proc, /sys and /dev the sandbox's own trees already show none of
    what engines mask (kcore, keys, timer_list, sched_debug, firmware …)
    and are read-only where engines ask it (/proc/sys, sysrq-trigger …)."""
    linux = spec.get("linux") or {}
    binds = {}
    for m in mounts:
        o = dict(x.partition("=")[::2] for x in m.split(","))
        if o.get("type") == "bind":
            binds[os.path.normpath(o["dst"])] = o["src"]
    hide, ro = [], []
    for p in linux.get("maskedPaths") or []:
        p = os.path.normpath(p)
        if not _under(p, SYNTHETIC):
            hide.append(p)
    for p in linux.get("readonlyPaths") or []:
        p = os.path.normpath(p)
        if _under(p, SYNTHETIC):
            continue
        h = _in_root(rootfs, p, binds)
        if h is None or not os.path.exists(h):
            continue                    # as runc: a missing path is skipped
        ro.append(f"type=bind,src={h},dst={p},ro")
    return hide, ro


def hooks_of(spec):
    """config.json's hooks (sentry/oci/hooks.py), checked before anything starts."""
    try:
        return hooks.parse(spec)
    except ValueError as e:
        raise SpecError(f"config.json: {e}")


# -- the entrypoint, checked as runc's exec.LookPath does -------------------

def resolved_in_root(root, path, mounts=None):
    """Sandbox path `path` with the image's symlinks along it followed
    inside the sandbox (an absolute target from its root, `..` clamped
    there), bind mounts (dst -> src) honoured; None past 40 links.  What an
    entrypoint is looked up by, and where a mount is placed (runc follows an
    image's symlinks in a destination so: /var/run -> /run)."""
    mounts = mounts or {}
    parts = [c for c in path.split("/") if c]
    done = ""
    links = 0
    while parts:
        c = parts.pop(0)
        if c == ".":
            continue
        if c == "..":
            done = done.rsplit("/", 1)[0]
            continue
        candidate = done + "/" + c
        h = _host(root, candidate, mounts)
        if os.path.islink(h):
            links += 1
            if links > 40:
                return None
            target = os.readlink(h)
            if target.startswith("/"):
                done = ""
            parts = [x for x in target.split("/") if x] + parts
            continue
        done = candidate
    return done or "/"


def _host(root, p, mounts):
    """Host path of symlink-free sandbox path p."""
    best = max((d for d in mounts if _under(p, [d])), key=len, default=None)
    if best is None:
        return root + p
    return mounts[best] + p[len(best):]


def _in_root(root, path, mounts):
    """Host path of sandbox path `path` (resolved_in_root)."""
    p = resolved_in_root(root, path, mounts)
    return None if p is None else _host(root, p, mounts)


def _find(root, name, mounts):
    """(host path, sandbox path) if it exists, else (None, sandbox path)."""
    h = _in_root(root, name, mounts)
    return (h if h is not None and os.path.exists(h) else None), name


def check_entrypoint(spec, rootfs):
    """runc's words, which podman maps to exit status 127 (not found) or 126."""
    process = spec["process"]
    arg0 = process["args"][0]
    binds = {}
    for m in mount_options(spec, rootfs):
        o = dict(x.partition("=")[::2] for x in m.split(","))
        if o.get("type") == "bind":
            binds[os.path.normpath(o["dst"])] = o["src"]
    cwd = process.get("cwd") or "/"
    if "/" in arg0:
        name = arg0 if arg0.startswith("/") else os.path.join(cwd, arg0)
        h, _ = _find(rootfs, name, binds)
        if h is None:
            raise SpecError(f'exec: "{arg0}": stat {arg0}: no such file or directory')
        if not _executable(h):
            raise SpecError(f'exec: "{arg0}": permission denied')
        return
    path = env_of(process).get("PATH", "")
    for d in path.split(":"):
        d = d or "."
        h, _ = _find(rootfs, os.path.join(d if d.startswith("/") else os.path.join(cwd, d), arg0), binds)
        if h is not None and _executable(h):
            return
    raise SpecError(f'exec: "{arg0}": executable file not found in $PATH')


def _executable(host_path):
    try:
        st = os.stat(host_path)
    except OSError:
        return False
    return not stat.S_ISDIR(st.st_mode) and bool(st.st_mode & 0o111)


# -- `spec`: a starting config.json ------------------------------------------

def default_spec(rootless=False):
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"], "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "sentry",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]},
    }
    if rootless:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    return spec
