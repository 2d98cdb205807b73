"""run(): a sandbox from its Config to its first process's exit status --
the mount table, the Kernel and its table, the first process, the helpers,
and the Sentry confining itself."""
import gc
import logging
import os
import signal
import socket
import struct

from sentry.kernel import audit as _audit
from sentry.kernel.kernel import Kernel
from sentry.kernel import idmap, timens
from sentry.platform import privileges, ptrace, seccomp, selfconfine, spawn, staging
from sentry.platform.fdholder import FdHolder
from sentry.vfs import mountns as _mountns
from sentry.kernel.credentials import Credentials
from syscalls.table import build_table, filter_rules, mm_checked
from sentry.sandbox.config import ConfigError, check_config
from sentry.sandbox.guest import exec_process, first_process, receive_from_guest
from sentry.sandbox import spawner as _spawner
from sentry.sandbox import mounts as _mounts
from sentry.sandbox import privatedirs

log = logging.getLogger("sentry")


def exit_code(status):
    if status is None:
        return 125
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 125


def run(cfg, on_ready=None, control=None):
    """Run cfg.argv in a new sandbox; returns the exit code as a shell reports it.
    on_ready(pid, spawner, enter_namespaces), if given, is called once the
    sandbox is set up and its first process (host pid `pid`) traced, before
    that process goes on: the OCI runtime's `create` runs its hooks and
    reports there (sentry/oci/commands.py); enter_namespaces() puts the
    calling process in the sandbox's IPC and network namespaces (None:
    there are none).  control: the path of a unix socket where
    `sentry exec` asks for new processes in this sandbox (sandbox/spawner.py;
    `spawner` is then the host pid of the helper that serves it, else None)."""
    check_config(cfg)
    try:
        selfconfine.mode()
    except ValueError as e:
        raise ConfigError(str(e))
    # The guest's private /tmp goes where the host keeps temporary files; the
    # synthetic /proc, rewritten at every lookup, on a memory file system
    # when there is one (on these machines a symlink+rename costs ~0.7 ms on
    # the disk and ~7 µs on tmpfs).
    private = privatedirs.make(privatedirs.temp_dir())
    scratch = privatedirs.make(privatedirs.memory_dir()) if privatedirs.memory_dir() else private
    janitor = privatedirs.janitor(private, scratch)
    mountns = outbound = holder = forwarder = None
    trail = _audit.OFF
    try:
        kernel = None
        if cfg.audit is not None:
            try:
                trail = _audit.Audit(cfg.audit)
            except OSError as e:
                raise ConfigError(f"--audit {cfg.audit}: {e.strerror}")
        # the handlers' table (importing them is most of its cost) is built
        # while the namespace helper sets up
        built = []
        mountns = _start_mount_namespace(cfg, private, meanwhile=lambda: built.append(build_table()))
        table = built[0] if built else build_table()
        # Unprivileged, and user namespaces allowed (the helper has one): the
        # guest takes one too, where its files are its own (kernel/idmap.py).
        userns = os.geteuid() != 0 and mountns is not None
        if userns:
            idmap.set_current(idmap.IdMap((cfg.uid, os.geteuid()), (cfg.gid, os.getegid())))
        mounts = _mounts.build_mounts(cfg, private, scratch, lambda: kernel, mountns)
        if cfg.console is not None:
            _console(cfg, mounts)
        # --strace sees every call: all trap, and the native fast path stays off
        filt = seccomp.build(filter_rules(table, trace_all=bool(cfg.strace), private_ipc=mountns is not None,
                                          shm_capped=mountns is not None and mountns.shm_capped))
        mm = mm_checked(table)
        seccomp.configure_native(staging.BASE, staging.SIZE, mounts, mm, fast_paths=not cfg.strace)
        strace = None
        if cfg.strace:
            from sentry.strace import Tracer
            strace = Tracer(cfg.strace_select, cfg.strace_timestamps, cfg.strace_durations,
                            cfg.strace_string_limit)
        kernel = Kernel(mounts, table, strace, _pids_limit(cfg),
                        Credentials(cfg.uid, cfg.gid, cfg.groups,
                                    no_new_privs=cfg.no_new_privs or privileges.no_new_privs()),
                        cfg.limits)
        kernel.mm_checked = frozenset(mm)
        kernel.uts["hostname"] = cfg.hostname
        if cfg.domainname is not None:
            kernel.uts["domainname"] = cfg.domainname
        if cfg.time_offsets is not None:
            kernel.container_timens = timens.with_offsets(cfg.time_offsets)
        kernel.audit = trail
        kernel.mountns = mountns
        kernel.sysctl = mountns.sysctl if mountns is not None else {}     # /proc/sys shows them
        kernel.private_ipc = mountns is not None        # the guest joins its IPC namespace
        kernel.shm_capped = mountns is not None and mountns.shm_capped
        if cfg.network != "host":
            # the network namespace holds the sandbox's abstract names apart:
            # the guest's own, as it gave them (getsockname, /proc/net/unix)
            kernel.abstract_prefix = b""
            kernel.netns_cookie = _netns_cookie(mountns)
        if cfg.network == "sandbox":
            from sentry.net.outbound import Outbound
            _eth0(mountns, kernel)
            outbound = kernel.outbound = Outbound()
            _outbound_names(mountns, kernel)
            _udp_relays(mountns, kernel)
            kernel.net_policy = cfg.net_policy
            _dns_relay(cfg, mountns, outbound, kernel)
            if cfg.publish:
                forwarder = _publish(cfg, mountns)
        if cfg.network != "host":
            from sentry.kernel.netns import Namespaces, NetNamespace
            kernel.netns = Namespaces(NetNamespace(None, kernel.netns_cookie, None, mountns.interfaces,
                                                   mountns.port_start))
        _net_fast_path(kernel)
        if cfg.kernel_release:
            kernel.uts["release"] = cfg.kernel_release

        holder = FdHolder()
        # the helpers' intermediate children gone first: their orphans must
        # not become the Sentry's
        spawn.reap_intermediates()
        # Orphaned guests re-parent to the Sentry (they stay traced and reaped).
        privileges.prctl(privileges.PR_SET_CHILD_SUBREAPER, 1)
        ready_r, ready_w = os.pipe()
        setup_r, setup_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        host_cwd = _mounts.host_cwd(cfg, mounts)      # the Sentry's fds are the child's no more
        listening = None
        if control is not None:
            try:
                listening = _spawner.bind(control)
            except OSError as e:
                raise ConfigError(f"{control}: cannot listen there: {e.strerror}")
        pid = os.fork()
        if pid == 0:
            os.close(ready_w)
            setup_r.close()
            first_process(cfg, mounts, filt, ready_r, setup_w, host_cwd, userns, mountns)
        os.close(ready_r)
        setup_w.close()
        for fd in cfg.pass_fds:
            os.close(fd)            # the first process holds them now
        try:
            ptrace.seize(pid)
        except OSError as e:
            os.close(ready_w)                   # the child gives up at once
            os.waitpid(pid, 0)
            raise ConfigError(f"cannot trace the sandbox's first process ({e.strerror}): is sentry "
                              "itself being traced, or is ptrace restricted here "
                              "(kernel.yama.ptrace_scope, a seccomp profile)?")
        spawner = None
        if listening is not None:
            # forked now: unconfined and dumpable, as guests must start
            root_cwd = _mounts.host_cwd(_at_root(cfg), mounts)

            def launch(req, fds, guest_userns):
                exec_process(cfg, mounts, filt, mountns, root_cwd, req, fds, guest_userns)
            try:
                spawner = _spawner.Spawner(listening, launch, lambda: _pty(mounts), close=(ready_w,))
            except (OSError, _spawner.SpawnerError) as e:
                raise ConfigError(f"cannot start the exec helper: {getattr(e, 'strerror', None) or e}")
            kernel.adopt_spawner(spawner.pid, spawner.listener)
        # A non-dumpable Sentry cannot be inspected through /proc by its
        # guests.  Only now: a child forked non-dumpable could not be traced
        # without CAP_SYS_PTRACE, i.e. by an unprivileged sentry.
        privileges.prctl(privileges.PR_SET_DUMPABLE, 0)
        # The Sentry creates files for guests with modes it computes from the
        # guest's own umask; its own must not mask them again.
        os.umask(0)
        kernel.adopt_init(pid)
        if on_ready is not None:
            on_ready(pid, spawner.pid if spawner is not None else None,
                     (lambda: _mountns.join_namespaces(mountns.userns_fd, mountns.ipcns_fd, mountns.netns_fd))
                     if mountns is not None else None)
        os.write(ready_w, b"x")
        os.close(ready_w)
        kernel.handover_listener = _receive_setup(setup_r, holder, spawner)
        kernel.fd_holder = holder
        _confine(mountns)
        # Set-up's objects (modules, the table, the mounts) live as long as
        # the Sentry: the collector need not walk them again at every full
        # collection of the tracer loop's garbage (gc.freeze), and it was
        # off while they were made (sentry/cli.py); a cycle among them is
        # never collected, at the cost of a few bytes
        gc.freeze()
        gc.enable()
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
            if kernel.udp_relays is not None:
                kernel.udp_relays.close()
        if forwarder is not None:
            forwarder.close()
        if janitor is not None:
            os.close(janitor)           # the janitor removes them now
        else:
            privatedirs.discard(private, scratch)


