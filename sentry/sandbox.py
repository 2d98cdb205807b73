"""A sandbox: its mount table, its first process, and the Kernel serving it."""
import errno
import logging
import os
import re
import resource
import shutil
import signal
import socket
import tempfile
import time

from sentry.kernel import audit as _audit
from sentry.kernel.kernel import Kernel
from sentry.kernel import idmap
from sentry.platform import handover, privileges, ptrace, seccomp, selfconfine, staging
from sentry.platform.fdholder import FdHolder
from sentry.vfs import mountns as _mountns
from sentry import startsignals
from sentry.fsimpl import sysfs
from sentry.kernel.credentials import ID_MAX, Credentials
from sentry.kernel.limits import Limits, parse_bytes
from sentry.fsimpl import hidden
from sentry.fsimpl.dev import DevMount
from sentry.fsimpl.kernelfs import PtsMount, TmpfsMount
from sentry.fsimpl.overlay import LayersInUse, OverlayMount
from sentry.fsimpl.proc import ProcMount
from sentry.vfs import resolve
from sentry.vfs.mount import HIDDEN_FD_BASE, MAX_MOUNTS, O_PATH, Mount, MountTable
from sentry.errors import SyscallError
from syscalls.table import build_table, filter_rules, mm_checked

log = logging.getLogger("sentry")


class ConfigError(Exception):
    """A bad option or config: one clear line, nothing started."""


class Config:
    def __init__(self, argv, rootfs=None, cwd=None, env=None, hostname="sentry",
                 strace=False, mounts=(), pids_limit=4096, uid=0, gid=0, groups=None,
                 cpus=None, memory=None, kernel_release=None, overlay=False, overlay_dir=None,
                 hide=(), expose=(), audit=None, readonly_root=False, rlimits=(),
                 strace_time=None, strace_string_limit=32,
                 network="sandbox", net_allow=()):
        self.argv = argv
        self.rootfs = rootfs
        # the OCI spec's root.readonly: --rootfs served read-only (EROFS)
        self.readonly_root = readonly_root
        # the OCI spec's process.rlimits, (resource, soft, hard): the guest's
        # alone, set once its reserved fds are in place (a low RLIMIT_NOFILE
        # would refuse their high numbers)
        self.rlimits = list(rlimits)
        # the default root is always an overlay; --overlay-dir implies one
        self.overlay = overlay or overlay_dir is not None or rootfs is None
        self.overlay_dir = overlay_dir
        self.cwd = cwd
        self.env = dict(os.environ) if env is None else env
        self.hostname = hostname
        # strace: False, or strace's `-e trace=` list ("all", "open,%file"...)
        self.strace = strace
        self.strace_select = None
        if strace and strace != "all":
            from syscalls import signature
            try:
                self.strace_select = signature.select(strace, build_table().entries.values())
            except ValueError as e:
                raise ConfigError(f"--strace={strace}: {e}")
        from sentry.strace import parse_time_options
        try:
            self.strace_timestamps, self.strace_durations = parse_time_options(strace_time)
        except ValueError as e:
            raise ConfigError(str(e))
        if not isinstance(strace_string_limit, int) or strace_string_limit < 0:
            raise ConfigError(f"--strace-string-limit {strace_string_limit}: a number of bytes")
        self.strace_string_limit = strace_string_limit
        self.mounts = [parse_mount(m) for m in mounts]
        self.hide = [_sandbox_path_option("--hide", p) for p in hide]
        self.expose = [_sandbox_path_option("--expose", p) for p in expose]
        both = set(self.hide) & set(self.expose)
        if both:
            raise ConfigError(f"--hide and --expose {sorted(both)[0]}: one or the other")
        self.audit = audit
        if network not in NETWORK_MODES:
            raise ConfigError(f"--network={network}: one of {', '.join(NETWORK_MODES)}")
        self.network = network
        if net_allow and network != "sandbox":
            raise ConfigError(f"--net-allow: only with --network=sandbox")
        from sentry.net.policy import BadRule, Policy
        try:
            self.net_policy = Policy(net_allow)
        except BadRule as e:
            raise ConfigError(f"--net-allow {e}: CIDR or CIDR:PORT (an IPv6 one with a port: [CIDR]:PORT)")
        if not isinstance(pids_limit, int) or pids_limit < 0:
            raise ConfigError(f"--pids-limit {pids_limit}: a number of tasks, 0 for no limit")
        self.pids_limit = pids_limit
        self.uid = _id_option("--uid", uid)
        self.gid = _id_option("--gid", gid)
        self.groups = [_id_option("--groups", g) for g in (groups or [])]
        if cpus is not None and (not isinstance(cpus, int) or not 1 <= cpus <= len(os.sched_getaffinity(0))):
            raise ConfigError(f"--cpus {cpus}: between 1 and the {len(os.sched_getaffinity(0))} CPUs sentry may use")
        self.cpus = cpus
        if memory is not None:
            try:
                memory = parse_bytes(str(memory))
            except ValueError:
                raise ConfigError(f"--memory {memory}: a size in bytes, with an optional k, m, g or t suffix")
            if memory < 1 << 20:
                raise ConfigError(f"--memory {memory}: at least 1m")
        self.memory = memory
        self.kernel_release = kernel_release
        self.limits = Limits(cpus, memory)


