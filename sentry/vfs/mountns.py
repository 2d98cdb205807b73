"""A private mount namespace, where the Sentry has the kernel do what only it
can do honestly: a devpts instance of the sandbox's own (its ptys, numbered
from 0, and no other), a tmpfs whose size= really holds, a /dev that holds
only the sandbox's device nodes, a unix socket that the kernel itself reports
under the name the guest gave it.

All of it needs CAP_SYS_ADMIN in a mount namespace.  A helper process gets it
in a namespace of its own (inside a new user namespace when the Sentry is not
root), mounts there on directories of the Sentry's private directory, and
hands back fds on the results (SCM_RIGHTS).  Its mounts are private: nothing
propagates to the host's namespace, and everything vanishes with the helper.

Why a helper that stays: the kernel names a file by its path in the namespace
it was mounted in.  While the namespace lives, a pty's slave reads back as
<private dir>/pts/0 in /proc/<tid>/fd, a path the mount table maps into the
sandbox; after, only as "/0".  The helper exits when the Sentry closes its end
of the socket: at the Sentry's exit, even by SIGKILL.
"""
import errno
import fcntl
import json
import os
import re
import socket
import stat
import time

from sentry import hostids
from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.host import CONFINED, RESOLVE_NO_MAGICLINKS, openat2
from sentry.platform import spawn
from sentry.vfs import netns
from sentry.vfs.resolve import RESOLVE_IN_ROOT

SHMMAX = 1 << 40                  # the sandbox's largest System V shared memory segment
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x40000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
O_PATH = 0o10000000
# fds one reply may carry (the kernel's SCM_MAX_FD is 253): a pool of
# sockets comes in one round trip, not one each (the UDP relays' 64 round
# trips were a few ms of every start-up)
SOCKETS_MAX = 128
SYSVIPC_TABLES = ("msg", "sem", "shm")     # /proc/sysvipc's files
# The IPC namespace's own settings under /proc/sys (the kernel keeps a set of
# them per namespace): the guest reads and writes the sandbox's through the
# helper's O_PATH fds on them (fsimpl/proc.py: live files)
IPC_SETTINGS = tuple(f"kernel/{n}" for n in (
    "auto_msgmni", "msg_next_id", "msgmax", "msgmnb", "msgmni", "sem", "sem_next_id", "shm_next_id",
    "shm_rmid_forced", "shmall", "shmmax", "shmmni")) + tuple(f"fs/mqueue/{n}" for n in (
    "msg_default", "msg_max", "msgsize_default", "msgsize_max", "queues_max"))


class Unavailable(Exception):
    """No mount namespace can be had here (unprivileged user namespaces off)."""


class SysctlError(Exception):
    """A sysctl asked for (the OCI spec's linux.sysctl) that the sandbox's
    namespaces refused: the kernel's errno, in one line."""


def _check(r):
    """r, a native/host.c result, or its errno raised."""
    if r < 0:
        raise OSError(-r, os.strerror(-r))


def _mount(source, target, fstype, flags, data=None):
    _check(lib.sn_mount(os.fsencode(source) if source else b"none", os.fsencode(target),
                        fstype.encode() if fstype else ffi.NULL, flags,
                        data.encode() if data else ffi.NULL))