def _console(cfg, mounts):
    """The terminal asked for (Config.console): a pty of the sandbox's own
    devpts instance, so the guest's ttyname is /dev/pts/0 as in a
    container, or of the host's without one; its master handed over, its
    slave the Sentry's stdio and controlling terminal from now on (the
    Sentry leads a session of its own: the OCI container process's)."""
    from sentry.oci import console
    master, slave, name = _pty(mounts)
    try:
        cfg.console(master, name)
    except console.ConsoleError as e:
        os.close(slave)
        raise ConfigError(str(e))
    finally:
        os.close(master)
    console.become_terminal(slave)


def _pty(mounts):
    """A new pty, (master, slave, the slave's name): of the sandbox's own
    devpts instance, named /dev/pts/N inside as in a container, or of the
    host's where the sandbox has none."""
    pts = mounts.mounts.get("/dev/pts")
    if pts is not None and pts.kind == "devpts":
        master, slave, number = pts.open_pty()
        return master, slave, f"/dev/pts/{number}"
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    return master, slave, os.ttyname(slave)


def _at_root(cfg):
    """cfg with the sandbox's root as its cwd: where a process `exec` adds
    starts, before it changes to its own cwd inside the sandbox."""
    import copy
    c = copy.copy(cfg)
    c.cwd = "/"
    return c


