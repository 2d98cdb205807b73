"""The sandbox's mount table, built from its Config: the root (an overlay over
the host's / or a --rootfs), /proc, /dev, /sys, /tmp, binds, tmpfs mounts and
the hidden paths."""
import os
import logging

from sentry.fsimpl import sysfs
from sentry.fsimpl import hidden
from sentry.fsimpl.dev import DevMount
from sentry.fsimpl.guestmounts import GuestMountStore
from sentry.fsimpl.kernelfs import MqueueMount, PtsMount, TmpfsMount, sysfs_net_views
from sentry.fsimpl.overlay import LayersInUse, OverlayMount
from sentry.fsimpl.proc import ProcMount
from sentry.vfs import resolve
from sentry.vfs.mount import Mount, MountTable
from sentry.errors import SyscallError
from sentry.sandbox.config import ConfigError

log = logging.getLogger("sentry")


def build_mounts(cfg, private, scratch, kernel_ref, mountns=None):
    """The default table: the host's / as the lower layer of a private
    copy-on-write overlay, with a private /tmp; or --rootfs, writable in place
    or (--overlay) under an overlay; /dev narrowed to the usual device nodes,
    a private /dev/shm and, given a private mount namespace, a devpts instance
    of its own; a synthetic /proc and /sys.  Over all that, the hidden paths'
    empty stand-ins (fsimpl/hidden.py): DEFAULT_HIDDEN on the default root,
    and --hide, less --expose."""
    mounts = MountTable()
    lower = "/" if cfg.rootfs is None else cfg.rootfs
    # where the guests' tmpfs mounts and /proc views will live, in memory
    # where there is a memory directory, as a tmpfs: its hidden fd is the first taken
    mounts.set_store(GuestMountStore(os.path.join(scratch, "mounts")))
    if cfg.overlay:
        # the upper layer sits beside the private /tmp: on the host's own
        # file system (one st_dev, copy_file_range in the kernel), and out of
        # the guest's sight (its /tmp is another directory)
        layers = cfg.overlay_dir or private
        try:
            root = OverlayMount("/", lower, os.path.join(layers, "upper"), os.path.join(layers, "work"))
        except LayersInUse:
            raise ConfigError(f"--overlay-dir {layers}: in use by another sandbox")
        if cfg.rootfs is None:
            root.lower.host_sockets = False      # the host's daemons listen there
        mounts.add(root)
    else:
        mounts.add(Mount("/", lower, readonly=cfg.readonly_root))
    if cfg.rootfs is None:
        tmp = os.path.join(private, "tmp")
        os.mkdir(tmp)
        os.chmod(tmp, 0o1777)
        mounts.add(Mount("/tmp", tmp))
    pts = _devpts(mountns, private)
    mqueue = _mqueue(cfg, mountns, private)
    mounts.add(_dev(mountns, private, pts, mqueue))
    for m in (pts, mqueue):
        if m is not None:
            mounts.add(m)
    shm = os.path.join(private, "shm")
    os.mkdir(shm)
    os.chmod(shm, 0o1777)
    mounts.add(Mount("/dev/shm", shm))      # POSIX shm and semaphores
    for i, m in enumerate(cfg.mounts):
        if m["type"] == "bind":
            # a unix socket in it is a host service's: connected to only when
            # the user says so (SO_PEERCRED there names sentry's host uid)
            mounts.add(Mount(m["dst"], m["src"], readonly="ro" in m, host_sockets="sockets" in m))
        elif "size" in m:
            try:
                mounts.add(TmpfsMount(m["dst"], mountns, os.path.join(private, f"tmpfs{i}"), m["size"]))
            except OSError as e:
                raise ConfigError(f"--mount type=tmpfs,dst={m['dst']},size={m['size']}: {e.strerror}")
        else:
            tmp = os.path.join(private, f"tmpfs{i}")
            os.mkdir(tmp)
            os.chmod(tmp, 0o1777)
            mounts.add(Mount(m["dst"], tmp))
    hides = list(cfg.hide)
    if cfg.audit is not None:
        # the trail is the Sentry's: a guest that can see it must not read it
        spath = mounts.sandbox_path(os.path.realpath(cfg.audit))
        if spath is not None and spath not in cfg.expose:
            hides.append(spath)
    hide = hidden.plan(mounts, hidden.DEFAULT_HIDDEN if cfg.rootfs is None else (), hides, cfg.expose)
    if len(hide) > hidden.MAX_HIDDEN or any(len(p) >= 256 for p in hide):
        raise ConfigError(f"--hide/--expose: {len(hide)} paths to hide, at most {hidden.MAX_HIDDEN} "
                          "(each under 256 bytes); hide their parent directories instead")
    hidden.hide(mounts, os.path.join(private, "hidden"), hide)
    mounts.add(ProcMount("/proc", os.path.join(scratch, "proc"), kernel_ref))
    # read-only and built at every start: on the memory file system with the
    # synthetic /proc (a dozen directories and files cost ~1 ms each on a disk)
    sysdir = os.path.join(scratch, "sys")
    os.mkdir(sysdir)
    net_views = _sysfs_net(cfg, mountns, private)
    sysfs.build(sysdir, cfg.limits, [v.path[len("/sys/"):] for v in net_views])
    sys_mount = Mount("/sys", sysdir, readonly=True)
    sys_mount.synthetic = True
    mounts.add(sys_mount)
    for v in net_views:
        mounts.add(v)
    mounts.shown = _shown(mounts, cfg.shown_mounts)
    return mounts