# none: a private loopback only; sandbox: that, plus outbound connections the
# Sentry makes under --net-allow and --publish'ed ports; host: the host's
# network, not isolated (README, Security)
NETWORK_MODES = ("sandbox", "none", "host")


def _id_option(name, value):
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} {value}: a numeric id")
    if not 0 <= v <= ID_MAX:
        raise ConfigError(f"{name} {value}: between 0 and {ID_MAX}")
    return v


def _sandbox_path_option(name, value):
    """An absolute sandbox path other than / and outside the synthetic trees."""
    if not isinstance(value, str) or not value.startswith("/") or os.path.normpath(value) == "/":
        raise ConfigError(f"{name} {value}: an absolute path other than /")
    path = os.path.normpath(value)
    if hidden.is_synthetic(path):
        raise ConfigError(f"{name} {value}: /proc, /sys and /dev are the sandbox's own already")
    return path


MOUNT_TYPES = {"bind": {"src", "dst", "ro", "rw", "sockets"}, "tmpfs": {"dst", "size"}}
TMPFS_SIZE = re.compile(r"[0-9]+[kmgKMG%]?")


def parse_mount(spec):
    """--mount type=bind,src=HOST,dst=/PATH[,ro][,sockets] | type=tmpfs,dst=/PATH[,size=N[k|m|g|%]]"""
    opts = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not key or key in opts:
            raise ConfigError(f"--mount {spec}: empty or repeated option {key!r}")
        opts[key] = value if eq else True
    kind = opts.get("type")
    if kind not in MOUNT_TYPES:
        raise ConfigError(f"--mount {spec}: type must be one of {', '.join(sorted(MOUNT_TYPES))}")
    unknown = set(opts) - MOUNT_TYPES[kind] - {"type"}
    if unknown:
        raise ConfigError(f"--mount {spec}: unknown option(s) {', '.join(sorted(unknown))} for type={kind}")
    for flag in ("ro", "rw", "sockets"):
        if flag in opts and opts[flag] is not True:
            raise ConfigError(f"--mount {spec}: {flag} takes no value")
    if "size" in opts and not (isinstance(opts["size"], str) and TMPFS_SIZE.fullmatch(opts["size"])):
        raise ConfigError(f"--mount {spec}: size must be a number of bytes, with k, m, g or % (of memory) after it")
    dst = opts.get("dst")
    if not isinstance(dst, str) or not dst.startswith("/") or os.path.normpath(dst) == "/":
        raise ConfigError(f"--mount {spec}: dst must be an absolute path other than /")
    opts["dst"] = os.path.normpath(dst)
    if kind == "bind":
        src = opts.get("src")
        if not isinstance(src, str) or not src:
            raise ConfigError(f"--mount {spec}: src is missing")
        if not os.path.exists(src):
            raise ConfigError(f"--mount {spec}: src {src}: no such file or directory")
        if not os.path.isdir(src):
            raise ConfigError(f"--mount {spec}: src {src}: only directories can be bound")
    return opts


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
    mounts.add(_dev(mountns, private, pts))
    if pts is not None:
        mounts.add(pts)
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
    sysdir = os.path.join(private, "sys")
    os.mkdir(sysdir)
    sysfs.build(sysdir, cfg.limits)
    mounts.add(Mount("/sys", sysdir, readonly=True))
    return mounts


def _dev(mountns, private, pts):
    """/dev of the sandbox's own (a tmpfs of the helper's); without a private
    mount namespace, the host's narrowed to the same names."""
    if mountns is not None:
        try:
            return DevMount("/dev", mountns, os.path.join(private, "dev"), pts=pts is not None,
                            mounted=["shm"] + (["pts"] if pts is not None else []))
        except OSError as e:
            log.debug("no /dev of the sandbox's own (%s): the host's, narrowed", e.strerror)
    return DevMount("/dev")


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


