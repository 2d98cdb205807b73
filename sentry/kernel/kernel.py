"""The Kernel: one tracer loop serving every guest task.

Stops come from native/tracer.c (sn_wait), already sorted by kind; the ones
it could answer alone never reach here.  This module holds the Kernel's
state and the loop that hands each stop to the code for its kind, one
module per job:

  dispatch.py   seccomp and syscall-exit stops: a trapped call and its outcome
  clone.py      fork, vfork, clone: new tasks and their limits
  exec.py       the exec stop: the new image checked, the process renewed
  exit.py       a task's end, zombies and reaping
  signals.py    signal-delivery stops: the siginfo the guest sees
  pids.py       pid translation, guest <-> host
  publish.py    the ids the C fast path answers getpid and its kin with
  borrow.py     duplicates of guest fds for handlers to act on
  joined.py     processes `exec` adds to the running sandbox
"""
import collections
import errno
import logging
import os
import resource

from sentry._native import lib
from sentry.kernel import audit, idmap, namespaces, timens
from sentry.kernel.borrow import FdBorrowing
from sentry.kernel.clone import NewTasks
from sentry.kernel.credentials import Credentials
from sentry.kernel.dispatch import SyscallDispatch
from sentry.kernel.exec import Exec
from sentry.kernel.exit import ZOMBIE_SWEEP, Exit
from sentry.kernel.joined import JoinedProcesses
from sentry.kernel.limits import Limits, PidsLimit
from sentry.kernel.pidns import PidNamespace
from sentry.kernel.pids import PidTranslation
from sentry.kernel.publish import IdentityPublishing
from sentry.kernel.signals import SignalDelivery
from sentry.kernel.task import Process, Task, UtsNamespace
from sentry.platform import ptrace
from sentry.platform.staging import Slots


log = logging.getLogger("sentry")