def _receive_setup(sock, holder, spawner):
    """What the guest's first process sends before it execs (guest.send_to_sentry):
    the handover listener, returned, and its user namespace, where the fd
    holder goes, and every process the spawner starts -- or None if that
    process gave up first (it exits 125, and the Sentry's run reports that)."""
    with sock:
        fds = receive_from_guest(sock, 2)
    if not fds:
        return None
    userns = fds[1] if len(fds) > 1 else None
    try:
        holder.start(userns)
        log.debug("the fd holder is host %d", holder.pid)
        if spawner is not None:
            spawner.give_user_namespace(userns)
    except OSError as e:
        raise ConfigError(f"the fd holder could not start: {e.strerror or e}")
    finally:
        if userns is not None:
            os.close(userns)
    return fds[0]


def _publish(cfg, mountns):
    """--publish: the host ports, bound now (a taken one stops the run
    here), and the forwarder that crosses into the sandbox
    (sentry/net/publish.py)."""
    from sentry.net import publish
    try:
        listeners = publish.listen(cfg.publish)
    except OSError as e:
        host, port, proto = e.spec if hasattr(e, "spec") else (None, None, None)
        what = f"{host}:{port}" + ("/udp" if proto == "udp" else "") if host else "?"
        raise ConfigError(f"--publish {what}: host port {host}: {e.strerror}")
    try:
        return publish.Forwarder(listeners, mountns.netns_fd, mountns.userns_fd)
    except OSError as e:
        raise ConfigError(f"--publish: {e.strerror}")