class MountNamespace:
    """The Sentry's end: requests to the helper, one at a time."""

    def __init__(self, workdir, network=False, sysctl=None, meanwhile=None):
        """workdir: the Sentry's private directory (mount points go there).
        network: the helper takes a private network namespace too, with its
        loopback up, or (a path) joins the one there as it is, for the guest
        to join (self.netns_fd, and, when the
        Sentry is not root, self.userns_fd: the user namespace that owns it,
        which the guest must enter first; sentry/sandbox/guest.py).
        Always a private IPC namespace too (self.ipcns_fd): the sandbox's own
        System V IPC objects and POSIX message queues, apart from the
        host's and other sandboxes'.
        sysctl: {"kernel.msgmax": "4096", "net.core.somaxconn": "64" ...}, set
        in those namespaces before anything runs there (names checked by the
        caller: sentry/oci/spec.py); self.sysctl: what they read back.
        meanwhile(): the caller's own work, done once the helper is forked
        and while it makes its namespaces (a new network namespace takes
        milliseconds), on another CPU where there is one."""
        self.netns_fd = self.userns_fd = self.ipcns_fd = None
        self.port_start = None
        self.sysvipc = self.ipc_sysctls = {}
        self.net_sysctls = {}         # "net/core/somaxconn" -> an O_PATH fd on it (net_sysctl_file)
        self.interfaces = {}          # the sandbox's interfaces: name -> index
        self.own_sockets = {}         # (protocol, field) -> what the Sentry's sockets add to /proc/net/sockstat
        self.scratch = os.path.join(workdir, "unix-bind")
        os.mkdir(self.scratch, 0o700)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        uid, gid, root = os.getuid(), os.getgid(), os.geteuid() == 0
        sentry = os.getpid()
        pid = os.fork()
        if pid == 0:
            # Twice forked: the helper is never the Sentry's child, so the
            # tracer loop's waitpid(-1) never meets it.
            try:
                self.sock.close()
                if os.fork() == 0:
                    _serve(theirs, uid, gid, root, sentry, network, sysctl or {})
            finally:
                os._exit(0)
        theirs.close()
        spawn.reaped_later(pid)
        if meanwhile is not None:
            meanwhile()
        reply, fds = self._receive()
        if reply is None:
            self.close()
            raise Unavailable("the mount namespace helper did not start")
        if reply.get("errno"):
            self.close()
            if reply.get("sysctl"):
                raise SysctlError(f"sysctl {reply['sysctl']}: {os.strerror(reply['errno'])}")
            raise Unavailable(reply.get("why") or os.strerror(reply["errno"]))
        self.sysctl = reply.get("sysctl", {})
        # ports below it need CAP_NET_BIND_SERVICE, which the Sentry checks
        # (the kernel lets anyone there: _open_low_ports); None: the kernel does
        self.port_start = reply.get("port_start")
        self.shm_capped = bool(reply.get("shm_capped"))
        self.interfaces = reply.get("interfaces", {})
        tables, sysctls = reply.get("sysvipc", []), reply.get("ipc_sysctls", [])
        if len(fds) != (1 if root else 2) + bool(network) + len(tables) + len(sysctls):
            for fd in fds:
                os.close(fd)
            self.close()
            raise Unavailable("the namespace helper sent no namespaces")
        for fd in fds:
            os.set_inheritable(fd, False)
        self.ipcns_fd = fds.pop(0)
        self.userns_fd = None if root else fds.pop(0)
        if network:
            self.netns_fd = fds.pop(0)
        self.sysvipc = {name: fds.pop(0) for name in tables}   # name -> its open table
        self.ipc_sysctls = dict(zip(sysctls, fds))     # "kernel/msgmax" -> an O_PATH fd on it

    def socket(self, family, kind, proto=0, netns=None):
        """A new socket in the private network namespace (the Sentry's own
        connections into the sandbox: --publish), or in the guest-made one
        `netns` (an fd on it: new_netns) for a guest's socket(2) there."""
        if netns is not None:
            (fd,) = self._request([netns], op="socket", family=family, kind=kind, proto=proto, count=1)
            return fd
        (fd,) = self.sockets(family, kind, 1, proto)
        return fd

    def socketpair(self, kind, proto, netns):
        """A pair of connected unix sockets in the guest-made namespace
        `netns` (an fd on it)."""
        return self._request([netns], op="socketpair", kind=kind, proto=proto)

    def new_netns(self):
        """(an fd on a new network namespace, its SO_NETNS_COOKIE, its
        ip_unprivileged_port_start as made: the Sentry's to enforce) for a
        guest's unshare(CLONE_NEWNET) or clone with it: made by the helper,
        which owns it (the guest holds no capability there), empty as a new
        one is on Linux (lo down, no route), ports below the sandbox's
        threshold open to the Sentry's check as in the sandbox's own."""
        reply, (fd,) = self._exchange(op="netns")
        return fd, bytes.fromhex(reply["cookie"]), reply.get("port_start")

    def net_file(self, netns, name):
        """An fd on /proc/net/<name> of the guest-made namespace `netns`, as
        a process there reads it (the file is bound to the namespace it was
        opened in)."""
        (fd,) = self._request([netns], op="net-file", name=name)
        return fd

    def sockets(self, family, kind, count, proto=0):
        """count new sockets in the private network namespace, in one
        request (a pool: the UDP relays'); at most SOCKETS_MAX."""
        if not 0 < count <= SOCKETS_MAX:
            raise ValueError(f"1 to {SOCKETS_MAX} sockets at a time")
        return self._request(op="socket", family=family, kind=kind, proto=proto, count=count)

    def add_address(self, address):
        """Add address (a /32 or /128) to the sandbox's `lo`, before set-up
        ends: where the DNS relay answers (sentry/net/dns.py)."""
        self._request(op="address", address=address)

    def add_local_route(self, address):
        """An outside address made the sandbox's own for what it
        receives, by a route (not an address: `ip addr` does not show it),
        at any time: where a UDP relay answers (sentry/net/udp.py)."""
        self._request(op="local", address=address)

    def net_sysctl(self, parts):
        """The sandbox's /proc/sys/net/<parts> (net_sysctl_view's reply, read
        there by the helper); OSError (ENOENT) for a name it does not have."""
        return self._exchange(op="sysctl", path=list(parts))[0]

    def net_sysctl_file(self, parts):
        """An O_PATH fd on the sandbox's /proc/sys/net/<parts>, a file (the
        helper's net_sysctl_file), kept for every later open of it, as the
        IPC settings' are: the names are the namespace's own, a fixed set
        (interfaces come and go only by sentry).  OSError (ENOENT) for a name
        it does not have."""
        key = "net/" + "/".join(parts)
        fd = self.net_sysctls.get(key)
        if fd is None:
            (fd,) = self._request(op="sysctl-file", path=list(parts))
            # close-on-exec by fcntl (os.set_inheritable's ioctl is not in
            # the Sentry's filter once it has confined itself)
            fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            self.net_sysctls[key] = fd
        return fd

    def write_setting(self, fd, name, data, offset=None):
        """Write data on fd, an open file of the sandbox's setting `name`
        ("net/ipv4/ip_forward"), as the helper, which holds CAP_NET_ADMIN
        over the namespace (syscalls/settings.py); at offset, or at the file
        position the open file keeps.  The count written; OSError with the
        kernel's errno."""
        reply, _ = self._exchange([fd], op="sysctl-write", path=name.split("/")[1:], data=data.hex(),
                                  offset=offset)
        return reply["written"]

    def add_eth0(self):
        """--network=sandbox: the sandbox's eth0 (vfs/netns.py), before set-up
        ends; its index joins self.interfaces."""
        self.interfaces = self._exchange(op="eth0")[0]["interfaces"]

    def set_link(self, index, up=None, mtu=None, netns=None):
        """A guest root's `ip link set` on interface `index` of the sandbox
        (up, down, MTU), or of the guest-made namespace `netns` (an fd),
        checked by sentry/net/links.py; raises OSError with the kernel's
        errno."""
        self._request([netns] if netns is not None else [], op="link", index=index, up=up, mtu=mtu)

    def add_loopback_address(self, ns_fd, address, prefix, scope, flags):
        """A guest root's `ip addr add` of a loopback address on lo of the
        guest-made namespace `ns_fd` (an fd), checked by sentry/net/links.py
        and again by the helper; raises OSError with the kernel's errno."""
        self._request([ns_fd], op="addr", address=address, prefix=prefix, scope=scope, flags=flags)

    def _receive(self):
        """(reply, fds); None when the helper is gone."""
        msg, fds, _, _ = socket.recv_fds(self.sock, 65536, SOCKETS_MAX)
        if not msg:
            return None, fds
        return json.loads(msg), fds

    def _request(self, fds=(), **req):
        """The fds the helper answers a request with."""
        return self._exchange(fds, **req)[1]

    def _exchange(self, fds=(), **req):
        """(the helper's reply, the fds it sent); its errno raised."""
        socket.send_fds(self.sock, [json.dumps(req).encode()], list(fds))
        reply, got = self._receive()
        if reply is None:
            raise OSError(errno.EIO, "the mount namespace helper is gone")
        if reply.get("errno"):
            for fd in got:
                os.close(fd)
            raise OSError(reply["errno"], os.strerror(reply["errno"]))
        return reply, got

    def mount(self, fstype, target, options, readonly=False):
        """Mount fstype on the directory target (a path in the Sentry's
        private directory, so the same in both namespaces); an O_PATH fd on
        the mounted root.  readonly: read-only, nosuid, nodev, noexec."""
        (fd,) = self._request(op="mount", fstype=fstype, target=target, options=options, readonly=readonly)
        return fd

    def make_dev(self, target, nodes, links, dirs):
        """A small read-only tmpfs on target holding the host's device nodes
        `nodes` (names in /dev), the symlinks `links` (name: target) and the
        empty directories `dirs`; an O_PATH fd on it."""
        (fd,) = self._request(op="dev", target=target, nodes=nodes, links=links, dirs=dirs)
        return fd

    def bind_unix(self, sock_fd, parent_fd, name, umask):
        """Bind socket sock_fd so that the kernel records `name` (the guest's
        sun_path bytes, as given: getsockname, getpeername, accept and
        recvfrom then report it as on Linux) while the socket file is created
        in directory parent_fd.  EOPNOTSUPP for a name no view can serve."""
        self._request([sock_fd, parent_fd], op="bind", name=name.hex(), umask=umask, scratch=self.scratch)

    def confine(self):
        """Set-up is over: the helper drops what it needs no more and loads
        its own seccomp filter (platform/selfconfine.py).  It tells what the
        Sentry's own sockets of the network namespace add to its
        /proc/net/sockstat counts (self.own_sockets)."""
        reply = self._exchange(op="confine")[0]
        self.own_sockets = {(proto, field): n for proto, field, n in reply.get("own_sockets", [])}

    def close(self):
        self.sock.close()
        for fd in (self.netns_fd, self.userns_fd, self.ipcns_fd, *self.sysvipc.values(),
                   *self.ipc_sysctls.values(), *self.net_sysctls.values()):
            if fd is not None:
                os.close(fd)
        self.netns_fd = self.userns_fd = self.ipcns_fd = None
        self.sysvipc = self.ipc_sysctls = self.net_sysctls = {}


