"""The Sentry's view of guest tasks and processes.

Nothing here is a shadow of kernel state that could drift: fds, the cwd,
memory and signal state stay in the host kernel, and the Sentry asks it
(/proc/<tid>/fd, /proc/<tid>/cwd).  What is kept is what the host kernel does
not know about the sandbox: the sandbox path of the running program, the
staging slots of each address space, the virtual pids of the sandbox's PID
namespace and the emulated credentials.
"""

from collections import namedtuple

# What the Sentry checked of an execve it rewrote, for the exec stop: the
# sandbox path of the program, the (dev, ino) the kernel must have mapped,
# the names /proc and the kernel give the process, the files Linux keeps
# from being written while they run, and the (uid, gid) a set-id program
# gives (None for each id it does not set).
PendingExec = namedtuple("PendingExec", "exe dev ino comm kernel_comm busy setid")


class FdTable:
    """What the Sentry keeps of one guest fd table.  Shared by the
    processes that share the table (threads, CLONE_FILES); an exec unshares it."""

    def __init__(self):
        self.shared = False       # another process uses it too (CLONE_FILES): a number
                                  # one names may change under the other's feet


CORE_MIN = 4096                   # binfmt_elf's min_coredump: one page


class UtsNamespace(dict):
    """The names uname(2) gives (hostname, domainname, release, version) in
    one UTS namespace: the sandbox's first one (Kernel.uts), or one a guest
    made with unshare(CLONE_NEWUTS), numbered in the order made; `owner` the
    user namespace its maker was in (None: the sandbox's), whose capability
    sethostname needs."""
    made = 0

    def __init__(self, names=(), serial=0, owner=None):
        super().__init__(names)
        self.serial = serial
        self.owner = owner

    def unshared(self, owner=None):
        UtsNamespace.made += 1
        return UtsNamespace(self, UtsNamespace.made, owner)


class Process:
    def __init__(self, tgid, vpid, slots, exe="", parent=None, pidns=None):
        self.tgid = tgid              # host pid
        self.vpid = vpid              # the sandbox's name for it (its PID namespace's)
        self.pidns = pidns            # the PID namespace it is in (kernel/pidns.py) …
        self.pidns_children = pidns   # … and its new children's (another after unshare(CLONE_NEWPID))
        self.slots = slots            # staging slots of its address space
        self.exe = exe                # sandbox path of the running program
        self.parent = parent
        self.children = set()         # Processes whose parent this is
        if parent is not None:
            parent.children.add(self)
        self.pending_exec = None      # a PendingExec, checked at PTRACE_EVENT_EXEC
        self.busy = ()                # (dev, ino) of the files it runs: not writable (ETXTBSY)
        self.comm = ""                # its name, as Linux would give it …
        self.kernel_comm = ""         # … where the host kernel's is that of what the Sentry ran
        self.threads = set()
        self.last_creds = None        # its leader's, once it exited (a zombie's siginfo names them)
        self.core_limit = None        # (soft, hard) RLIMIT_CORE as the guest sees it (syscalls/rlimit.py)
        self.files = FdTable()
        self.fs_shared = False        # its cwd and root are another process's too (CLONE_FS)
        self.nproc_limit = None       # (soft, hard) RLIMIT_NPROC, the same way
        self.handover = None          # its fd handover listener, if not the first process's (kernel/joined.py)
        self.host_socket_traps = False  # it has the filter of outbound sockets' holders (net/hostsock.py)
        self.process_traps = {}         # its own filters' traps: name -> syscall numbers (kernel/fdtraps.py ensure_process_filter)
        self.fd_traps = {}              # fd number -> the calls a filter of its traps there (kernel/fdtraps.py)
        self.uts = None               # its UtsNamespace, inherited at fork
        self.netns = None             # the network namespace it is in, one a guest made (kernel/netns.py; None: the sandbox's)
        self.timens = None            # its time namespace (kernel/timens.py; None: the sandbox's) …
        self.timens_children = None   # … and the one its children and its next image enter
        self.root = "/"               # its root directory (chroot(2)), a sandbox path, inherited
        self.mounts = None            # its mount namespace's table (vfs/mount.py; None: the sandbox's)
        self.subreaper_due = False    # the init of a PID namespace, not yet the host's subreaper

    def dumps_core(self):
        """Whether a core-dumping signal that kills it reports a core dump
        (WCOREDUMP), as Linux's would with this RLIMIT_CORE: an ELF core needs
        a limit of a page at least (fs/coredump.c).  The kernel never writes
        one (its real limit is 1, syscalls/rlimit.py)."""
        return self.core_limit is not None and self.core_limit[0] >= CORE_MIN

    def alone(self):
        """Whether no other task can change its fd table or its cwd while it
        is stopped (one thread, nothing shared by CLONE_FILES or CLONE_FS):
        then what a number or a relative name means is fixed until it runs."""
        return len(self.threads) <= 1 and not self.files.shared and not self.fs_shared


class Task:
    def __init__(self, tid, process=None):
        self.tid = tid                # host tid
        self.vtid = 0                 # the sandbox's name for it, once known
        self.creds = None             # sentry.kernel.credentials.Credentials
        self.set_child_tid = 0        # CLONE_CHILD_SETTID address, rewritten at its first stop
        self.clone3_regs = None       # a clone3 child's own (rdi, rsi), given back at its first stop
        self.clone_userns = None      # the user namespace its clone in flight makes for the child
        self.clone_netns = None       # … and the network namespace (kernel/netns.py)
        self.process = process
        self.slots = process.slots if process else None
        self.on_exit = None           # callback for the next syscall-exit stop
        self.guest_args = None        # {arg index: value} a rewrite replaced, for a restart
        self.exit_regs = None         # registers at the syscall-exit stop being handled
        self.sigwait = None           # (deadline, guest's timespec, staged copy) of a restarted sigtimedwait
        self.pin = None               # syscalls/pin.py: the fd holder's number of the file its call names
        self.started = False          # its first ptrace stop has been seen
        self.stale_slots = []         # hidden slots its first run drops (kernel/clone.py start_child)
        self.linked = process is not None
        self.strace_entry = None
        self.strace_start = None       # when its current call trapped (--strace-time=T)
        self.nproc_exceeded = False   # the kernel's PF_NPROC_EXCEEDED: a set*uid went over RLIMIT_NPROC
        self.refused = False          # a fork/clone past a limit made it: it exits at its first stop
        self.reaping = None           # host pid of a refused child its parent reaps (Kernel.refuse)
        self.injecting = False        # a call Kernel.inject_after set up has not run yet
        self.deferred = []            # (signal, siginfo) held back until it has
        self.redelivered = {}         # signal -> its original siginfo, sent again
        self.clone_namespaces = 0     # CLONE_NEWPID/CLONE_NEWUTS its clone in progress asked for
                                      # (syscalls/process.py took them off the host's call)

    def attach(self, process):
        self.process = process
        self.slots = process.slots
        self.linked = True
        process.threads.add(self.tid)

    def leave(self):
        if self.slots is not None:
            self.slots.release(self.tid)
        if self.process is not None:
            self.process.threads.discard(self.tid)
