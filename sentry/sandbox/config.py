"""A sandbox's configuration: Config, what the command line and config.json
make of their options, and the checks made before anything starts."""
import os
import re

from sentry.kernel.credentials import ID_MAX
from sentry.kernel.limits import Limits, parse_bytes
from sentry.fsimpl import hidden
from syscalls.table import build_table


class ConfigError(Exception):
    """A bad option or config: one clear line, nothing started."""


class Config:
    def __init__(self, argv, rootfs=None, cwd=None, env=None, hostname="sentry",
                 strace=False, mounts=(), pids_limit=4096, uid=0, gid=0, groups=None,
                 cpus=None, memory=None, kernel_release=None, overlay=False, overlay_dir=None,
                 hide=(), expose=(), audit=None, readonly_root=False, rlimits=(),
                 strace_time=None, strace_string_limit=32,
                 network="sandbox", net_allow=(), dns=(), publish=(),
                 start_gate=None, before_exec=None, guest_seccomp=None, pass_fds=(), sysctl=None,
                 no_new_privs=False, netns=None, shown_mounts=None, console=None, pids_limit_file=None,
                 domainname=None, time_offsets=None):
        self.argv = argv
        # the UTS namespace's NIS domain name (the OCI spec's domainname;
        # None: "(none)", as a new UTS namespace starts)
        self.domainname = domainname
        # the OCI spec's linux.timeOffsets, as /proc/<pid>/timens_offsets
        # takes them: a time namespace each process enters at its first
        # execve (kernel/timens.py with_offsets); None: the host's clocks
        self.time_offsets = time_offsets
        # a file the pids limit is read from at every fork, which may change
        # it while the sandbox runs (kernel/limits.py PidsLimit: the OCI
        # runtime's `update`); pids_limit until it does
        self.pids_limit_file = pids_limit_file
        # the OCI console: console(master, name) hands over the master of a
        # pty made at set-up, of the sandbox's own devpts when it has one
        # (its slave then reads /dev/pts/N inside, as under runc), whose
        # slave becomes the Sentry's stdio and controlling terminal, and so
        # the guest's (sandbox/start.py)
        self.console = console
        # how /proc/mounts names the mounts at these sandbox paths, {path:
        # (source, type, flags)}: the OCI spec's words for its own mounts;
        # an mqueue among them is mounted (the sandbox's message queues)
        self.shown_mounts = dict(shown_mounts or {})
        # the OCI spec's network namespace with a path: the sandbox's network
        # namespace is that one, joined as it is (--network=none otherwise
        # makes a fresh one); the engine's choice, as under runc
        self.netns = netns
        # the guest starts with no_new_privs set (the OCI process's
        # noNewPrivileges), as it does anyway when sentry's caller had it
        self.no_new_privs = no_new_privs
        # the OCI spec's linux.sysctl: set by the namespace helper in the
        # sandbox's IPC and network namespaces (vfs/mountns.py)
        self.sysctl = dict(sysctl or {})
        # the OCI runtime's exec.fifo: the first process opens it to write
        # and so waits until `start` opens it to read, then says "0"; what
        # stops it before its execve it writes there too (guest.first_process)
        self.start_gate = start_gate
        # called in the first process once its filter is loaded, just before
        # its execve (so as a guest): an error line, or None to go on (the
        # OCI startContainer hooks)
        self.before_exec = before_exec
        # a seccomp filter of the guest's own (platform/seccomp.py
        # GuestProfile: the OCI profile), loaded on top of the Sentry's by
        # each process the sandbox starts, just before its execve
        self.guest_seccomp = guest_seccomp
        # fds of sentry's caller the first process gets at the same numbers
        # (the OCI runtime's --preserve-fds: 3, 4, ...); the Sentry drops
        # its copies once that process is forked
        self.pass_fds = list(pass_fds)
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
        # (the strace package, python-ptrace's tables with it, only when asked for)
        self.strace_timestamps, self.strace_durations = None, False
        if strace_time:
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
        if netns is not None:
            if network != "none" or not os.path.isabs(netns):
                raise ConfigError(f"network namespace {netns}: an absolute path, with --network=none only")
            try:
                ours, theirs = os.stat("/proc/self/ns/net"), os.stat(netns)
            except OSError as e:
                raise ConfigError(f"network namespace {netns}: {e.strerror}")
            if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
                # its sockets would pass for the sandbox's own (net/): the
                # host's network is --network=host, which says what it is
                raise ConfigError(f"network namespace {netns}: the host's own; say dev.sentry.network=host")
        if net_allow and network != "sandbox":
            raise ConfigError(f"--net-allow: only with --network=sandbox")
        from sentry.net import dns as _dns
        if dns and network != "sandbox":
            raise ConfigError("--dns: only with --network=sandbox")
        try:
            # None: the host's resolvers; []: no DNS relay
            self.dns = _dns.parse_dns_option(list(dns))
        except ValueError as e:
            raise ConfigError(f"--dns {e}: an IPv4 or IPv6 address (not link-local), or none")
        from sentry.net import publish as _publish
        if publish and network != "sandbox":
            raise ConfigError("--publish: only with --network=sandbox")
        self.publish = []
        for spec in publish:
            try:
                self.publish.append(_publish.parse(spec))
            except _publish.BadSpec:
                raise ConfigError(f"--publish {spec}: HOSTPORT:PORT or HOSTPORT:PORT/udp")
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
    """--mount type=bind,src=HOST,dst=/PATH[,ro][,sockets] (HOST a directory or a
    regular file) | type=tmpfs,dst=/PATH[,size=N[k|m|g|%]]"""
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
        if not (os.path.isdir(src) or os.path.isfile(src)):
            raise ConfigError(f"--mount {spec}: src {src}: only directories and regular files can be bound")
    return opts


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