def _eth0(mountns, kernel):
    """--network=sandbox: eth0, with its address and a default route to a
    gateway that reaches nothing beyond it (vfs/netns.py).  Where the kernel has no
    veth, the sandbox goes on with its loopback only, and a warning."""
    from sentry.vfs import netns
    try:
        mountns.add_eth0()
    except OSError as e:
        log.warning("no eth0 in the sandbox (%s): its loopback only", e.strerror or e)
        return
    kernel.sandbox_networks = (netns.ETH0.network,)


def _net_fast_path(kernel):
    """What native/fastnet.c may send and connect to without Python: any
    destination where the sandbox has no outbound policy, else only its own
    (connect.py inside); and the sandbox's namespace by its cookie, which
    tells its sockets (a connect on one needs no stop at its exit)."""
    from sentry._native import lib
    cookie = struct.unpack("<Q", kernel.netns_cookie)[0] if kernel.netns_cookie else 0
    if kernel.outbound is None:
        lib.sn_net_policy(1, 0, 0, cookie)
        return
    net = kernel.sandbox_networks[0] if kernel.sandbox_networks else None
    lib.sn_net_policy(0, int(net.network_address) if net else 0, int(net.netmask) if net else 0, cookie)


def _outbound_names(mountns, kernel):
    """What the guest learns of its outbound sockets is the sandbox's
    (sentry/net/hostsock.py): their names, and interface queries answered
    by sockets of the sandbox's namespace."""
    from sentry.net.hostsock import Names
    kernel.outbound_names = Names()
    for family in (socket.AF_INET, socket.AF_INET6):
        kernel.netns_probes[family] = mountns.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)


def _udp_relays(mountns, kernel):
    """UDP to the outside (sentry/net/udp.py): the sockets of the sandbox's
    namespace its relays will bind, made now (the helper makes none once
    set-up is over)."""
    from sentry.net.udp import RELAYS_MAX, RELAYS6_MAX, Relays
    if not kernel.sandbox_networks:
        return                          # no eth0: nothing leaves the sandbox
    pool = mountns.sockets(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, RELAYS_MAX)
    try:
        pool6 = mountns.sockets(socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, RELAYS6_MAX)
    except OSError:
        pool6 = []                      # a kernel without IPv6: no IPv6 destination to relay
    # how a destination's "port unreachable" reaches the guest (net/udp.py)
    icmp = _icmp_sender(mountns, socket.AF_INET, socket.IPPROTO_ICMP, SOL_RAW, struct.pack("<I", 0xFFFFFFFF))
    icmp6 = _icmp_sender(mountns, socket.AF_INET6, socket.IPPROTO_ICMPV6, socket.IPPROTO_ICMPV6, b"\xff" * 32)
    kernel.udp_relays = Relays(mountns, pool, pool6, icmp, icmp6)


SOL_RAW, ICMP_FILTER = 255, 1          # ICMP6_FILTER is 1 too