def check_config(cfg):
    if not cfg.argv:
        raise ConfigError("no command given (usage: sentry run [options] -- CMD [ARGS...])")
    if cfg.rootfs is not None:
        if not os.path.exists(cfg.rootfs):
            raise ConfigError(f"rootfs {cfg.rootfs}: no such directory")
        if not os.path.isdir(cfg.rootfs):
            raise ConfigError(f"rootfs {cfg.rootfs}: not a directory")
    if cfg.overlay_dir is not None:
        if os.path.exists(cfg.overlay_dir) and not os.path.isdir(cfg.overlay_dir):
            raise ConfigError(f"--overlay-dir {cfg.overlay_dir}: not a directory")
        try:
            os.makedirs(cfg.overlay_dir, exist_ok=True)
            probe = os.path.join(cfg.overlay_dir, ".sentry-xattr-probe")
            with open(probe, "w"):
                pass
            try:
                os.setxattr(probe, "user.sentry.probe", b"")
            finally:
                os.unlink(probe)
        except OSError as e:
            raise ConfigError(f"--overlay-dir {cfg.overlay_dir}: {e.strerror} (the upper layer needs a "
                              "writable directory on a file system with user xattrs)")


def _host_cwd(cfg, mounts):
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


def _send_to_sentry(sock, userns):
    """In the guest's first process, its last step before the main filter:
    what only it can make goes to the Sentry, and it keeps no copy -- the
    listener of the fd handover filter (platform/handover.py), and, when it
    has one, its user namespace (for the fd holder, platform/fdholder.py)."""
    try:
        fds = [handover.install_filter()]
        if userns:
            fds.append(os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC))
        socket.send_fds(sock, [b"s"], fds)
    except OSError as e:
        os.write(2, f"sentry: cannot set up the fd handover: {e.strerror}\n".encode())
        os._exit(125)
    for fd in fds:
        os.close(fd)
    sock.close()


def _guest_start(cfg, mounts, filt, ready_r, setup_w, host_cwd, userns, netns):
    """Runs in the forked child: becomes the sandbox's first process."""
    try:
        if os.read(ready_r, 1) != b"x":         # the Sentry could not trace us
            os._exit(125)
        if netns is not None:
            try:
                _mountns.join_network(netns.netns_fd, netns.userns_fd)
            except OSError as e:
                # never the host's network instead
                os.write(2, f"sentry: cannot enter the sandbox's network namespace: {e.strerror}\n".encode())
                os._exit(125)
        if userns:
            try:
                privileges.enter_user_namespace(cfg.uid, cfg.gid)
            except OSError as e:
                os.write(2, f"sentry: cannot enter a user namespace: {e.strerror}\n".encode())
                os._exit(125)
        # The whole reserved range is taken: a slot no mount uses would
        # otherwise be the kernel's to hand out, as an fd every call on which
        # the Sentry answers EBADF (a guest opening 1000 files could not close
        # them).  The filler is inert: an O_PATH fd on /dev/null.
        filler = os.open(os.devnull, O_PATH | os.O_CLOEXEC)
        hidden = {gfd: sfd for sfd, gfd in mounts.hidden_fds()}
        for gfd in range(HIDDEN_FD_BASE, HIDDEN_FD_BASE + MAX_MOUNTS):
            os.dup2(hidden.get(gfd, filler), gfd, inheritable=True)
        os.closerange(3, setup_w.fileno())
        os.closerange(setup_w.fileno() + 1, HIDDEN_FD_BASE)
        os.closerange(HIDDEN_FD_BASE + MAX_MOUNTS, 1 << 20)
        privileges.prctl(privileges.PR_SET_PDEATHSIG, signal.SIGKILL)
        # As the init of a PID namespace, it inherits the sandbox's orphans.
        privileges.prctl(privileges.PR_SET_CHILD_SUBREAPER, 1)
        cfg.limits.bind()
        # The kernel writes core files itself, in the process's cwd and not
        # through any syscall the Sentry sees: no core files.  1, not 0: a
        # core_pattern that pipes to a handler (systemd-coredump, apport)
        # ignores 0 and would hand the guest's memory to the host; the kernel
        # skips both kinds of dump for 1 (fs/coredump.c).
        resource.setrlimit(resource.RLIMIT_CORE, (1, 1))
        for res, soft, hard in cfg.rlimits:
            try:
                resource.setrlimit(res, (soft, hard))
            except (OSError, ValueError) as e:
                os.write(2, f"sentry: setrlimit {res} {soft}:{hard}: {getattr(e, 'strerror', None) or e}\n".encode())
                os._exit(125)
        # The guest's cwd is a real one, kept by the kernel (chdir is
        # rewritten, never emulated), read back through /proc/<tid>/cwd.
        os.chdir(host_cwd)
        # The dispositions and mask sentry itself was started with, not the
        # interpreter's or the Sentry's (sentry/startsignals.py).
        startsignals.restore()
        privileges.drop_all()
        _send_to_sentry(setup_w, userns)
        filt.load()
        # From here every call is trapped: PATH is searched inside the sandbox.
        os.execvpe(cfg.argv[0], cfg.argv, cfg.env)
    except OSError as e:
        code = 127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        msg = f"sentry: {cfg.argv[0]}: {'command not found' if code == 127 else e.strerror}\n"
        os.write(2, msg.encode())
        os._exit(code)
    except BaseException:
        os._exit(125)