# ---- the helper's side ---------------------------------------------------------

def _serve(sock, uid, gid, root, sentry, network=False, sysctl=()):
    # stderr stays: the line of its own filter's SIGSYS handler goes there
    for lo, hi in ((0, 2), (3, sock.fileno()), (sock.fileno() + 1, 1 << 16)):
        if lo < hi:
            os.closerange(lo, hi)
    confined = False
    # no terminal's Ctrl-C or hang-up reaches it; it ends when the Sentry does
    os.setsid()
    os.chdir("/")
    net = None
    try:
        _enter(uid, gid, root, network is True)
        if isinstance(network, str):
            join_netns(network)
        # no shared memory segment can span from below the staging area
        # into it: shmat(2) runs free at addresses a terabyte below it
        # (syscalls/table.py IPC_ALLOW_IF).  Unprivileged, the namespace's
        # sysctls are root's, whom the helper's user namespace does not map.
        try:
            with open("/proc/sys/kernel/shmmax", "w") as f:
                f.write(str(SHMMAX))
            started = {"shm_capped": True}
        except PermissionError:
            started = {"shm_capped": False}
        ns = [os.open("/proc/self/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)]
        if not root:
            ns.append(os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC))
        if network:
            before = _sockstat()             # the Sentry's own sockets there are counted from here
            net = _Network(fresh=network is True)
            started["interfaces"] = net.interfaces
            ns.append(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
            net.home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        started["sysctl"] = _set_sysctls(sysctl, network)
        if network:
            started["port_start"] = _open_low_ports()
        # /proc/sysvipc's tables list the IPC namespace of whoever opens
        # them: opened here, read by the Sentry (fsimpl/sysvipc.py)
        started["sysvipc"] = []
        for name in SYSVIPC_TABLES:
            try:
                ns.append(os.open(f"/proc/sysvipc/{name}", os.O_RDONLY | os.O_CLOEXEC))
                started["sysvipc"].append(name)
            except OSError:
                pass                      # a kernel without System V IPC
        started["ipc_sysctls"] = []
        for name in IPC_SETTINGS:
            try:
                ns.append(os.open(f"/proc/sys/{name}", O_PATH | os.O_CLOEXEC))
                started["ipc_sysctls"].append(name)
            except OSError:
                pass
    except _SysctlFailed as e:
        socket.send_fds(sock, [json.dumps({"errno": e.errno, "sysctl": e.key}).encode()], [])
        return
    except OSError as e:
        socket.send_fds(sock, [json.dumps({"errno": e.errno, "why": f"{e.strerror} ({e.filename or 'unshare'})"}).encode()], [])
        return
    socket.send_fds(sock, [json.dumps(started).encode()], ns)
    for fd in ns:
        os.close(fd)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 65536, 4)
        except OSError:
            break
        if not msg:
            break                         # the Sentry is gone
        req = json.loads(msg)
        out, reply = [], {}
        try:
            guest_netns = req["op"] in ("socket", "socketpair", "link", "addr", "net-file") and len(fds) == 1 \
                and net is not None
            if confined and req["op"] not in ("bind", "link", "local", "sysctl", "sysctl-file", "sysctl-write",
                                              "netns") and not guest_netns:
                # set-up is over: its filter would stop the helper at the first mount
                raise OSError(errno.EPERM, "confined")
            if req["op"] == "confine":
                if net is not None:
                    # what the Sentry's own sockets add to the namespace's counts
                    now = _sockstat()
                    reply = {"own_sockets": [[*key, now.get(key, 0) - before.get(key, 0)]
                                             for key in netns.SET_UP_COUNTS]}
                from sentry.platform import selfconfine
                selfconfine.confine("mount-helper", sentry)
                confined = True
            elif req["op"] == "mount":
                flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC if req.get("readonly") else 0
                _mount(req["fstype"], req["target"], req["fstype"], flags, req["options"])
                out = [os.open(req["target"], O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
            elif req["op"] == "dev":
                out = [_make_dev(req["target"], req["nodes"], req["links"], req["dirs"], root)]
            elif guest_netns:
                out = _in_guest_netns(net.home, fds[0], req)
            elif req["op"] == "netns" and net is not None:
                fd, cookie, start = _new_netns(net.home)
                out, reply = [fd], {"cookie": cookie.hex(), "port_start": start}
            elif req["op"] == "address" and net is not None:
                net.add_address(req["address"])
            elif req["op"] == "local" and net is not None:
                net.add_local_route(req["address"])
            elif req["op"] == "link" and net is not None:
                net.set_link(req["index"], req["up"], req["mtu"])
            elif req["op"] == "eth0" and net is not None:
                net.add_eth0()
                reply = {"interfaces": net.interfaces}
            elif req["op"] == "socket" and 0 < req.get("count", 1) <= SOCKETS_MAX:
                for _ in range(req.get("count", 1)):
                    out.append(socket.socket(req["family"], req["kind"], req["proto"]).detach())
            elif req["op"] == "bind":
                _bind_in_view(fds[0], fds[1], bytes.fromhex(req["name"]), req["umask"], req["scratch"])
            elif req["op"] == "sysctl" and net is not None:
                reply = net_sysctl_view(req["path"], {PORT_START: started.get("port_start")})
            elif req["op"] == "sysctl-file" and net is not None:
                out = [net_sysctl_file(req["path"])]
            elif req["op"] == "sysctl-write" and net is not None:
                reply = {"written": _write_setting(fds[0], req["path"], bytes.fromhex(req["data"]),
                                                   req["offset"])}
            else:
                raise OSError(errno.EINVAL, "no such request")
        except OSError as e:
            reply = {"errno": e.errno or errno.EIO}
        finally:
            for fd in fds:
                os.close(fd)
        socket.send_fds(sock, [json.dumps(reply).encode()], out)
        for fd in out:
            os.close(fd)
    if net is not None:
        os.close(net.home)
        # closed here: a socket left to the collector warns, and the warning's
        # repr asks getpeername, which the helper's filter forbids
        net.close()


def _sockstat():
    """This network namespace's /proc/net/sockstat and sockstat6 counts."""
    texts = []
    for name in netns.SOCKSTAT_FILES:
        try:
            with open(f"/proc/thread-self/net/{name}") as f:
                texts.append(f.read())
        except OSError:
            pass                          # no IPv6
    return netns.sockstat_counts(texts)


def join_netns(path):
    """The network namespace at path (the OCI spec's network namespace with
    a path, as runc joins it): the helper's own from here, as a fresh one
    would be.  OSError naming the path: not there, not a network namespace
    (EINVAL), or not ours to enter (EPERM: unprivileged)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        e = -lib.sn_setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)
    if e > 0:
        raise OSError(e, os.strerror(e), path)


IFA_F_TENTATIVE = 0x40


def _addresses_settled(name):
    """Whether interface `name` of this namespace has its IPv6 addresses and
    none is tentative (/proc/net/if_inet6: address, index, prefix, scope,
    flags, name); True where it gets none (no IPv6, IPv6 off on it, no
    link-local address made)."""
    try:
        with open("/proc/self/net/if_inet6") as f:
            rows = [line.split() for line in f]
    except FileNotFoundError:
        return True
    flags = [int(r[4], 16) for r in rows if len(r) == 6 and r[5] == name]
    if not flags:
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6") as f:
                off = f.read().strip() == "1"
            with open(f"/proc/sys/net/ipv6/conf/{name}/addr_gen_mode") as f:
                none = f.read().strip() == "1"          # IN6_ADDR_GEN_MODE_NONE
        except OSError:
            return True
        return off or none
    return not any(f & IFA_F_TENTATIVE for f in flags)


def _enter(uid, gid, root, network=False):
    net = (CLONE_NEWNET if network else 0) | CLONE_NEWIPC
    if root:
        _check(lib.sn_unshare(CLONE_NEWNS | net))
    else:
        _check(lib.sn_unshare(CLONE_NEWUSER | CLONE_NEWNS | net))
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    # nothing mounted here may propagate back to the host's namespace
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


class _SysctlFailed(OSError):
    def __init__(self, key, errno_):
        super().__init__(errno_, os.strerror(errno_))
        self.key = key


# The sysctls a namespace of the helper's holds: the IPC namespace's (System V
# limits, POSIX message queues) and, with a network of its own, the network
# namespace's.  kernel.shmmax stays at most SHMMAX (see _serve).
IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_SYSCTL_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+")


def sysctl_refused(key, value, network):
    """Why sysctl key=value cannot be set in the sandbox's namespaces, or
    None: it must be one of theirs (never the host's), and shmmax no larger
    than the cap that keeps segments off the staging area."""
    if not _SYSCTL_NAME.fullmatch(key):
        return "not a sysctl name"
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if key == "kernel.shmmax" and not (value.strip().isdigit() and int(value) <= SHMMAX):
            return f"at most {SHMMAX} in sentry (larger segments could reach the Sentry's staging area)"
        return None
    if key.startswith("net."):
        return None if network else "not allowed in the host's network namespace"
    return "not in a separate kernel namespace"


SYSCTL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
SYSCTL_DEPTH, SYSCTL_TEXT_MAX = 6, 8192


def _net_sysctl_path(parts):
    """/proc/sys/net/<parts>, once parts are names of plain characters, never
    "." or "..": nothing outside the tree; ENOENT for any other."""
    if not isinstance(parts, list) or len(parts) > SYSCTL_DEPTH or not all(
            isinstance(p, str) and SYSCTL_NAME.match(p) and p not in (".", "..") for p in parts):
        raise OSError(errno.ENOENT, "no such sysctl")
    return "/".join(["/proc/sys/net"] + parts)


def net_sysctl_view(parts, shown=None):
    """/proc/sys/net/<parts> as this process, in the sandbox's network
    namespace, reads it (a net sysctl names the reader's namespace's value):
    {"entries": [[name, is_dir, text or None, mode], ...]} for a directory
    (the text of each file in it anyone may read; every file's mode, as
    ls -l shows it), {"text": ..., "mode": ...} for a file (text None where
    only root may read it).  shown: {"ipv4/name": value} for a sysctl the
    Sentry enforces itself (PORT_START), shown as the guest's rules have it,
    not the kernel's."""
    path = _net_sysctl_path(parts)
    shown = {k: f"{v}\n" for k, v in (shown or {}).items() if v is not None}
    st = os.stat(path, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        return {"text": shown.get("/".join(parts)) or _sysctl_text(path), "mode": stat.S_IMODE(st.st_mode)}
    entries = []
    for e in sorted(os.scandir(path), key=lambda e: e.name):
        st = e.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(st.st_mode)
        text = None if is_dir else (shown.get("/".join(parts + [e.name])) or _sysctl_text(e.path))
        entries.append([e.name, is_dir, text, stat.S_IMODE(st.st_mode)])
    return {"entries": entries}


def net_sysctl_file(parts):
    """An O_PATH fd on the file /proc/sys/net/<parts> of this process's
    network namespace (the sandbox's, in the helper): a net sysctl's file
    belongs to the namespace it was looked up in, so whoever reopens it
    later reads and writes that namespace's value (fsimpl/proc.py: live
    files).  ENOENT for a name that is not a file there."""
    path = _net_sysctl_path(parts)
    fd = os.open(path, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.ENOENT, "not a sysctl file")
    return fd


def _write_setting(fd, parts, data, offset):
    """The helper's write of a guest root's bytes on fd, which must be the
    open file of /proc/sys/net/<parts> of this namespace (the same inode as
    this lookup of the name finds: never another file), at offset or at
    the open file's position."""
    own = net_sysctl_file(parts)
    try:
        mine, theirs = os.fstat(own), os.fstat(fd)
    finally:
        os.close(own)
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        raise OSError(errno.EBADF, "not that setting's file")
    if offset is None:
        return os.write(fd, data)
    return os.pwrite(fd, data, offset)


def _sysctl_text(path):
    """A sysctl's text, only if anyone may read it, else None: one only root
    may read (tcp_fastopen_key, bpf_jit_*) is never read with the reader's
    privileges for a guest; nor is a write-only one (route/flush), or one
    the kernel will not read (an unset stable_secret: EIO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not os.fstat(fd).st_mode & stat.S_IROTH:
            return None
        return os.read(fd, SYSCTL_TEXT_MAX).decode("latin-1")
    except OSError:
        return None
    finally:
        os.close(fd)


# The first port that needs no CAP_NET_BIND_SERVICE (net/ipv4, for IPv6 too).
# The guest holds no host capability, so the kernel would refuse a root
# guest's bind of port 80 (httpd, nginx); in the sandbox's namespace the
# kernel lets anyone bind any port, and the Sentry applies the namespace's
# own threshold to the guest's emulated capabilities (syscalls/socket.py).
PORT_START = "ipv4/ip_unprivileged_port_start"


def _open_low_ports():
    """Set PORT_START to 0 in this (the sandbox's) network namespace, and
    return what it was (its maker's value, or linux.sysctl's): what the
    Sentry enforces.  None where it cannot be set: the kernel's own check
    stays (a guest binds no port below it)."""
    path = "/proc/sys/net/" + PORT_START
    try:
        with open(path) as f:
            start = int(f.read())
        if start:
            with open(path, "w") as f:
                f.write("0")
        return start
    except (OSError, ValueError):
        return None


def _set_sysctls(sysctl, network):
    """Write each sysctl here, in the sandbox's IPC and network namespaces
    (a /proc/sys file names the writer's namespace's value), and read it back
    as the kernel now shows it: {name: text}."""
    shown = {}
    for key, value in sysctl.items():
        if sysctl_refused(key, value, network):
            raise _SysctlFailed(key, errno.EPERM)
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
            with open(path) as f:
                shown[key] = f.read()
        except OSError as e:
            raise _SysctlFailed(key, e.errno)
    return shown


RESOLVE_IN_ROOT_NO_MAGIC = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
EMPTY_RO = ("tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")
MNT_DETACH = 2


def enter_private():
    """Put the calling process in a mount namespace of its own (with a user
    namespace of its own when unprivileged), nothing propagating back: what
    container_view and empty_root then arrange.  OSError where none can be
    had (unprivileged without user namespaces)."""
    _enter(os.getuid(), os.getgid(), os.geteuid() == 0)


def container_view(rootfs, readonly=False, binds=(), tmpfs=()):
    """In the caller's private mount namespace (enter_private), make its
    root the container's: `rootfs`, each of `binds` ((host source, sandbox path, read-only)) at its
    place, an empty read-only tmpfs on each of `tmpfs` (the sandbox's own
    are its Sentry's, not here) and on /proc.  A host program that joins
    this mount namespace (podman top reads its /proc; podman cp copies to
    and from "/" there, as in runc's container) finds the container's
    files and no process -- never the host's files.  Each place is looked
    up inside the rootfs (RESOLVE_IN_ROOT: an image's symlink stays in it)
    and mounted on through its fd.  OSError if the view cannot be made;
    the caller must then not stay in the host's root (empty_root)."""
    _mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    root = os.open(rootfs, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for src, dst, ro in binds:
            _mount_in(root, dst, src, None, MS_BIND | MS_REC)
            if ro:
                _mount_in(root, dst, None, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(src))
        for dst in [*tmpfs, "/proc"]:
            _mount_in(root, dst, EMPTY_RO[0], EMPTY_RO[0], EMPTY_RO[1], EMPTY_RO[2])
        if readonly:
            _mount(None, rootfs, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(rootfs))
        os.fchdir(root)
    finally:
        os.close(root)
    _pivot_here()


# statvfs's f_flag -> the mount flag a read-only remount must keep (in a
# user namespace the kernel refuses to drop them: EPERM)
_KEPT = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
         os.ST_NOATIME: 1024, os.ST_NODIRATIME: 2048, os.ST_RELATIME: 1 << 21}


def _kept_flags(path):
    have = os.statvfs(path).f_flag
    return sum(ms for st, ms in _KEPT.items() if have & st)


def empty_root():
    """The fallback of container_view: a root of nothing but an empty
    read-only tmpfs (podman cp then finds no file, and writes none)."""
    _mount(EMPTY_RO[0], "/tmp", EMPTY_RO[0], 0, "size=4k,mode=0755")
    os.mkdir("/tmp/proc", 0o555)
    _mount(None, "/tmp", None, MS_REMOUNT | EMPTY_RO[1])
    os.chdir("/tmp")
    _pivot_here()


def _pivot_here():
    """The current directory (a mount) becomes the namespace's root; the
    old root is detached, unreachable from here."""
    _check(lib.sn_pivot_root(b".", b"."))
    _check(lib.sn_umount2(b".", MNT_DETACH))
    os.chdir("/")


def _mount_in(root, path, source, fstype, flags, data=None):
    """mount(2) on sandbox path `path` of the tree at fd `root`, found
    inside it; a place that is not there is skipped (nothing to show)."""
    try:
        fd = openat2(root, path.lstrip("/") or ".", O_PATH | os.O_CLOEXEC, resolve=RESOLVE_IN_ROOT_NO_MAGIC)
    except SyscallError as e:
        if e.errno == errno.ENOENT:
            return
        raise OSError(e.errno, os.strerror(e.errno), path)
    try:
        _mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
    finally:
        os.close(fd)


class _Network:
    """The helper's hold on the sandbox's network namespace: its interfaces,
    the configuration sentry gave them, and the netlink socket it makes its
    requests on (one, made at set-up)."""

    def __init__(self, fresh=True):
        self.rtnl = netns.Rtnl()
        self.interfaces = {"lo": self.rtnl.index_of("lo")}
        self.given = {}               # index -> [what sentry configured on it: to redo once it is up again]
        self.gateway = None           # eth0's other end: (an fd on its namespace, a netlink socket there)
        if fresh:                     # a joined one is left as its maker set it up
            self.set_link(self.interfaces["lo"], True, None)

    def _give(self, index, step):
        step()
        self.given.setdefault(index, []).append(step)

    def add_address(self, text):
        """`ip addr add ADDRESS dev lo` (a /32 or /128): where the DNS relay answers."""
        import ipaddress
        ip = ipaddress.ip_address(text)
        lo = self.interfaces["lo"]
        self._give(lo, lambda: netns.add_address(self.rtnl, lo, ip, ip.max_prefixlen, netns.RT_SCOPE_HOST))

    def add_local_route(self, text):
        """A UDP relay's outside address (sentry/net/udp.py), checked again
        here: a unicast address outside the sandbox (IPv4 or IPv6, not a
        v4-mapped one), once eth0 is there (an IPv4 route's source is eth0's
        address; the sandbox has no IPv6 one to give)."""
        import ipaddress
        ip = ipaddress.ip_address(text)
        if "eth0" not in self.interfaces or ip.is_loopback or ip.is_link_local or ip.is_multicast \
                or ip.is_unspecified or ip.is_reserved or (ip.version == 4 and ip in netns.ETH0.network) \
                or (ip.version == 6 and (ip.ipv4_mapped is not None or ip.is_site_local)):
            raise OSError(errno.EINVAL, "not an outside address")
        lo = self.interfaces["lo"]
        source = netns.ETH0.ip if ip.version == 4 else None
        self._give(lo, lambda: netns.add_local_route(self.rtnl, ip, source, lo))

    def add_eth0(self):
        """eth0 with its address and a default route through the gateway,
        the other end of a veth pair in a namespace of its own (vfs/netns.py)."""
        fd, gw = _gateway_namespace()
        self.gateway = (fd, gw)
        # Two ends of one index wait for the kernel's next link-state round
        # (up to a second) before eth0 shows its carrier; different ones are
        # seen at once.  2 and 3, unless the namespaces have interfaces of
        # their own there (the host's tunnel modules make some).
        for indexes in ((2, 3), (0, 0)):
            err = netns.add_veth(self.rtnl, "eth0", netns.ETH0_MAC, "eth0", netns.GATEWAY_MAC, fd, indexes)
            if err not in (errno.EBUSY, errno.EEXIST):
                break
        if err:
            raise OSError(err, f"veth: {os.strerror(err)}")
        peer = gw.index_of("eth0")
        netns.add_address(gw, peer, netns.GATEWAY.ip, netns.GATEWAY.network.prefixlen)
        err = netns.set_link(gw, peer, True)
        if err:
            raise OSError(err, os.strerror(err))
        eth0 = self.interfaces["eth0"] = self.rtnl.index_of("eth0")
        _sysctl("net/ipv6/conf/eth0/accept_dad", "0")     # its link-local address usable at once
        self._give(eth0, lambda: netns.add_address(self.rtnl, eth0, netns.ETH0.ip, netns.ETH0.network.prefixlen))
        self.set_link(eth0, True, None)
        self._give(eth0, lambda: netns.add_default_route(self.rtnl, netns.GATEWAY.ip, eth0))
        for _ in range(300):
            if self.rtnl.running("eth0"):
                break
            time.sleep(0.01)
        # with its carrier comes its link-local address, tentative until the
        # kernel's address work has run (no DAD, but still a moment later):
        # a guest that starts at once would see "tentative" in `ip addr`
        for _ in range(1000):
            if _addresses_settled("eth0"):
                break
            time.sleep(0.001)

    def set_link(self, index, up, mtu):
        """A link change of the guest's (its values checked again here: only
        the sandbox's own interfaces, up/down and an MTU).  Once an interface
        is up again, what sentry configured on it is put back (an IPv6
        address goes when its interface goes down, routes through it too)."""
        if index not in self.interfaces.values() or up not in (None, True, False) or \
                not (mtu is None or (type(mtu) is int and 0 <= mtu <= 0xFFFFFFFF)):
            raise OSError(errno.EINVAL, "not a change the helper makes")
        err = netns.set_link(self.rtnl, index, up, mtu)
        if err:
            raise OSError(err, os.strerror(err))
        if up:
            for step in self.given.get(index, ()):
                step()

    def close(self):
        self.rtnl.close()
        if self.gateway is not None:
            os.close(self.gateway[0])
            self.gateway[1].close()


def _sysctl(name, value):
    """A sysctl of the network namespace the caller is in, where it can be
    set: none it sets is needed (a kernel without IPv6 lacks some)."""
    try:
        with open(f"/proc/sys/{name}", "w") as f:
            f.write(value)
    except OSError:
        pass


# What a guest may ask for in a network namespace it made (the Sentry checked
# it already: syscalls/socket.py family_errno; checked again here, since the
# helper holds CAP_NET_RAW there): no raw or packet internet socket, netlink route
# and sock_diag only.
GUEST_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK)
GUEST_NETLINK = (0, 4)
SOCK_TYPE_MASK, SOCK_RAW, SOCK_PACKET = 0xF, 3, 10
NET_FILE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
SO_NETNS_COOKIE = 71


class _There:
    """In the network namespace `fd` for the length of a with block, then
    back home: the helper's other requests are its own namespace's.  A
    helper that cannot go back exits (its next answer would be made in the
    wrong namespace)."""

    def __init__(self, home, fd):
        self.home, self.fd = home, fd

    def __enter__(self):
        _check(lib.sn_setns(self.fd, CLONE_NEWNET))

    def __exit__(self, *exc):
        if lib.sn_setns(self.home, CLONE_NEWNET) < 0:
            os._exit(1)


def _new_netns(home):
    """A new network namespace, left as Linux leaves one (lo down), but for
    the port threshold the Sentry enforces instead (_open_low_ports): (an
    fd on it, its cookie).  The helper is back home after."""
    _check(lib.sn_unshare(CLONE_NEWNET))
    try:
        fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        start = _open_low_ports()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            cookie = s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
    finally:
        if lib.sn_setns(home, CLONE_NEWNET) < 0:
            os._exit(1)
    return fd, cookie, start


def _in_guest_netns(home, fd, req):
    """A guest's request in a network namespace it made (fd): a socket or a
    pair of unix ones, a link change of its lo, or a /proc/net file; the
    fds to send back."""
    op = req["op"]
    if op == "socket":
        family, kind, proto = req["family"], req["kind"], req["proto"]
        inet = family in (socket.AF_INET, socket.AF_INET6)
        if family not in GUEST_FAMILIES or (inet and kind & SOCK_TYPE_MASK in (SOCK_RAW, SOCK_PACKET)) \
                or (family == socket.AF_NETLINK and proto not in GUEST_NETLINK):
            raise OSError(errno.EPERM, "not a guest's socket")
        with _There(home, fd):
            return [socket.socket(family, kind | socket.SOCK_CLOEXEC, proto).detach()]
    if op == "socketpair":
        with _There(home, fd):
            pair = socket.socketpair(socket.AF_UNIX, req["kind"] | socket.SOCK_CLOEXEC, req["proto"])
        return [s.detach() for s in pair]
    if op == "link":
        index, up, mtu = req["index"], req["up"], req["mtu"]
        if index != 1 or up not in (None, True, False) or \
                not (mtu is None or (type(mtu) is int and 0 <= mtu <= 0xFFFFFFFF)):
            raise OSError(errno.EINVAL, "not a change the helper makes")
        with _There(home, fd):
            rtnl = netns.Rtnl()
        try:
            err = netns.set_link(rtnl, index, up, mtu)
        finally:
            rtnl.close()
        if err:
            raise OSError(err, os.strerror(err))
        return []
    if op == "addr":
        ip, prefix = netns.loopback_address(req["address"], req["prefix"])
        if ip is None or req["scope"] not in netns.LOOPBACK_SCOPES or req["flags"] not in netns.LOOPBACK_IFA_FLAGS:
            raise OSError(errno.EINVAL, "not a change the helper makes")
        with _There(home, fd):
            rtnl = netns.Rtnl()
        try:
            netns.add_address(rtnl, 1, ip, prefix, req["scope"], broadcast=False, flags=req["flags"])
        finally:
            rtnl.close()
        return []
    if op == "net-file" and NET_FILE.match(req["name"]):
        with _There(home, fd):
            return [os.open(f"/proc/thread-self/net/{req['name']}", os.O_RDONLY | os.O_CLOEXEC)]
    raise OSError(errno.EINVAL, "no such request")


def _gateway_namespace():
    """A network namespace for eth0's other end: (an fd on it, a netlink
    socket there).  Made by a child, so that the helper itself never leaves
    the sandbox's namespace (its later sockets are made there)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            mine.close()
            _check(lib.sn_unshare(CLONE_NEWNET))
            _sysctl("net/ipv4/ip_forward", "1")
            nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, netns.NETLINK_ROUTE)
            socket.send_fds(theirs, [b"ns"], [os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC), nl.fileno()])
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    try:
        _, fds, _, _ = socket.recv_fds(mine, 16, 2)
    finally:
        mine.close()
        os.waitpid(pid, 0)
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EIO, "no gateway namespace")
    return fds[0], netns.Rtnl(socket.socket(fileno=fds[1]))


def _make_dev(target, nodes, links, dirs, root):
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=16k,nr_inodes=64,mode=0755")
    for name in nodes:
        try:
            host = os.stat("/dev/" + name)
        except FileNotFoundError:
            continue                      # a host without it: the sandbox has none either
        path = os.path.join(target, name)
        if root and hostids.in_initial_namespace():
            # a node of the sandbox's own: chmod or chown of it cannot reach the host's
            os.mknod(path, host.st_mode, host.st_rdev)
            os.chown(path, host.st_uid, host.st_gid)
            os.chmod(path, stat.S_IMODE(host.st_mode))
        else:
            # mknod needs the initial namespace's CAP_MKNOD (root of a user
            # namespace, as under rootless podman, has none): the host's node, bound
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            _mount("/dev/" + name, path, None, MS_BIND)
    for name, to in links.items():
        os.symlink(to, os.path.join(target, name))
    for name in dirs:
        os.mkdir(os.path.join(target, name), 0o755)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    return os.open(target, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _bind_in_view(sock_fd, parent_fd, name, umask, scratch):
    """bind(sock, name) where name, looked up from a made-up root and cwd,
    leads to directory parent_fd: the kernel then records the guest's own
    name.  Done in a child with a mount namespace of its own, gone with it."""
    view = _view(name)
    if view is None:
        raise OSError(errno.EOPNOTSUPP, "no view")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _check(lib.sn_unshare(CLONE_NEWNS))
            parent = _reopen_here(parent_fd)
            _mount("tmpfs", scratch, "tmpfs", 0, "mode=0700")
            dirs, start, final = view
            for d in dirs:
                os.makedirs(os.path.join(scratch, *d), exist_ok=True)
            cwd = os.path.join(scratch, *start)
            # a cwd below the parent is entered before the mount hides it
            # (`..` then climbs into the mount); the parent itself after
            if start != final:
                os.chdir(cwd)
            _mount(f"/proc/self/fd/{parent}", os.path.join(scratch, *final), None, MS_BIND | MS_REC)
            if start == final:
                os.chdir(cwd)
            os.chroot(scratch)         # onto the mount, when the parent is the root
            os.umask(umask)
            s = socket.socket(fileno=sock_fd)
            try:
                s.bind(name)
            finally:
                s.detach()
        except OSError as e:
            code = e.errno or errno.EIO
        except BaseException:
            code = errno.EIO
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise OSError(code if code > 0 else errno.EIO, "bind")


def _view(name):
    """The directories a lookup of `name` walks through, when every component
    but the last is a plain directory of a scratch tree: (directories to make,
    the cwd to start from, the lexical parent where the real parent directory
    is mounted).  A relative name starts deep enough for its `..`s never to
    meet the root.  None when the lookup would step down below that parent
    (`/x/a/../sock`: `a` would have to be a directory of the real one)."""
    text = os.fsdecode(name)
    comps = text.split("/")
    final = comps.pop()
    if final in ("", ".", ".."):
        return None
    start = () if text.startswith("/") else ("w",) * (comps.count("..") + 1)
    node, downs = start, []
    for c in comps:
        if c in ("", "."):
            continue
        if c == "..":
            node = node[:-1]
        else:
            node = node + (c,)
            downs.append(node)
    parent = node
    if any(len(d) > len(parent) and d[:len(parent)] == parent for d in downs):
        return None
    return [list(d) for d in downs + [start, parent]], list(start), list(parent)


def _reopen_here(fd):
    """fd names a directory as the Sentry's namespace has it; bind mounts take
    their source from this namespace only.  Open the same path here, without
    following any symlink, and make sure it is the same directory."""
    st = os.fstat(fd)
    path = os.readlink(f"/proc/self/fd/{fd}")
    root = os.open("/", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        here = openat2(root, path.lstrip("/") or ".", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, resolve=CONFINED)
    except Exception:
        raise OSError(errno.ENOENT, "reopen")
    finally:
        os.close(root)
    mine = os.fstat(here)
    if (mine.st_dev, mine.st_ino) != (st.st_dev, st.st_ino):
        os.close(here)
        raise OSError(errno.ENOENT, "reopen")
    return here



def join_namespaces(userns_fd=None, ipcns_fd=None, netns_fd=None):
    """In the guest's first process, before it takes a user namespace of its
    own (and in the --publish forwarder): enter the helper's private IPC
    and network namespaces, those given.  Unprivileged, they belong to the
    helper's user namespace, so the process enters that first (its owner's
    uid gives it every capability there), and the user namespace it makes
    next is a child of it: the guest then holds no capability over them.
    Raises OSError: the caller must not run the guest in the host's."""
    if userns_fd is not None:
        _check(lib.sn_setns(userns_fd, CLONE_NEWUSER))
    if ipcns_fd is not None:
        _check(lib.sn_setns(ipcns_fd, CLONE_NEWIPC))
    if netns_fd is not None:
        _check(lib.sn_setns(netns_fd, CLONE_NEWNET))
