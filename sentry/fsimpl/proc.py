"""/proc: generated when looked up, served from real files.

The mount is a private host directory.  When a guest looks a name up, the
Sentry (re)writes that name there — a file with the content Linux would give,
a directory, or a plain symlink to a sandbox path — and the guest then opens
and reads a real file natively.  Directories (/proc, /proc/<pid>/fd …) are
refilled when they themselves are looked up, so a listing is current.

Only sandbox processes appear, and nothing here is a magic link: /proc/<pid>/root
is "/", cwd/exe/fd/N are sandbox paths, and no host path or host-only pid is
shown.  Pids are the sandbox's virtual ones (Kernel.visible_pids, host_pid
and vpid translate), and ids are the emulated credentials.
"""
import errno
import os
import re
import shutil
import stat
import time

from sentry.vfs.mount import DELETED, Mount, is_hidden_fd, split_deleted
from sentry.vfs.resolve import MAGIC
from sentry.vfs.mountns import PORT_START
from sentry.vfs.netns import SOCKSTAT_FILES, sockstat_shown
from sentry.errors import SyscallError
from sentry.fsimpl import sysvipc

# Host files whose content a sandbox may see as it is: machine-wide figures
# (memory, CPU time, load; page, zone and free-page counters; pressure stalls)
# that name no process, file, device or user of anyone else.
PASSTHROUGH = {
    "meminfo", "cpuinfo", "stat", "uptime", "loadavg", "version", "filesystems",
    "vmstat", "buddyinfo", "zoneinfo",
    "pressure/cpu", "pressure/io", "pressure/memory", "pressure/irq",
    "sys/kernel/ostype", "sys/kernel/osrelease", "sys/kernel/version", "sys/kernel/pid_max",
    "sys/kernel/ngroups_max", "sys/kernel/cap_last_cap", "sys/kernel/threads-max",
    "sys/kernel/tainted", "sys/kernel/overflowuid", "sys/kernel/overflowgid",
    "sys/vm/overcommit_memory", "sys/vm/max_map_count", "sys/fs/file-max", "sys/fs/nr_open",
    "sys/fs/pipe-max-size", "sys/fs/lease-break-time", "sys/fs/inotify/max_queued_events",
    "sys/fs/inotify/max_user_instances", "sys/fs/inotify/max_user_watches", "sys/vm/vfs_cache_pressure",
    "sys/kernel/printk", "sys/kernel/core_uses_pid",
    "sys/kernel/random/entropy_avail", "sys/kernel/random/poolsize",
    "sys/kernel/random/urandom_min_reseed_secs", "sys/kernel/random/write_wakeup_threshold",
    "sys/fs/pipe-user-pages-hard", "sys/fs/pipe-user-pages-soft", "sys/fs/aio-max-nr",
    "sys/fs/overflowuid", "sys/fs/overflowgid", "sys/fs/leases-enable", "sys/fs/dir-notify-enable",
    "sys/fs/protected_hardlinks", "sys/fs/protected_symlinks", "sys/fs/protected_fifos",
    "sys/fs/protected_regular", "sys/vm/min_free_kbytes",
    "sys/user/max_inotify_instances", "sys/user/max_inotify_watches", "sys/user/max_fanotify_groups",
    "sys/user/max_fanotify_marks",
}
# /proc/sys: the host's files above, and these of the sandbox's own
# (_kernel_sysctl); no other name exists there, and a lookup of one makes nothing
SYSCTL_OWN = {"sys/kernel/hostname", "sys/kernel/domainname", "sys/kernel/osrelease",
              "sys/kernel/random/uuid", "sys/kernel/random/boot_id", "sys/kernel/ns_last_pid",
              "sys/kernel/core_pattern", "sys/kernel/shmmax", "sys/kernel/shmall", "sys/kernel/shmmni",
              "sys/kernel/msgmax", "sys/kernel/msgmnb", "sys/kernel/msgmni", "sys/kernel/sem"}
# /proc/<pid>/ns: a link per namespace, "net:[N]" as Linux's.  A namespace
# the sandbox has of its own (network, mount, user when isolated) shows the
# kernel's number; one it shares with the host (pid, uts, ipc, cgroup, time:
# emulated or not offered) a number of the sandbox's, the same for all its
# processes, so that the host's identities stay unseen and two sandboxes
# differ.  Following a link reaches one file per namespace (hard links of
# one inode), so its st_ino tells namespaces apart as nsfs's does.
NS_NAMES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts")
NS_KINDS = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
PIDNS_SERIALS = 1 << 20       # where the numbers of PID namespaces a guest made start, past the UTS ones
MNTNS_SERIALS = 2 << 20       # and those of its mount namespaces, past the PID ones
# the namespace limits: 0 for a kind the sandbox does not offer (kernel/namespaces.py)
SYSCTL_OWN |= {f"sys/user/max_{kind}_namespaces" for kind in NS_KINDS}
# POSIX message queues' limits, also the sandbox's IPC namespace's: a new
# namespace's defaults, or what linux.sysctl set there
MQUEUE_SYSCTLS = {"queues_max": 256, "msg_max": 10, "msgsize_max": 8192, "msg_default": 10,
                  "msgsize_default": 8192}
SYSCTL_OWN |= {f"sys/fs/mqueue/{name}" for name in MQUEUE_SYSCTLS}
# the names under sys/kernel that _kernel_sysctl makes (random/ is a directory of them)
KERNEL_OWN = {n.split("/")[2] for n in SYSCTL_OWN if n.startswith("sys/kernel/")}
# The sandbox's IPC namespace's limits: a new namespace's defaults, but
# shmmax where the namespace helper capped it (vfs/mountns.py SHMMAX)
IPC_SYSCTLS = {"shmall": 2 ** 64 - 1 - 2 ** 24, "shmmni": 4096, "msgmax": 8192, "msgmnb": 16384,
               "msgmni": 32000, "sem": "32000\t1024000000\t500\t32000", "shm_rmid_forced": 0,
               "auto_msgmni": 0, "msg_next_id": -1, "sem_next_id": -1, "shm_next_id": -1}
SYSCTL_OWN |= {f"sys/kernel/{name}" for name in IPC_SYSCTLS}
# ... but those are the fallback: where the sandbox has its IPC namespace, each
# of its settings is the kernel's own file there (vfs/mountns.py IPC_SETTINGS),
# read and written live; all but shmmax, which holds shared memory clear of
# the staging area (syscalls/ipc.py), and the next ids, which the kernel lets
# only a writer holding CAP_CHECKPOINT_RESTORE set: writing those is EACCES
FIXED_SYSCTLS = {"sys/kernel/shmmax", "sys/kernel/msg_next_id", "sys/kernel/sem_next_id",
                 "sys/kernel/shm_next_id"}