def exit_code(status):
    if status is None:
        return 125
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 125


def run(cfg, on_ready=None):
    """Run cfg.argv in a new sandbox; returns the exit code as a shell reports it.
    on_ready(pid), if given, is called once the sandbox is set up and its
    first process (host pid `pid`) traced, before that process may exec: the
    OCI runtime's `create` reports there and waits for `start`
    (sentry/oci/commands.py)."""
    check_config(cfg)
    try:
        selfconfine.mode()
    except ValueError as e:
        raise ConfigError(str(e))
    _remove_stale_private_dirs()
    # The guest's private /tmp goes where the host keeps temporary files; the
    # synthetic /proc, rewritten at every lookup, on a memory file system
    # when there is one (on these machines a symlink+rename costs ~0.7 ms on
    # the disk and ~7 µs on tmpfs).
    private = tempfile.mkdtemp(prefix=f"sentry-{os.getpid()}-")
    scratch = tempfile.mkdtemp(prefix=f"sentry-{os.getpid()}-", dir=_memory_dir()) if _memory_dir() else private
    janitor = _janitor(private, scratch)
    mountns = outbound = holder = None
    trail = _audit.OFF
    try:
        kernel = None
        if cfg.audit is not None:
            try:
                trail = _audit.Audit(cfg.audit)
            except OSError as e:
                raise ConfigError(f"--audit {cfg.audit}: {e.strerror}")
        mountns = _start_mount_namespace(cfg, private)
        # Unprivileged, and user namespaces allowed (the helper has one): the
        # guest takes one too, where its files are its own (kernel/idmap.py).
        userns = os.geteuid() != 0 and mountns is not None
        if userns:
            idmap.set_current(idmap.IdMap((cfg.uid, os.geteuid()), (cfg.gid, os.getegid())))
        mounts = build_mounts(cfg, private, scratch, lambda: kernel, mountns)
        table = build_table()
        # --strace sees every call: all trap, and the native fast path stays off
        filt = seccomp.build(filter_rules(table, trace_all=bool(cfg.strace)))
        mm = mm_checked(table)
        seccomp.configure_native(staging.BASE, staging.SIZE, mounts, mm, fast_paths=not cfg.strace)
        strace = None
        if cfg.strace:
            from sentry.strace import Tracer
            strace = Tracer(cfg.strace_select, cfg.strace_timestamps, cfg.strace_durations,
                            cfg.strace_string_limit)
        kernel = Kernel(mounts, table, strace, cfg.pids_limit,
                        Credentials(cfg.uid, cfg.gid, cfg.groups), cfg.limits)
        kernel.mm_checked = frozenset(mm)
        kernel.uts["hostname"] = cfg.hostname
        kernel.audit = trail
        kernel.mountns = mountns
        if cfg.network != "host":
            # the network namespace holds the sandbox's abstract names apart:
            # the guest's own, as it gave them (getsockname, /proc/net/unix)
            kernel.abstract_prefix = b""
            kernel.netns_cookie = _netns_cookie(mountns)
        if cfg.network == "sandbox":
            from sentry.net.outbound import Outbound
            outbound = kernel.outbound = Outbound(private)
            kernel.net_policy = cfg.net_policy
        if cfg.kernel_release:
            kernel.uts["release"] = cfg.kernel_release

        holder = FdHolder()
        # Orphaned guests re-parent to the Sentry (they stay traced and reaped).
        privileges.prctl(privileges.PR_SET_CHILD_SUBREAPER, 1)
        ready_r, ready_w = os.pipe()
        setup_r, setup_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        host_cwd = _host_cwd(cfg, mounts)      # the Sentry's fds are the child's no more
        pid = os.fork()
        if pid == 0:
            os.close(ready_w)
            setup_r.close()
            _guest_start(cfg, mounts, filt, ready_r, setup_w, host_cwd, userns,
                         mountns if cfg.network != "host" else None)
        os.close(ready_r)
        setup_w.close()
        try:
            ptrace.seize(pid)
        except OSError as e:
            os.close(ready_w)                   # the child gives up at once
            os.waitpid(pid, 0)
            raise ConfigError(f"cannot trace the sandbox's first process ({e.strerror}): is sentry "
                              "itself being traced, or is ptrace restricted here "
                              "(kernel.yama.ptrace_scope, a seccomp profile)?")
        # A non-dumpable Sentry cannot be inspected through /proc by its
        # guests.  Only now: a child forked non-dumpable could not be traced
        # without CAP_SYS_PTRACE, i.e. by an unprivileged sentry.
        privileges.prctl(privileges.PR_SET_DUMPABLE, 0)
        # The Sentry creates files for guests with modes it computes from the
        # guest's own umask; its own must not mask them again.
        os.umask(0)
        kernel.adopt_init(pid)
        if on_ready is not None:
            on_ready(pid)
        os.write(ready_w, b"x")
        os.close(ready_w)
        kernel.handover_listener = _receive_setup(setup_r, holder)
        kernel.fd_holder = holder
        _confine(mountns)
        with _signals_forwarded_to(pid):
            status = kernel.run()
        if log.isEnabledFor(logging.DEBUG):
            _log_trap_counts(table)
        return exit_code(status)
    finally:
        trail.close()
        if holder is not None:
            holder.close()
        if mountns is not None:
            mountns.close()
        if outbound is not None:
            outbound.close()
        if janitor is not None:
            os.close(janitor)           # the janitor removes them now
        else:
            _discard(private, scratch)