class Kernel(SyscallDispatch, NewTasks, Exec, Exit, SignalDelivery, PidTranslation,
             IdentityPublishing, FdBorrowing, JoinedProcesses):
    def __init__(self, mounts, table, strace=None, pids_limit=0, creds=None, limits=None):
        self.mounts = mounts           # the sandbox's mount namespace's table
        self.table = table             # sentry.kernel.syscall.SyscallTable: what each call gets
        self.limits = limits or Limits()
        self.strace = strace           # sentry.strace.Tracer or None
        self.tasks = {}                # tid -> Task
        self.processes = {}            # tgid -> Process
        self.zombies = {}              # tgid -> (start time, Process): exited, not yet reaped
        self.pids = PidNamespace()     # the sandbox's PID namespace
        self.viewer = self.pids        # the one pid questions are answered in (pids.py)
        self.nested_pidns = {}         # host tid -> the PID namespace below the sandbox's it is in
        self.sweep_at = ZOMBIE_SWEEP
        self.stale_rows = collections.deque()
        self.recently_gone = {}        # tgid -> Process, oldest first: its SIGCHLD may be on its way
        self.first_creds = creds or Credentials()
        # RLIMIT_CORE as the guest sees it (syscalls/rlimit.py): sentry's own at start
        self.first_core_limit = tuple(v & 0xFFFFFFFFFFFFFFFF for v in resource.getrlimit(resource.RLIMIT_CORE))
        # RLIMIT_NPROC as the guest sees it, and counts it by emulated uid (Kernel.nproc_over)
        self.first_nproc_limit = tuple(v & 0xFFFFFFFFFFFFFFFF for v in resource.getrlimit(resource.RLIMIT_NPROC))
        self.phantoms = {}             # host pid -> None: refused children whose SIGCHLD is not the guest's
        self.fast_ids = strace is None  # --strace sees every call: no C answers
        lib.sn_park_first_stops(int(self.fast_ids))     # every task Python knows has a row then
        self.proxied = {}              # (host tgid, sig) -> sender (host tgid, vpid, ruid): signals
                                       # the Sentry sent for a guest
        # tasks at most (0: no limit), as a pids cgroup; a PidsLimit may change while it runs
        self.pids_max = pids_limit if isinstance(pids_limit, PidsLimit) else PidsLimit(pids_limit)
        self.init = None               # the sandbox's first process
        self.init_status = None        # wait status of init, once it exited
        self.event = ptrace.new_event()
        self.warned = set()
        self.uts = UtsNamespace()      # hostname, domainname, release, version: the sandbox's
        self.container_timens = None   # the OCI spec's time namespace: entered at each process's first execve
        self.abstract_prefix = b"sentry-%x/" % os.getpid()   # namespaces abstract sockets
        self.mountns = None            # the private mount namespace's helper (vfs/mountns.py), if any
        self.sysctl = {}               # sysctls set in the sandbox's namespaces: name -> as the kernel shows it
        self.private_ipc = False       # its IPC namespace is the guest's (syscalls/ipc.py)
        self.shm_capped = False        # … and no segment there is larger than SHMMAX
        self.mm_checked = frozenset()  # numbers of the calls C checks against the staging area
        self.outbound = None           # --network=sandbox: outbound connections (sentry/net/outbound.py)
        self.netns_cookie = None       # the sandbox network namespace's SO_NETNS_COOKIE (8 bytes), if it has one
        self.netns = None              # … and its network namespaces, with those guests make (kernel/netns.py)
        self.outbound_names = None     # … and the sandbox names they show (sentry/net/hostsock.py)
        self.udp_relays = None         # … and its UDP relays (sentry/net/udp.py)
        self.netns_probes = {}         # family -> a datagram socket of the sandbox's namespace (the same)
        self.dns_addresses = set()     # resolvers the DNS relay serves inside the sandbox (sentry/net/dns.py)
        self.sandbox_networks = ()     # eth0's subnet, the sandbox's own (vfs/netns.py), when it has one
        self.net_policy = None         # their --net-allow policy (sentry/net/policy.py)
        self.audit = audit.OFF         # --audit's trail (kernel/audit.py)
        self.handover_listener = None  # answers the guest's fd handovers (platform/handover.py)
        self.fd_holder = None          # holds the files guests name by magic link (platform/fdholder.py)

    def namespace_limit(self, kind):
        """/proc/sys/user/max_<kind>_namespaces as the sandbox shows it."""
        return namespaces.limit(kind, net=self.netns is not None)

    def mounts_of(self, proc):
        """The table of a process's mount namespace (the sandbox's, unless
        it or an ancestor made one: syscalls/namespaces.py)."""
        return self.mounts if proc is None or proc.mounts is None else proc.mounts

    @staticmethod
    def time_offsets_text(proc):
        """/proc/<pid>/timens_offsets: its time namespace for children's."""
        return timens.text(proc.timens_children)

    # ---- start ---------------------------------------------------------

    def adopt_init(self, pid):
        proc = Process(pid, self.pids.add(pid), Slots(), pidns=self.pids)
        self.pids.init = pid
        self.processes[pid] = proc
        task = Task(pid, None)
        task.vtid = proc.vpid
        log.debug("task %d is host %d", proc.vpid, pid)
        task.creds = self.first_creds.copy()
        proc.core_limit = self.first_core_limit
        proc.nproc_limit = self.first_nproc_limit
        proc.uts = self.uts
        task.attach(proc)
        task.started = True
        self.tasks[pid] = task
        self.init = proc
        self.publish(task)
        self.audit.event("start", task)

    # ---- loop ----------------------------------------------------------

    def run(self):
        """Serve the guest until no task is left; returns init's wait status."""
        ev = self.event
        while True:
            r = ptrace.wait(ev)
            if r == -errno.EINTR:
                continue
            if r < 0:
                break   # ECHILD: every guest task is gone
            try:
                self.dispatch(ev)
            except ptrace.TaskGone:
                if ev.kind == ptrace.EXEC:
                    ptrace.kill_task(ev.tid)   # an image never checked never runs
            except Exception:
                # A bug must not take the sandbox down, nor leave the task
                # stopped for ever: log it, and fail closed where the task
                # would otherwise go on unchecked.
                log.exception("event %d of task %d", ev.kind, ev.tid)
                if ev.kind == ptrace.EXEC:
                    ptrace.kill_task(ev.tid)   # a new image that was not checked
                    ptrace.resume(ev.tid)
                elif ev.kind == ptrace.SECCOMP:
                    self._refuse_call(ev.tid)  # the call as the guest made it must not run
                else:
                    ptrace.resume(ev.tid)
                    if ev.kind in (ptrace.FORK, ptrace.VFORK, ptrace.CLONE):
                        ptrace.resume(ev.msg)  # the child waits for this event too
        return self.init_status

    def unpin(self, task):
        """The task's call no longer names the file it pinned (syscalls/pin.py)."""
        n, task.pin = task.pin, None
        if n is not None:
            self.fd_holder.drop(n)

    def _refuse_call(self, tid):
        """After a bug at a seccomp stop: skip the call with ENOSYS (or kill
        the task if even that fails).  A task that is not stopped any more
        was resumed by the handler, its decision made."""
        task = self.tasks.get(tid)
        if task is not None:
            task.on_exit = task.guest_args = None
        try:
            regs = ptrace.getregs(tid)
            regs.orig_rax = 0xFFFFFFFFFFFFFFFF
            regs.rax = -errno.ENOSYS & 0xFFFFFFFFFFFFFFFF
            ptrace.setregs(tid, regs)
            ptrace.resume(tid)
        except ptrace.TaskGone:
            pass
        except Exception:
            log.exception("cannot refuse the call of task %d: killed", tid)
            ptrace.kill_task(tid)
            ptrace.resume(tid)

    def dispatch(self, ev):
        tid, kind = ev.tid, ev.kind
        if tid == self.spawner:
            self.on_spawner_event(ev)
            return
        if self.init_status is not None and kind not in (ptrace.EXITED, ptrace.SIGNALED):
            # The sandbox is ending: a task the last sweep missed (created
            # meanwhile) dies at its first stop.
            ptrace.kill_task(tid)
            ptrace.resume(tid)
            return
        if kind == ptrace.SECCOMP:
            task = self.task(tid)
            if ev.code == lib.SN_STAGING_FIRST and not task.slots.mapped and not task.injecting:
                # C would have answered it but for the staging area, which a
                # new image lacks: mapped first, the call runs again to C
                self.map_staging(task, ptrace.regs_of(ev))
            else:
                if ev.code == lib.SN_STAGING_FIRST and task.slots.mapped:
                    # another thread mapped it meanwhile (C's mmap for this
                    # one found it there): C stages for this one too from now on
                    task.slots.mark_mapped(tid)
                self.on_syscall(task, ptrace.regs_of(ev))
        elif kind == ptrace.SYSCALL_EXIT:
            self.on_syscall_exit(self.task(tid), ptrace.regs_of(ev))
        elif kind in (ptrace.FORK, ptrace.VFORK, ptrace.CLONE):
            self.on_new_task(self.task(tid), ev.msg, kind, ptrace.regs_of(ev))
            self.resume(self.task(tid))
        elif kind == ptrace.EXEC:
            self.on_exec(tid, ev.msg)
        elif kind in (ptrace.EXITED, ptrace.SIGNALED):
            self.on_gone(tid, ev.status)
        elif kind == ptrace.NEW_STOP:
            task = self.task(tid)
            task.started = True
            if task.linked:
                self.start_child(task)
            # else: resumed once its parent's clone event has told us who it is
        elif kind == ptrace.GROUP_STOP:
            ptrace.listen(tid)   # job control: stay stopped until SIGCONT
        elif kind == ptrace.SIGNAL:
            self.on_signal(self.task(tid), ev.sig)
        elif kind == ptrace.GONE:
            pass
        else:   # EXIT, VFORK_DONE, other events: nothing to do
            self.resume(self.task(tid))

    def resume(self, task, sig=0):
        """Continue a task from an event stop, keeping a pending syscall-exit
        stop (a rewrite's callback, --strace) that the event interrupted."""
        if task.on_exit is not None or lib.sn_exit_pending(task.tid):
            ptrace.resume_to_exit(task.tid, sig)
        else:
            ptrace.resume(task.tid, sig)

    @property
    def id_view(self):
        """How host ids look from inside (kernel/idmap.py), for the tables
        the kernel lists in host ids (/proc/sysvipc)."""
        return idmap.current

    def task(self, tid):
        t = self.tasks.get(tid)
        if t is None:
            t = self.tasks[tid] = Task(tid)
        return t