def _shown(mounts, declared):
    """The config's names for its mounts (Config.shown_mounts), those at a
    mount of the table: none for what the sandbox lacks."""
    return {path: how for path, how in declared.items() if path in mounts.mounts}


def _dev(mountns, private, pts, mqueue):
    """/dev of the sandbox's own (a tmpfs of the helper's); without a private
    mount namespace, the host's narrowed to the same names."""
    if mountns is not None:
        mounted = ["shm"] + [os.path.basename(m.path) for m in (pts, mqueue) if m is not None]
        try:
            return DevMount("/dev", mountns, os.path.join(private, "dev"), pts=pts is not None,
                            mounted=mounted)
        except OSError as e:
            log.debug("no /dev of the sandbox's own (%s): the host's, narrowed", e.strerror)
    return DevMount("/dev")


def _sysfs_net(cfg, mountns, private):
    """/sys/class/net and /sys/devices/virtual/net of the sandbox's own
    network namespace (fsimpl/kernelfs.py); none under --network=host (the
    host's interfaces are not the sandbox's to list) or without a private
    namespace, as before."""
    if mountns is None or getattr(mountns, "netns_fd", None) is None:
        return []
    try:
        return sysfs_net_views(mountns, os.path.join(private, "sysfs"))
    except OSError as e:
        log.debug("no /sys/class/net in the sandbox (%s)", e.strerror or e)
        return []


def _devpts(mountns, private):
    """The sandbox's own devpts instance, for /dev/pts and /dev/ptmx; None
    without a private mount namespace or a kernel without devpts."""
    if mountns is None:
        return None
    try:
        return PtsMount("/dev/pts", mountns, os.path.join(private, "pts"))
    except OSError as e:
        log.debug("no devpts instance (%s): no /dev/pts", e.strerror)
        return None


def _mqueue(cfg, mountns, private):
    """/dev/mqueue, where the config names it (an OCI spec's mqueue mount):
    the sandbox's IPC namespace's queues; None without a private mount
    namespace."""
    if mountns is None or cfg.shown_mounts.get("/dev/mqueue", ("", ""))[1] != "mqueue":
        return None
    try:
        return MqueueMount("/dev/mqueue", mountns, os.path.join(private, "mqueue"))
    except OSError as e:
        log.debug("no mqueue file system (%s): no /dev/mqueue", e.strerror)
        return None


def host_cwd(cfg, mounts):
    """The guest's first cwd (the sandbox's root when the requested one does
    not exist there), resolved by the Sentry (an overlay copies it up first)
    as a path through its mount's hidden fd, for the child to enter once it
    holds that fd: a mount of the private namespace has no host path of this
    namespace."""
    cwd = cfg.cwd or (os.getcwd() if cfg.rootfs is None else "/")
    try:
        if mounts.locate(os.path.normpath(cwd))[0].kind == "hidden":
            log.warning("the working directory %s is hidden in the sandbox (--expose it to work there)", cwd)
    except SyscallError:
        pass
    for path in (cwd, "/"):
        try:
            loc = resolve.resolve(mounts, "/", path)
            if loc.is_dir:
                return f"/proc/self/fd/{loc.mount.guest_fd}" + ("" if loc.rel == "." else "/" + loc.rel)
        except SyscallError:
            pass
    raise ConfigError("the sandbox's root cannot be resolved")