def _receive_setup(sock, holder):
    """What the guest's first process sends before it execs (_send_to_sentry):
    the handover listener, returned, and its user namespace, where the fd
    holder goes -- or None if that process gave up first (it exits 125, and
    the Sentry's run reports that)."""
    with sock:
        try:
            _, fds, _, _ = socket.recv_fds(sock, 1, 2)
        except OSError:
            fds = []
    if not fds:
        return None
    userns = fds[1] if len(fds) > 1 else None
    try:
        holder.start(userns)
        log.debug("the fd holder is host %d", holder.pid)
    except OSError as e:
        raise ConfigError(f"the fd holder could not start: {e.strerror or e}")
    finally:
        if userns is not None:
            os.close(userns)
    return fds[0]


SO_NETNS_COOKIE = 71


def _netns_cookie(mountns):
    """The sandbox's network namespace by its cookie (SO_NETNS_COOKIE, which
    any socket tells without privilege): sentry/net tells the sandbox's
    sockets from the host's by it, the Sentry holding no CAP_NET_ADMIN."""
    with socket.socket(fileno=mountns.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        return s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)


def _confine(mountns):
    """Set-up is over: the mount helper, then the Sentry itself, keep only the
    capabilities and host syscalls they use from here on
    (platform/selfconfine.py).  Only now: the guest's first process is
    forked, so it never inherits the Sentry's filter (stacked on its own,
    that filter's TRAP would outrank the guest's TRACE and kill it)."""
    try:
        if mountns is not None:
            mountns.confine()
        selfconfine.confine("sentry")
    except OSError as e:
        raise ConfigError(f"the Sentry cannot confine itself ({e.strerror}): stopping")


JANITOR_PATIENCE = 30                   # seconds it retries a directory a dying guest still fills