SYSCTL_FILES = {n for n in PASSTHROUGH if n.startswith("sys/")} | SYSCTL_OWN
SYSCTL_DIRS = {"/".join(n.split("/")[:i]) for n in SYSCTL_FILES for i in range(1, n.count("/") + 1)}
# Directories of PASSTHROUGH files (/proc/sys is made apart).
PASSTHROUGH_DIRS = {n.split("/")[0] for n in PASSTHROUGH if "/" in n} - {"sys"}
# /proc/net: the kernel's own view from inside the sandbox's network namespace
# (read through the calling guest thread's /proc/<tid>/net, which is that
# namespace's), so sockets, interfaces and routes are the sandbox's only.
NET_FILES = ("tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "unix", "packet",
             "netlink", "dev", "dev_mcast", "if_inet6", "route", "ipv6_route", "snmp", "snmp6", "netstat",
             "sockstat", "sockstat6", "igmp", "igmp6", "arp", "protocols", "fib_trie", "fib_triestat")
# The sandbox's own: it has no block device (the host's disks' names and I/O
# counts would show other tenants' activity), as a VM with only network or
# virtual file systems; procps and psutil take empty tables.
SYNTHETIC = {"diskstats": b"", "partitions": b"major minor  #blocks  name\n\n"}
# Network settings (below /proc/sys) whose write handler the kernel runs
# only for a writer holding CAP_NET_ADMIN over the namespace, which the
# guest's host process never holds (docs/design.md, Network): IPv4
# forwarding (devinet_sysctl_forward).  A guest root's writes to them are
# trapped and made by the namespace helper (syscalls/settings.py).
NET_ADMIN_SETTINGS = re.compile(r"net/ipv4/(ip_forward|conf/[A-Za-z0-9_.-]+/forwarding)")
# Run unprivileged, the guest's host identity is no root of the user namespace
# that owns the sandbox's network namespace (the helper's): the kernel would
# let it write no network setting at all, so the helper writes each one.
UNPRIVILEGED = os.geteuid() != 0


def helper_writes(rel):
    """Whether the guest's writes of setting `rel` ("net/ipv4/ip_forward",
    relative to /proc/sys) are made by the namespace helper."""
    return NET_ADMIN_SETTINGS.fullmatch(rel) is not None or (UNPRIVILEGED and rel.startswith("net/"))

RLIM_INFINITY = 2 ** 64 - 1
# /proc/mounts's file system type of a mount of each kind
MOUNT_TYPES = {"proc": "proc", "dev": "tmpfs", "sys": "sysfs", "devpts": "devpts", "tmpfs": "tmpfs",
               "overlay": "overlay", "mqueue": "mqueue"}
# No write bit for the owner, when it is root: the guest runs as host uid 0
# too, without capabilities, so this holds it off should it ever name these
# directories.  An unprivileged Sentry needs the bit to fill them (its guest
# shares its uid and could set the bit itself: the mount refuses changes).
DIR_MODE = 0o555 if os.geteuid() == 0 else 0o755
PER_PROCESS_PASSTHROUGH = {"environ", "statm", "oom_score", "oom_score_adj",
                           "personality", "wchan", "io", "coredump_filter"}
# Written by the guest, kept for it: the host's OOM score needs CAP_SYS_RESOURCE.
# (coredump_filter is read-only: no core files are made, sentry/sandbox/guest.py, and a
# value kept here would not pass to children as the kernel's does.)
WRITABLE = {"oom_score_adj", "oom_adj"}
# The audit ids of a process outside any login session ((uid_t)-1, no newline):
# the host's would name the host user who logged in.
UNSET_AUDIT_ID = b"4294967295"
NSEC = 10 ** 9
STAT_STARTTIME = 19           # /proc/<pid>/stat's field 22, counted from the state (field 3)
# A process's user namespace's maps (kernel/userns.py): written through
# syscalls/controlfiles.py, whose write traps parse them; the file shows them
USERNS_FILES = {"uid_map", "gid_map", "setgroups"}
# a process's time namespace for children's offsets (kernel/timens.py), written the same way
CONTROL_FILES = USERNS_FILES | {"timens_offsets"}
PER_PROCESS = {"status", "stat", "cmdline", "comm", "environ", "statm", "limits", "maps", "net",
               "smaps", "smaps_rollup", "mounts", "mountinfo", "oom_score", "oom_score_adj",
               "cgroup", "exe", "cwd", "root", "fd", "fdinfo", "task", "io", "personality",
               "wchan", "coredump_filter", "loginuid", "sessionid", "ns"} | CONTROL_FILES


TMPFS_MAGIC = 0x01021994


def _userns_of(kernel, host):
    """The user namespace below the sandbox's that host task `host` is in, or None."""
    task = kernel.tasks.get(host)
    return task.creds.userns if task is not None and task.creds is not None else None


def _vpid_field(kernel, host):
    """A pid field of a /proc file as the guest sees it.  Zero and negative
    values are not pids but their absence (tpgid -1: no controlling terminal;
    a pidfd's Pid -1: its process has exited; 0: none), and stay as they are."""
    return kernel.vpid(host) if host > 0 else host


def _is_tmpfs(fd):
    from sentry._native import ffi, lib
    buf = ffi.new("char[120]")
    if lib.sn_fstatfs(fd, buf) != 0:
        return False
    return int.from_bytes(ffi.buffer(buf, 8)[:], "little") == TMPFS_MAGIC


def _pids_down(pidns, host):
    """NSpid's and NStgid's list: a task's number in the sandbox's namespace
    and in each one below down to its own."""
    chain = list(pidns.chain()) if pidns is not None else []
    return "\t".join(str(ns.virtual(host)) for ns in reversed(chain))


def _ipc_sysctls(kernel):
    """{"kernel/msgmax": O_PATH fd, ...}: the sandbox's IPC namespace's
    settings, as its helper opened them there (vfs/mountns.py)."""
    mountns = kernel.mountns
    return mountns.ipc_sysctls if mountns is not None and kernel.private_ipc else {}


def _read_live(fd):
    """A setting's value, read through a fresh open of the kernel's file."""
    f = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(f, 4096)
    finally:
        os.close(f)