def _icmp_sender(mountns, family, proto, level, block_all):
    """A raw socket of the sandbox's namespace for sending ICMP errors, its
    filter set to let no message in (it is never read); None if it cannot
    be had (an ICMPv6 one on a kernel without IPv6)."""
    try:
        fd = mountns.socket(family, socket.SOCK_RAW | socket.SOCK_CLOEXEC, proto)
    except OSError:
        return None
    try:
        with socket.socket(fileno=os.dup(fd)) as s:
            s.setsockopt(level, ICMP_FILTER, block_all)
    except OSError:
        pass                            # unfiltered: its queue fills and drops, unread
    try:
        # the relay writes the IP header: an error comes from its offender's
        # address, as the guest's error queue names it (SO_EE_OFFENDER)
        with socket.socket(fileno=os.dup(fd)) as s:
            s.setsockopt(*((socket.IPPROTO_IPV6, 36) if family == socket.AF_INET6 else (socket.IPPROTO_IP, 3)), 1)
    except OSError:
        pass                            # then it comes from the sandbox's own address
    return fd


def _dns_relay(cfg, mountns, outbound, kernel):
    """The sandbox's resolvers, relayed at their own addresses inside its
    network namespace (sentry/net/dns.py).  One that cannot be set up is
    left out, with a warning: resolution fails there as on a host whose
    resolver is down."""
    from sentry.net import dns
    for ip in (cfg.dns if cfg.dns is not None else dns.host_nameservers()):
        try:
            for _, inside, hosts in dns.set_up(mountns, [ip]):
                outbound.relay(inside, hosts)
            kernel.dns_addresses.add(ip)
        except OSError as e:
            log.warning("no DNS relay for %s: %s", ip, e.strerror or e)


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


def _pids_limit(cfg):
    """The sandbox's pids limit: --pids-limit's, or read from
    cfg.pids_limit_file at every fork (opened now, before the Sentry
    confines itself)."""
    from sentry.kernel.limits import PidsLimit
    if cfg.pids_limit_file is None:
        return PidsLimit(cfg.pids_limit)
    try:
        fd = os.open(cfg.pids_limit_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(f"the pids limit's file {cfg.pids_limit_file}: {e.strerror}")
    return PidsLimit(cfg.pids_limit, fd)


def _start_mount_namespace(cfg, private, meanwhile):
    """The helper that mounts devpts and sized tmpfs and binds unix sockets
    (vfs/mountns.py); None where no mount namespace can be had, and then
    no /dev/pts, and a tmpfs size= is refused.  meanwhile(): done while
    the helper starts."""
    try:
        return _mountns.MountNamespace(private, network=cfg.netns or cfg.network != "host", sysctl=cfg.sysctl,
                                       meanwhile=meanwhile)
    except _mountns.SysctlError as e:
        raise ConfigError(str(e))
    except _mountns.Unavailable as e:
        if cfg.netns:
            raise ConfigError(f"cannot join the network namespace {cfg.netns}: {e}")
        if cfg.sysctl:
            raise ConfigError(f"sysctl: the sandbox's namespaces hold them, and none can be had here ({e})")
        if cfg.network != "host":
            raise ConfigError(f"--network={cfg.network}: the sandbox's network needs a private network namespace, "
                              f"and none can be had here ({e}): run as root or allow unprivileged user namespaces, "
                              "or say --network=host (not isolated)")
        if any("size" in m for m in cfg.mounts):
            raise ConfigError(f"--mount type=tmpfs,size=…: the size limit needs a private mount namespace, "
                              f"and none can be had here ({e}): run as root or allow unprivileged user namespaces")
        log.debug("no private mount namespace (%s): no /dev/pts, unix socket names are their last component", e)
        return None


def _log_trap_counts(table):
    from sentry._native import lib
    counts = sorted(((lib.sn_traps_of(nr), lib.sn_python_stops_of(nr), e.name)
                     for nr, e in table.entries.items()), reverse=True)
    log.debug("traps (all/Python's): %s; %s", ptrace.counters(),
              ", ".join(f"{name} {n}/{py}" for n, py, name in counts if n))


class _signals_forwarded_to:
    """Ctrl-C reaches the guest through the terminal's process group; SIGTERM
    and SIGHUP sent to the Sentry are passed on to the guest's init."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.saved = {}
        # SIGIO: a lease break (loader.program.check_not_written), never a kill
        for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGIO):
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