def _janitor(*dirs):
    """A process of its own (not the Sentry's child, in a session of its
    own) that removes the private directories when the Sentry is gone: it
    waits for the end of a pipe whose other end only the Sentry holds, which
    closes at the Sentry's exit, even by SIGKILL.  The guests die with the
    Sentry (PTRACE_O_EXITKILL); one may finish a call that creates a file
    meanwhile, so a directory is removed until it is gone (nothing can be
    made in a removed directory).  Returns the Sentry's end; None if no
    process could be had (then _discard at exit, and the next Sentry
    removes what a killed one left: _remove_stale_private_dirs)."""
    r, w = os.pipe()                    # not inherited across exec; guests close it
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:
        try:
            os.close(w)
            if os.fork() == 0:
                os.setsid()
                try:
                    selfconfine.confine("janitor")
                except OSError as e:
                    # it goes on unconfined: the directories must go
                    os.write(2, f"sentry: the janitor cannot confine itself ({e.strerror})\n".encode())
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, r)
                os.closerange(r + 1, 1 << 16)
                while True:
                    try:
                        if not os.read(r, 1):
                            break
                    except InterruptedError:
                        continue
                    except OSError:
                        break
                deadline = time.monotonic() + JANITOR_PATIENCE
                while True:
                    left = [d for d in dirs if os.path.lexists(d)]
                    for d in left:
                        _remove_tree(d)
                    if not any(os.path.lexists(d) for d in left) or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        finally:
            os._exit(0)
    os.close(r)
    os.waitpid(pid, 0)
    return w


def _discard(*dirs):
    """Remove the private directories from a child process, so that the
    guest's exit status is not held up by the disk: an overlay's upper layer
    holds a directory for every directory the guest looked at, and removing
    them takes as long as making them."""
    try:
        pid = os.fork()
    except OSError:
        pid = None                  # no child: the Sentry removes them itself
    if pid:
        return
    try:
        if pid == 0:
            # the caller waits for the end of our output, not for this
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
        for d in dirs:
            _remove_tree(d)
    finally:
        if pid == 0:
            os._exit(0)


def _remove_tree(top):
    """rmtree, read-only directories included (a copied-up 0555 directory,
    /sys's): without CAP_DAC_OVERRIDE, their owner adds the write bit first."""
    if os.geteuid() != 0:
        # never through a symlink: the guest may have planted one leading out
        todo = [top]
        while todo:
            try:
                with os.scandir(todo.pop()) as entries:
                    for e in entries:
                        if e.is_dir(follow_symlinks=False):
                            os.chmod(e.path, 0o700)
                            todo.append(e.path)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


def _start_mount_namespace(cfg, private):
    """The helper that mounts devpts and sized tmpfs and binds unix sockets
    (vfs/mountns.py); None where no mount namespace can be had, and then
    no /dev/pts, and a tmpfs size= is refused."""
    try:
        return _mountns.MountNamespace(private, network=cfg.network != "host")
    except _mountns.Unavailable as e:
        if cfg.network != "host":
            raise ConfigError(f"--network={cfg.network}: the sandbox's network needs a private network namespace, "
                              f"and none can be had here ({e}): run as root or allow unprivileged user namespaces, "
                              "or say --network=host (not isolated)")
        if any("size" in m for m in cfg.mounts):
            raise ConfigError(f"--mount type=tmpfs,size=…: the size limit needs a private mount namespace, "
                              f"and none can be had here ({e}): run as root or allow unprivileged user namespaces")
        log.debug("no private mount namespace (%s): no /dev/pts, unix socket names are their last component", e)
        return None


MEMORY_DIRS = ("/dev/shm",)


def _memory_dir():
    for d in MEMORY_DIRS:
        if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def _log_trap_counts(table):
    from sentry._native import lib
    counts = sorted(((lib.sn_traps_of(nr), e.name) for nr, e in table.entries.items()), reverse=True)
    log.debug("traps: %s; %s", ptrace.counters(),
              ", ".join(f"{name} {n}" for n, name in counts if n))


def _remove_stale_private_dirs():
    """A Sentry killed with SIGKILL cannot remove its private directories;
    the next one does, once that Sentry's pid is gone."""
    for top in {tempfile.gettempdir(), _memory_dir()} - {None}:
        for name in os.listdir(top):
            parts = name.split("-")
            if len(parts) != 3 or parts[0] != "sentry" or not parts[1].isdigit():
                continue
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:
                _remove_tree(os.path.join(top, name))
            except OSError:
                pass


class _signals_forwarded_to:
    """Ctrl-C reaches the guest through the terminal's process group; SIGTERM
    and SIGHUP sent to the Sentry are passed on to the guest's init."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.saved = {}
        for s in (signal.SIGINT, signal.SIGQUIT):
            self.saved[s] = signal.signal(s, signal.SIG_IGN)
        for s in (signal.SIGTERM, signal.SIGHUP):
            self.saved[s] = signal.signal(s, self._forward)

    def _forward(self, sig, frame):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)