def _own_sockets(kernel):
    """What the Sentry's own sockets of the sandbox's network namespace add to
    its /proc/net/sockstat counts: those made at set-up (vfs/mountns.py
    confine), and each UDP relay bound since (sentry/net/udp.py)."""
    hidden = dict(getattr(kernel.mountns, "own_sockets", None) or {})
    relays = getattr(kernel, "udp_relays", None)
    for ip, _ in (relays.made if relays is not None else ()):
        key = ("UDP", "inuse") if ip.version == 4 else ("UDP6", "inuse")
        hidden[key] = hidden.get(key, 0) + 1
    return hidden


def _sysvipc_tables(kernel):
    """{name: fd} of the sandbox's /proc/sysvipc tables; none without its
    own IPC namespace (an unprivileged Sentry without user namespaces)."""
    mountns = kernel.mountns
    return mountns.sysvipc if mountns is not None and kernel.private_ipc else {}


class ProcMount(Mount):
    kind = "proc"
    synthetic = True
    stable_links = False          # /proc/self means someone else to the next caller
    pidns = None                  # the PID namespace it shows (None: the sandbox's)

    def __init__(self, path, private_dir, kernel_ref):
        os.makedirs(private_dir, exist_ok=True)
        super().__init__(path, private_dir, readonly=True)
        self.newest_listed_first = _is_tmpfs(self.fd)
        self.kernel_ref = kernel_ref   # () -> Kernel, once it exists
        self._ctx = None               # the call being served
        self.ns_store = self.host_root + ".ns"       # one file per namespace, outside the tree
        os.makedirs(self.ns_store, mode=DIR_MODE, exist_ok=True)
        # a dir fd makes os.link call linkat(2), the one the Sentry's filter allows
        self.ns_store_fd = os.open(self.ns_store, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.ns_base = 0xF0000000 + int.from_bytes(os.urandom(3), "little") * 16
        self.ns_own = {}               # name -> the Sentry's own namespace's link

    def magic_link(self, rel):
        """Whether rel is one of /proc's magic links: they name an object,
        not a path (fd/N, cwd, root, exe …)."""
        return MAGIC.fullmatch(rel) is not None

    def view(self, path, pidns, store):
        """This /proc as PID namespace pidns shows it, mounted at path."""
        return ProcView(self, path, pidns, store)

    def fd_of(self, rel, ctx):
        """(pid, fd) when rel is <pid>/fd/<N> of a sandbox process."""
        parts = rel.split("/")
        if len(parts) == 3 and parts[0].isdigit() and parts[1] == "fd" and parts[2].isdigit():
            return int(parts[0]), int(parts[2])
        return None

    def control_file(self, rel):
        """(pid, name) for /proc/<pid>/{uid_map,gid_map,setgroups,timens_offsets}, whose
        writes the Sentry parses (syscalls/controlfiles.py); else None."""
        parts = rel.split("/")
        if len(parts) == 2 and parts[0].isdigit() and parts[1] in CONTROL_FILES:
            return int(parts[0]), parts[1]
        return None

    def file_owner(self, rel):
        """A process's control files are its own, as its euid and egid
        (proc_pid_make_inode), for the permission to open them."""
        found = self.control_file(rel)
        kernel = self.kernel_ref()
        if found is None or kernel is None:
            return None
        with kernel.viewed_from(self.pidns or kernel.pids):
            task = kernel.task_of(found[0])
        if task is None or task.creds is None:
            return None
        return task.creds.euid, task.creds.egid

    def check_content_writable(self, rel):
        if self.control_file(rel) is not None:
            return
        if self.live_file(rel) is not None:
            if rel in FIXED_SYSCTLS:
                raise SyscallError(errno.EACCES)
            return
        if rel.rsplit("/", 1)[-1] not in WRITABLE:
            raise SyscallError(errno.EROFS)

    def live_file(self, rel):
        kernel = self.kernel_ref()
        if kernel is None or not rel.startswith("sys/"):
            return None
        if rel.startswith("sys/net/"):
            return self._net_live(kernel, rel)
        return _ipc_sysctls(kernel).get(rel[len("sys/"):])

    def _net_live(self, kernel, rel):
        """The sandbox's own network namespace's file for /proc/sys/net/...,
        as its helper opened it there (vfs/mountns.py net_sysctl_file): a
        root of that namespace reads and writes it as on Linux, and a write
        lands in that namespace only.  None for a directory, or under
        --network=host (the host's settings, served read-only)."""
        mountns = kernel.mountns
        if mountns is None or getattr(mountns, "netns_fd", None) is None:
            return None
        if rel == "sys/net/" + PORT_START:
            # the Sentry applies this threshold itself (vfs/mountns.py): the
            # kernel's is 0; the file shows the Sentry's, and is not written
            return None
        try:
            if not stat.S_ISREG(os.lstat(os.path.join(self.host_root, rel)).st_mode):
                return None
            return mountns.net_sysctl_file(rel.split("/")[2:])
        except OSError:
            return None

    # ---- generation ---------------------------------------------------

    def prepare(self, rel, ctx, final=True):
        kernel = self.kernel_ref()
        if kernel is None or ctx is None:
            return
        # /proc is its PID namespace's, whoever reads it (as a mount of proc
        # is its mounter's namespace's on Linux): the sandbox's, or a view's
        with kernel.viewed_from(self.pidns or kernel.pids):
            self._prepare(kernel, rel, ctx, final)

    def _prepare(self, kernel, rel, ctx, final):
        self._ctx = ctx
        parts = [] if rel == "." else rel.split("/")
        if not parts:
            if final:                  # /proc itself: it may be listed
                self._fill_root(kernel, ctx)
            return
        head = parts[0]
        if head == "self":
            self._link("self", str(kernel.vpid_of(ctx.process)))
        elif head == "thread-self":
            self._link("thread-self", f"{kernel.vpid_of(ctx.process)}/task/{kernel.vtid_of(ctx.task)}")
        elif head == "mounts":
            self._link("mounts", "self/mounts")
        elif head.isdigit():
            self._pid_entry(kernel, int(head), parts[1:], final=final)
        elif head == "sys":
            self._sysctl(kernel, "/".join(parts), final)
        elif head == "net":
            self._net_dir(kernel, "net", ctx.process.netns, ctx.tid, parts[1:], final)
        elif head == "sysvipc" and _sysvipc_tables(kernel):
            self._sysvipc(kernel, parts[1:], final)
        elif rel == "uptime" and ctx.process.timens is not None:
            self._file("uptime", self._uptime(ctx.process.timens))
        elif "/".join(parts) in PASSTHROUGH or (head in PASSTHROUGH and len(parts) == 1):
            self._copy_host("/".join(parts))
        elif head in SYNTHETIC and len(parts) == 1:
            self._file(head, SYNTHETIC[head])
        elif head in PASSTHROUGH_DIRS and len(parts) == 1 and os.path.isdir(f"/proc/{head}"):
            self._dir(head)
            if final:                  # listed: every file it holds on this host
                for name in PASSTHROUGH:
                    if name.startswith(head + "/"):
                        self._copy_host(name)

    def _numbered_dirs(self, path, numbers):
        """Make path's numeric entries exactly `numbers`, listed in ascending
        order as Linux lists pids and tids (`ps -ef` shows them so).  The
        private /proc is on tmpfs, which lists its entries newest first: they
        are made in descending order, and a number that comes in above others
        has those made again after it (their contents are made anew at their
        next lookup anyway)."""
        d = os.path.join(self.host_root, path)
        wanted = set(numbers)
        have = []
        for name in os.listdir(d):                       # in listing order
            if name.isdigit():
                if int(name) in wanted:
                    have.append(int(name))
                else:
                    shutil.rmtree(os.path.join(d, name), ignore_errors=True)
        make = wanted - set(have)
        if self.newest_listed_first and (make or have != sorted(have)):
            # everything below the highest newcomer (or all, if the order broke)
            top = max(make) if make and have == sorted(have) else max(have)
            for n in have:
                if n <= top and n not in make:
                    shutil.rmtree(os.path.join(d, str(n)), ignore_errors=True)
                    make.add(n)
        for n in sorted(make, reverse=self.newest_listed_first):
            self._dir(f"{path}/{n}" if path != "." else str(n))

    def _fill_root(self, kernel, ctx):
        self._numbered_dirs(".", kernel.visible_pids())
        # Names only: each file's content is made anew when it is looked up.
        for name in PASSTHROUGH | set(SYNTHETIC):
            if "/" not in name and not os.path.exists(os.path.join(self.host_root, name)):
                if name in SYNTHETIC:
                    self._file(name, SYNTHETIC[name])
                else:
                    self._copy_host(name)
        for name in PASSTHROUGH_DIRS:
            if os.path.isdir(f"/proc/{name}"):
                self._dir(name)
        self._link("self", str(kernel.vpid_of(ctx.process)))
        self._link("thread-self", f"{kernel.vpid_of(ctx.process)}/task/{kernel.vtid_of(ctx.task)}")
        self._link("mounts", "self/mounts")
        self._dir("sys/kernel")
        self._dir("net")
        if _sysvipc_tables(kernel):
            self._dir("sysvipc")

    def _pid_entry(self, kernel, pid, rest, task_of=None, final=True):
        """/proc/<pid>/… (or /proc/<pid>/task/<tid>/… with task_of=pid).  The
        whole directory is filled only when it is itself the final name."""
        base = f"{task_of}/task/{pid}" if task_of else str(pid)
        proc = kernel.process_of(pid) if task_of is None else kernel.process_of(task_of)
        if proc is None and task_of is None:
            proc = kernel.zombie_of(pid)          # until reaped: state Z, as Linux shows it
        alive = proc is not None and (task_of is None or kernel.is_sandbox_task(pid))
        if not alive:
            shutil.rmtree(os.path.join(self.host_root, base), ignore_errors=True)
            return
        self._dir(base)
        if not rest and not final:
            return
        names = [rest[0]] if rest else sorted(PER_PROCESS)
        for name in names:
            if name in PER_PROCESS:
                self._per_process(kernel, proc, pid, base, name, rest[1:] if rest else [], final)

    def _per_process(self, kernel, proc, pid, base, name, rest, final=True):
        host = kernel.host_pid(pid)
        path = f"{base}/{name}"
        try:
            if name == "exe":
                self._link(path, proc.exe or "/")
            elif name == "root":
                self._link(path, "/")
            elif name == "cwd":
                self._link(path, self._sandbox_path(kernel, os.readlink(f"/proc/{host}/cwd"), proc))
            elif name == "fd":
                self._fds(kernel, host, path, proc)
            elif name == "ns":
                self._namespaces(proc, host, path, rest, final)
            elif name == "net":
                self._net_dir(kernel, path, proc.netns, host, rest, final)
            elif name == "fdinfo":
                self._fdinfo(kernel, host, path)
            elif name == "task":
                self._tasks(kernel, proc, path, rest, final)
            elif name == "status":
                self._file(path, self._status(kernel, proc, pid, host))
            elif name == "stat":
                self._file(path, self._stat(kernel, proc, pid, host))
            elif name == "cmdline":
                self._file(path, self._cmdline(proc, host))
            elif name == "comm":
                self._file(path, (self._comm(proc, host) + "\n").encode())
            elif name == "maps":
                self._file(path, self._maps(kernel, host))
            elif name == "smaps":
                self._file(path, self._maps(kernel, host, "smaps"))
            elif name == "smaps_rollup":
                self._file(path, self._smaps_rollup(kernel, host))
            elif name in ("loginuid", "sessionid"):
                self._file(path, UNSET_AUDIT_ID)
            elif name in USERNS_FILES:
                self._file(path, self._userns_file(kernel, proc, host, name), writable=True)
            elif name == "timens_offsets":
                self._file(path, kernel.time_offsets_text(proc).encode(), writable=True)
            elif name == "wchan":
                with open(f"/proc/{host}/wchan", "rb") as f:
                    wchan = f.read()
                # held by the Sentry at a syscall, as stat's 't' (_state): to
                # the guest it runs ("0") or waits in that call, not in ptrace
                self._file(path, b"0" if wchan == b"ptrace_stop" else wchan)
            elif name in ("mounts", "mountinfo"):
                self._file(path, self._mounts(kernel.mounts_of(proc), name == "mountinfo"))
            elif name == "cgroup":
                self._file(path, b"0::/\n")
            elif name in WRITABLE and os.path.exists(os.path.join(self.host_root, path)):
                pass   # keeps what the guest wrote (the host would need CAP_SYS_RESOURCE)
            elif name == "limits":
                with open(f"/proc/{host}/limits", "rb") as f:
                    self._file(path, self._limits(proc, f.read()))
            elif name in PER_PROCESS_PASSTHROUGH:
                with open(f"/proc/{host}/{name}", "rb") as f:
                    self._file(path, f.read(), writable=name in WRITABLE)
        except FileNotFoundError:
            pass     # the process is gone meanwhile: the lookup will say ENOENT

    def _ns_link(self, proc, host, name):
        """What /proc/<pid>/ns/<name> reads: "kind:[N]"."""
        if name == "user":
            ns = _userns_of(self.kernel_ref(), host)
            if ns is not None:
                return f"user:[{ns.ident}]"                        # one a guest made
        if name == "uts" and proc.uts is not None and proc.uts.serial:
            return f"uts:[{self.ns_base + len(NS_KINDS) + proc.uts.serial}]"     # one a guest made
        time_ns = {"time": proc.timens, "time_for_children": proc.timens_children}.get(name)
        if time_ns is not None:
            return f"time:[{time_ns.ident}]"                        # one a guest made
        if name == "net" and proc.netns is not None:
            return f"net:[{proc.netns.ident}]"                       # one a guest made
        pidns = {"pid": proc.pidns, "pid_for_children": proc.pidns_children}.get(name)
        if pidns is not None and pidns.level > 0:
            return f"pid:[{self.ns_base + PIDNS_SERIALS + pidns.serial}]"      # one a guest made
        if name == "mnt" and proc.mounts is not None:
            return f"mnt:[{self.ns_base + MNTNS_SERIALS + proc.mounts.serial}]"   # one a guest made
        real = os.readlink(f"/proc/{host}/ns/{name}")
        if name not in self.ns_own:
            self.ns_own[name] = os.readlink(f"/proc/self/ns/{name}")
        if real != self.ns_own[name]:
            return real                  # the sandbox's own: the kernel's number
        kind = name.replace("_for_children", "")
        return f"{kind}:[{self.ns_base + NS_KINDS.index(kind)}]"

    def namespace_file(self, host_path):
        """(kind, number, whether it is the sandbox's own) of a namespace
        file this /proc made, at a guest fd's host path (what opening
        /proc/<pid>/ns/<name> reaches: setns(2)); None for any other file."""
        if not host_path.startswith(self.host_root + "/"):
            return None
        parts = host_path[len(self.host_root) + 1:].split("/")
        found = re.fullmatch(r"([a-z]+):\[(\d+)\]", parts[-1]) if len(parts) >= 3 and parts[-2] == "ns" else None
        if found is None:
            return None
        kind, number = found.group(1), int(found.group(2))
        return kind, number, kind in NS_KINDS and number == self.ns_base + NS_KINDS.index(kind)

    def _namespaces(self, proc, host, path, rest, final):
        self._dir(path)
        if rest and rest[0] not in NS_NAMES:
            # a link being followed: its target, one inode per namespace
            links = {self._ns_link(proc, host, n) for n in NS_NAMES}
            if rest[0] in links:
                store = os.path.join(self.ns_store, rest[0])
                if not os.path.exists(store):
                    os.close(os.open(store, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
                try:
                    os.link(rest[0], os.path.join(self.host_root, path, rest[0]), src_dir_fd=self.ns_store_fd)
                except FileExistsError:
                    pass
            return
        for name in ([rest[0]] if rest else NS_NAMES):
            self._link(f"{path}/{name}", self._ns_link(proc, host, name))
        if final and not rest:
            # listed: the links only, not the targets followed before
            for entry in os.listdir(os.path.join(self.host_root, path)):
                if entry not in NS_NAMES:
                    try:
                        os.unlink(os.path.join(self.host_root, path, entry))
                    except FileNotFoundError:
                        pass

    @staticmethod
    def _limits(proc, data):
        """The host's, but the lines of RLIMIT_CORE and RLIMIT_NPROC: the
        sandbox's (syscalls/rlimit.py)."""
        lines = {}
        for name, limit, unit in (("Max core file size", proc.core_limit, "bytes"),
                                  ("Max processes", proc.nproc_limit, "processes")):
            if limit is not None:
                shown = ["unlimited" if v == RLIM_INFINITY else str(v) for v in limit]
                lines[name.encode()] = ("%-25s %-20s %-20s %-10s\n" % (name, *shown, unit)).encode()
        return b"".join(lines.get(l[:25].rstrip(), l) for l in data.splitlines(keepends=True))

    def _tasks(self, kernel, proc, path, rest, final):
        self._dir(path)
        if rest and rest[0].isdigit():
            self._pid_entry(kernel, int(rest[0]), rest[1:], task_of=kernel.vpid_of(proc), final=final)
        else:
            self._numbered_dirs(path, [kernel.vtid_of(kernel.tasks[t]) for t in list(proc.threads) if t in kernel.tasks])

    # ---- contents -------------------------------------------------------

    def _comm(self, proc, host):
        # The kernel named the process after what the Sentry ran (ld.so, a
        # resolved path); a name the process gave itself since (PR_SET_NAME)
        # is kept.
        with open(f"/proc/{host}/comm") as f:
            comm = f.read().rstrip("\n")
        return proc.comm if proc.comm and comm == proc.kernel_comm else comm

    @staticmethod
    def _state(state, proc, ctx):
        """A task the Sentry holds at a syscall shows 't (tracing stop)' to
        the host; to the guest it is running (it is the one asking) or asleep."""
        if state != "t":
            return state
        return "R" if ctx is not None and ctx.process is proc else "S"

    def _status(self, kernel, proc, vtid, host):
        task = kernel.tasks.get(host)
        creds = task.creds if task is not None else None
        ids = {
            "Pid": vtid, "NSpid": _pids_down(proc.pidns, host), "Tgid": kernel.vpid_of(proc),
            "NStgid": _pids_down(proc.pidns, proc.tgid),
            "PPid": kernel.ppid_of(proc), "TracerPid": 0,
            "NSpgid": kernel.pgid_of(proc.tgid), "NSsid": kernel.sid_of(proc.tgid),
        }
        out = []
        with open(f"/proc/{host}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key == "State":
                    st = self._state(line.split()[1], proc, self._ctx)
                    line = "State:\t" + {"R": "R (running)", "S": "S (sleeping)"}.get(st, line.split(None, 1)[1].strip()) + "\n"
                elif key == "Name":
                    line = f"Name:\t{self._comm(proc, host)}\n"
                elif key in ids:
                    line = f"{key}:\t{ids[key]}\n"
                elif key == "Ngid":               # a NUMA group's leader: a host pid, or 0
                    line = f"Ngid:\t{_vpid_field(kernel, int(line.split()[1]))}\n"
                elif creds is not None and key in ("Uid", "Gid", "Groups"):
                    vals = {"Uid": (creds.ruid, creds.euid, creds.suid, creds.fsuid),
                            "Gid": (creds.rgid, creds.egid, creds.sgid, creds.fsgid),
                            "Groups": creds.groups}[key]
                    if self._ctx is not None and self._ctx.task.creds is not None:
                        # as the reader's user namespace sees them
                        vals = [self._ctx.task.creds.view("u" if key == "Uid" else "g", v) for v in vals]
                    sep, end = (" ", " ") if key == "Groups" else ("\t", "")
                    line = f"{key}:\t" + sep.join(map(str, vals)) + end + "\n"
                elif creds is not None and key in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
                    val = {"CapEff": creds.cap_effective, "CapPrm": creds.cap_permitted,
                           "CapInh": creds.cap_inheritable, "CapBnd": creds.cap_bounding,
                           "CapAmb": creds.cap_ambient}[key]
                    line = f"{key}:\t{val:016x}\n"
                elif creds is not None and key in ("NoNewPrivs", "Seccomp", "Seccomp_filters"):
                    # the guest's own, not the host's (always set, the Sentry's filter counted)
                    val = {"NoNewPrivs": int(creds.no_new_privs),
                           "Seccomp": 2 if creds.seccomp_filters else 0,
                           "Seccomp_filters": creds.seccomp_filters}[key]
                    line = f"{key}:\t{val}\n"
                out.append(line)
        return "".join(out).encode()

    @staticmethod
    def _userns_file(kernel, proc, host, name):
        """uid_map, gid_map or setgroups of a process's user namespace: the
        sandbox's maps every id to itself, as the first namespace shows."""
        ns = _userns_of(kernel, host)
        if name == "setgroups":
            return b"allow\n" if ns is None or ns.setgroups else b"deny\n"
        kind = name[0]
        if ns is None:
            return b"%10d %10d %10d\n" % (0, 0, 4294967295)
        return ns.map_text(kind).encode()

    def _stat(self, kernel, proc, vtid, host):
        with open(f"/proc/{host}/stat", "rb") as f:
            data = f.read()
        _, _, tail = data.rpartition(b")")
        fields = tail.split()
        fields[0] = self._state(fields[0].decode(), proc, self._ctx).encode()
        fields[1] = str(kernel.ppid_of(proc)).encode()
        for i in (2, 3, 5):                       # pgrp, session, tty's foreground group
            fields[i] = str(_vpid_field(kernel, int(fields[i]))).encode()
        reader_ns = self._ctx.process.timens if self._ctx is not None else None
        if reader_ns is not None:
            # its start, on the reader's time namespace's boottime (do_task_stat)
            shift = reader_ns.offset(time.CLOCK_BOOTTIME) // (NSEC // os.sysconf("SC_CLK_TCK"))
            fields[STAT_STARTTIME] = str(int(fields[STAT_STARTTIME]) + shift).encode()
        return str(vtid).encode() + b" (" + self._comm(proc, host).encode() + b") " + b" ".join(fields) + b"\n"

    def _cmdline(self, proc, host):
        with open(f"/proc/{host}/cmdline", "rb") as f:
            data = f.read()
        # [ld.so, --argv0, ARGV0, EXE, ARGS…] as the Sentry ran it; the
        # program's own argv is [ARGV0, ARGS…]
        args = data.split(b"\0")
        if len(args) >= 4 and args[1] == b"--argv0" and args[3] == proc.exe.encode():
            data = b"\0".join([args[2]] + args[4:])
        return data

    def _maps(self, kernel, host, name="maps"):
        """maps, or smaps: the same header line per mapping, each followed by
        "Key: value" lines."""
        from sentry.platform import staging
        out = []
        skip = False
        with open(f"/proc/{host}/{name}") as f:
            for line in f:
                first = line.split(None, 1)[0] if line.strip() else ""
                if ":" in first:              # smaps: a line about the mapping above
                    if not skip:
                        out.append(line)
                    continue
                skip = line.startswith(f"{staging.BASE:x}-")
                if skip:
                    continue                  # the Sentry's own mapping
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    path = parts[5].rstrip("\n")
                    line = line[:len(line) - len(parts[5])] + self._sandbox_path(kernel, path) + "\n"
                out.append(line)
        return "".join(out).encode()

    def _smaps_rollup(self, kernel, host):
        """The host's totals (the Sentry's mapping's resident page in them)
        over the range of the mappings the guest sees: the Sentry's own one
        would show as the start when it is the lowest."""
        from sentry.platform import staging
        with open(f"/proc/{host}/smaps_rollup", "rb") as f:
            data = f.read()
        if data.startswith(b"%x-" % staging.BASE):
            shown = self._maps(kernel, host)
            if shown:
                data = shown.split(b"-", 1)[0] + data[data.index(b"-"):]
        return data

    def _mounts(self, mounts, info):
        """/proc/mounts or mountinfo of a mount namespace's table: its
        mounts, the root first and each after its parent, named as the
        guest that mounted it did (syscalls/mount.py), or the config
        (MountTable.shown: an OCI spec's source, type and flags), else as
        sentry's, by kind."""
        shown = mounts.shown
        rows = [(m.path, m.readonly, m.kind, getattr(m, "shown_as", None)) for m in mounts.stacked() if m.listed]
        rows.sort(key=lambda r: r[0].count("/") if r[0] != "/" else -1)    # stable: a covered one first
        ids, lines = {}, []
        for i, (path, readonly, kind, own) in enumerate(rows):
            source, fstype, flags = own or shown.get(path) or ("sentry", MOUNT_TYPES.get(kind, "sentryfs"), [])
            opts = ",".join(["ro" if readonly else "rw"] + list(flags))
            ids[path] = i + 1
            if info:
                up = os.path.dirname(path)
                while up not in ids and up != "/":
                    up = os.path.dirname(up)
                parent = ids.get(up, 0) if path != "/" else 0
                lines.append(f"{i + 1} {parent} 0:{i + 1} / {path} {opts} - {fstype} {source} {opts.split(',')[0]}")
            else:
                lines.append(f"{source} {path} {fstype} {opts} 0 0")
        return ("\n".join(lines) + "\n").encode()

    def _per_fd(self, host, kind, path, make):
        """Refill path (fd/ or fdinfo/) with make(name, host entry) for each
        fd of the process but the Sentry's own."""
        self._dir(path)
        d = os.path.join(self.host_root, path)
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        try:
            fds = os.listdir(f"/proc/{host}/{kind}")
        except OSError:
            return
        for fd in fds:
            if is_hidden_fd(int(fd)):
                continue
            try:
                make(f"{path}/{fd}", f"/proc/{host}/{kind}/{fd}")
            except OSError:
                pass                          # closed meanwhile

    def _fds(self, kernel, host, path, proc):
        self._per_fd(host, "fd", path,
                     lambda rel, entry: self._link(rel, self._sandbox_path(kernel, os.readlink(entry), proc)))

    def _fdinfo(self, kernel, host, path):
        def copy(rel, entry):
            with open(entry, "rb") as f:
                lines = f.read().split(b"\n")
            for i, line in enumerate(lines):
                key, _, value = line.partition(b":")
                if key in (b"Pid", b"NSpid") and value.strip().lstrip(b"-").isdigit():
                    lines[i] = key + b":\t" + str(_vpid_field(kernel, int(value))).encode()   # a pidfd's
            self._file(rel, b"\n".join(lines))
        self._per_fd(host, "fdinfo", path, copy)

    def _sysctl(self, kernel, path, final):
        """/proc/sys/…: only the names it offers (a lookup of another one is
        ENOENT and leaves nothing behind); a directory looked up as the final
        name is filled, so that it lists them."""
        if path == "sys/net" or path.startswith("sys/net/"):
            self._net_sysctl(kernel, path, final)
        elif path in SYSCTL_FILES:
            self._sysctl_file(kernel, path)
        elif path in SYSCTL_DIRS:
            self._dir(path)
            if final:
                for name in SYSCTL_FILES | SYSCTL_DIRS:
                    if name.rpartition("/")[0] == path:
                        self._dir(name) if name in SYSCTL_DIRS else self._sysctl_file(kernel, name)
                if path == "sys" and self._net_sysctls(kernel, []) is not None:
                    self._dir("sys/net")

    def _net_sysctls(self, kernel, parts):
        """/proc/sys/net/<parts> as the sandbox's network namespace shows it
        to a process inside (Linux's net sysctls are the reader's
        namespace's): read there by the namespace helper, which lives in it
        (vfs/mountns.py net_sysctl); the host's own under --network=host.
        A directory: {"entries": [[name, is_dir, text]...]}; a file:
        {"text": ...}; None for a name it does not have."""
        from sentry.vfs.mountns import net_sysctl_view
        mountns = kernel.mountns
        try:
            if mountns is not None and getattr(mountns, "netns_fd", None) is not None:
                return mountns.net_sysctl(parts)
            return net_sysctl_view(parts)       # no namespace of its own: the host's is the guest's
        except OSError:
            return None

    def _net_sysctl(self, kernel, path, final):
        """/proc/sys/net/…; a directory looked up as the final name is
        filled, so that it lists them.  In a network namespace of the
        sandbox's own, each file is a stand-in with the kernel's mode and
        no content (the kernel's shows size 0 too): an open gets the
        namespace's own file (live_file), which the kernel then reads and
        writes as the guest's (and root-only ones stay root's: the guest's
        permission is checked on the stand-in).  Under --network=host, the
        host's values, read-only, and only those anyone may read (a
        write-only or root-only one is left out, as sysctl -a leaves it)."""
        parts = path.split("/")[2:]
        got = self._net_sysctls(kernel, parts)
        if got is None:
            return
        live = getattr(kernel.mountns, "netns_fd", None) is not None
        if "text" in got:
            self._net_sysctl_file(path, got["text"], got["mode"], live)
            return
        self._dir(path)
        if final:
            for name, is_dir, text, mode in got["entries"]:
                if is_dir:
                    self._dir(f"{path}/{name}")
                else:
                    self._net_sysctl_file(f"{path}/{name}", text, mode, live)

    def _net_sysctl_file(self, path, text, mode, live):
        if live and path != "sys/net/" + PORT_START:      # that one's value is the Sentry's (live_file)
            self._file(path, b"", mode=mode)
        elif text is not None:
            self._file(path, text.encode("latin-1"))

    def _sysctl_file(self, kernel, path):
        parts = path.split("/")
        live = _ipc_sysctls(kernel).get(path[len("sys/"):])
        if live is not None:
            self._dir(path.rpartition("/")[0])
            try:
                self._file(path, _read_live(live), writable=path not in FIXED_SYSCTLS)
            except OSError:
                pass
        elif parts[1] == "kernel" and parts[2] in KERNEL_OWN:
            self._kernel_sysctl(kernel, parts[2:])
        elif parts[1] == "user" and parts[2].endswith("_namespaces"):
            self._dir("sys/user")
            self._file(path, b"%d\n" % kernel.namespace_limit(parts[2][len("max_"):-len("_namespaces")]))
        elif parts[1:3] == ["fs", "mqueue"]:
            self._dir("sys/fs/mqueue")
            self._file(path, kernel.sysctl.get(f"fs.mqueue.{parts[3]}", f"{MQUEUE_SYSCTLS[parts[3]]}\n").encode())
        else:
            self._copy_host(path)

    def _kernel_sysctl(self, kernel, parts):
        self._dir("sys/kernel")
        name = parts[0]
        # the reader's UTS namespace's, as Linux's /proc/sys/kernel shows
        uts = self._ctx.process.uts if self._ctx is not None and self._ctx.process.uts is not None else kernel.uts
        if name == "hostname":
            self._file("sys/kernel/hostname", (uts.get("hostname", os.uname().nodename) + "\n").encode())
        elif name == "domainname":
            self._file("sys/kernel/domainname", (uts.get("domainname", "(none)") + "\n").encode())
        elif name == "osrelease":
            self._file("sys/kernel/osrelease", (uts.get("release", os.uname().release) + "\n").encode())
        elif name == "ns_last_pid":
            # the reader's PID namespace's, not the host's
            pidns = self._ctx.process.pidns if self._ctx is not None and self._ctx.process.pidns else kernel.pids
            self._file("sys/kernel/ns_last_pid", b"%d\n" % pidns.last())
        elif f"kernel.{name}" in kernel.sysctl:
            # set in the sandbox's IPC namespace at start (the OCI spec's linux.sysctl)
            self._file(f"sys/kernel/{name}", kernel.sysctl[f"kernel.{name}"].encode())
        elif name == "shmmax":
            from sentry.vfs.mountns import SHMMAX
            value = SHMMAX if kernel.shm_capped else IPC_SYSCTLS["shmall"]
            self._file("sys/kernel/shmmax", b"%d\n" % value)
        elif name in IPC_SYSCTLS:
            self._file(f"sys/kernel/{name}", f"{IPC_SYSCTLS[name]}\n".encode())
        elif name == "core_pattern":
            # the default, as a namespace of its own shows: the host's may name its
            # crash handler, and no core file is ever written (sandbox/guest.py)
            self._file("sys/kernel/core_pattern", b"core\n")
        elif name == "random":
            self._dir("sys/kernel/random")
            self._file("sys/kernel/random/uuid", (_uuid4() + "\n").encode())
            self._copy_host("sys/kernel/random/boot_id")
            for name in PASSTHROUGH:
                if name.startswith("sys/kernel/random/"):
                    self._copy_host(name)

    @staticmethod
    def _sandbox_path(kernel, host_path, proc=None):
        """A host path as the sandbox names it (as process proc's mount
        namespace does); non-paths (pipe:[…]) as they are."""
        if not host_path.startswith("/"):
            return host_path
        host_path, deleted = split_deleted(host_path)
        if host_path.startswith("/proc/sys/") and not deleted:
            # a setting's own file, which the helper opened in its /proc
            # (live_file): the kernel names it by that path, the sandbox's too
            return host_path
        spath = kernel.mounts_of(proc).sandbox_path(host_path)
        return (spath or "/") + (DELETED if deleted else "")

    # ---- writing into the private directory -------------------------------

    def _net_dir(self, kernel, path, netns, tid, rest, final):
        """/proc/net/<name> (path "net": the calling thread's) or
        /proc/<pid>/net/<name>: the file as the kernel shows it to host
        thread `tid`, i.e. for its network namespace `netns` (None: the
        sandbox's, or the host's under --network=host, which is not isolated;
        else one a guest made: kernel/netns.py)."""
        self._dir(path)
        if rest:
            names = [rest[0]] if rest[0] in NET_FILES and len(rest) == 1 else []
        else:
            names = NET_FILES if final else []
        for name in names:
            try:
                if netns is not None:
                    # a namespace a guest made: as a process there reads it
                    with open(kernel.mountns.net_file(netns.fd, name), "rb") as f:
                        data = f.read()
                else:
                    with open(f"/proc/{tid}/net/{name}", "rb") as f:
                        data = f.read()
            except OSError:
                continue                       # this kernel has none (no IPv6, say)
            if name in SOCKSTAT_FILES and netns is None:
                data = sockstat_shown(data.decode("latin-1"), _own_sockets(kernel)).encode("latin-1")
            names = getattr(kernel, "outbound_names", None)
            if names is not None and name in ("tcp", "tcp6") and netns is None:
                # the sandbox's outbound connections are host sockets: listed
                # too, with the sandbox's address (sentry/net/hostsock.py)
                data = names.proc_net(name, data)
            self._file(f"{path}/{name}", data)

    def _sysvipc(self, kernel, rest, final):
        """/proc/sysvipc/<name>: the sandbox's IPC namespace's table
        (fsimpl/sysvipc.py), read through the file its helper opened."""
        self._dir("sysvipc")
        tables = _sysvipc_tables(kernel)
        names = ([rest[0]] if len(rest) == 1 and rest[0] in tables else []) if rest else \
            (tables if final else [])
        for name in names:
            try:
                text = sysvipc.read(tables[name])
            except OSError:
                continue
            self._file(f"sysvipc/{name}", sysvipc.translated(name, text, kernel.vpid, kernel.id_view))

    def _dir(self, rel):
        os.makedirs(os.path.join(self.host_root, rel), mode=DIR_MODE, exist_ok=True)

    def _replace(self, rel, make):
        """Create a new version of rel beside it, then rename it over rel:
        a guest reading the old one concurrently sees a whole file."""
        target = os.path.join(self.host_root, rel)
        os.makedirs(os.path.dirname(target), mode=DIR_MODE, exist_ok=True)
        tmp = f"{target}.{os.getpid()}.new"
        make(tmp)
        try:
            os.rename(tmp, target)
        except IsADirectoryError:
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)

    def _file(self, rel, data, writable=False, mode=None):
        if mode is None:
            mode = 0o644 if writable else 0o444

        def make(tmp):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        self._replace(rel, make)

    def _link(self, rel, target):
        path = os.path.join(self.host_root, rel)
        try:
            if os.readlink(path) == target:
                return
        except OSError:
            pass
        self._replace(rel, lambda tmp: os.symlink(target, tmp))

    @staticmethod
    def _uptime(ns):
        """/proc/uptime in time namespace `ns`: its boottime (idle time as the host's)."""
        with open("/proc/uptime", "rb") as f:
            idle = f.read().split()[1]
        sec, nsec = divmod(ns.now(time.CLOCK_BOOTTIME), NSEC)
        return b"%d.%02d %s\n" % (sec, nsec // 10_000_000, idle)

    def _copy_host(self, rel):
        try:
            with open(f"/proc/{rel}", "rb") as f:
                data = f.read()
        except OSError:
            return
        kernel = self.kernel_ref()
        if kernel is not None:                 # --cpus, --memory
            if rel in ("cpuinfo", "stat"):
                data = getattr(kernel.limits, rel)(data)
            elif rel == "meminfo":
                data = kernel.limits.meminfo(data, kernel.resident_bytes())
        self._file(rel, data)


class ProcView(ProcMount):
    """The sandbox's /proc as a PID namespace below the sandbox's shows it:
    what a process of that namespace mounts (`unshare -p -f --mount-proc`).
    Its files are made in a directory of the guest mount store
    (fsimpl/guestmounts.py), behind the store's hidden fd, which every
    guest holds already; the walk names them below that fd (root_rel),
    and ProcMount's own logic takes them as relative to the view's root."""

    def __init__(self, proc, path, pidns, store):
        self.__dict__.update(proc.__dict__)          # its kernel and namespace links
        self.path, self.pidns = path, pidns
        self.root_rel = store.new_name("proc")
        self.host_root = os.path.join(store.host_root, self.root_rel)
        os.mkdir(self.host_root, DIR_MODE)
        self.fd, self.guest_fd = store.fd, store.guest_fd
        self.newest_listed_first = _is_tmpfs(store.fd)
        self._ctx = None

    def _own(self, rel):
        """rel below the store's fd as below the view's root (one that is
        already: unchanged)."""
        if rel == self.root_rel:
            return "."
        return rel[len(self.root_rel) + 1:] if rel.startswith(self.root_rel + "/") else rel

    def prepare(self, rel, ctx, final=True):
        super().prepare(self._own(rel), ctx, final)

    def magic_link(self, rel):
        return super().magic_link(self._own(rel))

    def fd_of(self, rel, ctx):
        return super().fd_of(self._own(rel), ctx)

    def control_file(self, rel):
        return super().control_file(self._own(rel))

    def file_owner(self, rel):
        return super().file_owner(self._own(rel))

    def check_content_writable(self, rel):
        super().check_content_writable(self._own(rel))

    def live_file(self, rel):
        return super().live_file(self._own(rel))


def _uuid4():
    """A random (version 4) UUID as /proc/sys/kernel/random/uuid shows it: what
    str(uuid.uuid4()) gives, without importing uuid (and platform with it) at
    every start."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
