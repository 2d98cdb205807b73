"""The Kernel: one tracer loop serving every guest task.

Stops come from native/tracer.c (sn_wait), already sorted by kind; the ones
it could answer alone never reach here.  A seccomp stop is dispatched to the
syscall table, whose handler emulates, rewrites or denies the call.  The Sentry
never blocks on a guest's behalf: blocking calls run in the guest's context.
"""
import collections
import errno
import logging
import os
import resource
import signal

from sentry._native import ffi, lib
from sentry.kernel import audit, siginfo
from sentry.kernel.credentials import CAP_SYS_ADMIN, CAP_SYS_RESOURCE, Credentials
from sentry.kernel.limits import Limits
from sentry.kernel.pidns import PidNamespace
from sentry.kernel.task import FdTable, Process, Task
from sentry.loader import image
from sentry.platform import memory, ptrace, seccomp, staging
from sentry.platform.staging import Slots
from sentry.kernel.syscall import Call, Inject, NeedStaging, PASS, Rewrite
from sentry.errors import RESTART_ERRNOS, SyscallError


log = logging.getLogger("sentry")

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_PARENT, CLONE_THREAD = 0x100, 0x200, 0x400, 0x8000, 0x10000
CLONE_PARENT_SETTID, CLONE_CHILD_SETTID = 0x00100000, 0x01000000
SYS_MMAP, SYS_CLONE, SYS_WAIT4, SYS_EXIT = 9, 56, 61, 60
WALL = 0x40000000                  # __WALL
PTRACE_EVENT_STOP = 128
RLIM_INFINITY = 2 ** 64 - 1
PHANTOMS_MAX = 256
RECENTLY_GONE = 256
ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")

ZOMBIE_SWEEP = 64
STALE_ROWS = 1024


class Kernel:
    def __init__(self, mounts, table, strace=None, pids_limit=0, creds=None, limits=None):
        self.mounts = mounts
        self.table = table             # sentry.kernel.syscall.SyscallTable: what each call gets
        self.limits = limits or Limits()
        self.strace = strace           # sentry.strace.Tracer or None
        self.tasks = {}                # tid -> Task
        self.processes = {}            # tgid -> Process
        self.zombies = {}              # tgid -> (start time, Process): exited, not yet reaped
        self.pids = PidNamespace()
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
        self.proxied = {}              # (host tgid, sig) -> sender: signals the Sentry sent for a guest
        self.pids_limit = pids_limit   # tasks at most (0: no limit), as a pids cgroup
        self.init = None               # the sandbox's first process
        self.init_status = None        # wait status of init, once it exited
        self.init_subreaper = False    # what init's PR_GET_CHILD_SUBREAPER says
        self.event = ptrace.new_event()
        self.warned = set()
        self.uts = {}                  # hostname, domainname, release, version
        self.abstract_prefix = b"sentry-%x/" % os.getpid()   # namespaces abstract sockets
        self.mountns = None            # the private mount namespace's helper (platform/mountns.py), if any
        self.mm_checked = frozenset()  # numbers of the calls C checks against the staging area
        self.outbound = None           # --network=sandbox: outbound connections (sentry/net/outbound.py)
        self.net_policy = None         # their --net-allow policy (sentry/net/policy.py)
        self.audit = audit.OFF         # --audit's trail (kernel/audit.py)

    # ---- start ---------------------------------------------------------

    def adopt_init(self, pid):
        proc = Process(pid, self.pids.add(pid), Slots())
        self.processes[pid] = proc
        task = Task(pid, None)
        task.vtid = proc.vpid
        log.debug("task %d is host %d", proc.vpid, pid)
        task.creds = self.first_creds.copy()
        proc.core_limit = self.first_core_limit
        proc.nproc_limit = self.first_nproc_limit
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
        if self.init_status is not None and kind not in (ptrace.EXITED, ptrace.SIGNALED):
            # The sandbox is ending: a task the last sweep missed (created
            # meanwhile) dies at its first stop.
            ptrace.kill_task(tid)
            ptrace.resume(tid)
            return
        if kind == ptrace.SECCOMP:
            self.on_syscall(self.task(tid), ptrace.regs_of(ev))
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
                self.child_settid(task)
                ptrace.resume(tid)
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

    def task(self, tid):
        t = self.tasks.get(tid)
        if t is None:
            t = self.tasks[tid] = Task(tid)
        return t

    # ---- syscalls ------------------------------------------------------

    def on_syscall(self, task, regs):
        entry = self.table.entry(regs.orig_rax)
        call = Call(self, task, regs, entry.decode)
        if self.strace:
            self.strace.begin(task)
        try:
            if entry.outcome == "deny":
                raise SyscallError(entry.deny_errno)
            if entry.handler is None and entry.outcome == "allow":
                # a call our filter lets through, trapped by a guest's own
                # RET_TRACE filter (or for --strace): it runs as it would have
                outcome = PASS
            elif self.strace and entry.handler is None and entry.nr in self.mm_checked:
                # with --strace, C hands over a memory call it found clear of
                # the staging area (tracer.c), so that it is shown: it runs
                outcome = PASS
            elif self.strace and entry.outcome == "allow-if" and \
                    seccomp.allowed_by(entry.allow_if, call.raw):
                # trapped for --strace alone (table.filter_rules(trace_all)): what BPF
                # would have let through runs as it would have
                outcome = PASS
            elif entry.handler is None:
                # checked in C, which let this one through to here: refuse
                raise SyscallError(errno.EPERM, "not checked")
            else:
                outcome = entry.handler.fn(call)
        except NeedStaging:
            self.map_staging(task, regs)
            return
        except Inject as i:
            self.inject(task, regs, i.nr, i.args, i.then)
            return
        except SyscallError as e:
            if entry.outcome == "deny" and entry.name not in self.warned:
                self.warned.add(entry.name)
                log.warning("%s: %s (%s)", entry.name, os.strerror(e.errno),
                            entry.note or "not offered by sentry")
            outcome = -e.errno
            self.audit.denied(task, entry, e.errno)
        except ptrace.TaskGone:
            return
        except ProcessLookupError:
            # another process vanished under the handler: the caller gets
            # ESRCH, never a stop that nothing ends
            outcome = -errno.ESRCH
        except Exception:
            # A bug in one handler must not take the sandbox down.
            log.exception("handler for %s failed", entry.name)
            outcome = -errno.ENOSYS
        self.apply(task, call, entry, outcome)

    def apply(self, task, call, entry, outcome):
        regs = call.regs
        tracer = self.strace
        if outcome is PASS:
            if tracer:
                tracer.enter(task, call, entry, "passed")
                task.on_exit = task.on_exit or (lambda t, r: None)
                ptrace.resume_to_exit(task.tid)
            elif task.on_exit is not None:     # a call the Sentry injected, awaited
                ptrace.resume_to_exit(task.tid)
            else:
                ptrace.resume(task.tid)
            return
        if isinstance(outcome, Rewrite):
            if outcome.nr is not None:
                regs.orig_rax = outcome.nr
            on_exit = outcome.on_exit
            if (on_exit or outcome.restore) and outcome.args:
                # back at the exit (and for a restarted call, which runs
                # again from these registers): the guest's own arguments
                task.guest_args = {i: getattr(regs, ARG_REGS[i]) for i in outcome.args}
                on_exit = on_exit or (lambda t, r: None)
            for i, v in outcome.args.items():
                setattr(regs, ARG_REGS[i], v & 0xFFFFFFFFFFFFFFFF)
            ptrace.setregs(task.tid, regs)
            if tracer:
                tracer.enter(task, call, entry, "rewritten")
            if on_exit or tracer:
                task.on_exit = on_exit or (lambda t, r: None)
                ptrace.resume_to_exit(task.tid)
            else:
                ptrace.resume(task.tid)
            return
        # emulated (value >= 0) or denied (-errno): skip the host call
        regs.orig_rax = 0xFFFFFFFFFFFFFFFF
        regs.rax = outcome & 0xFFFFFFFFFFFFFFFF
        ptrace.setregs(task.tid, regs)
        if tracer:
            tracer.enter(task, call, entry, "denied" if entry.outcome == "deny" else "emulated")
            tracer.exit(task, outcome)
        ptrace.resume(task.tid)

    def on_syscall_exit(self, task, regs):
        cb, task.on_exit = task.on_exit, None
        guest_args, task.guest_args = task.guest_args, None
        result = regs.rax - (1 << 64) if regs.rax >= 1 << 63 else regs.rax
        changed = False
        if guest_args:
            for i, v in guest_args.items():
                setattr(regs, ARG_REGS[i], v)
            changed = True
        if cb is not None and not (guest_args and -result in RESTART_ERRNOS):
            task.exit_regs = regs
            try:
                new = cb(task, result)
            finally:
                task.exit_regs = None
            if new is not None and new != result:
                regs.rax = new & 0xFFFFFFFFFFFFFFFF
                result = new
                changed = True
        if changed:
            ptrace.setregs(task.tid, regs)
        if self.strace and task.strace_entry is not None:
            self.strace.exit(task, result)
        if task.on_exit is not None:       # a callback chained another stop
            ptrace.resume_to_exit(task.tid)
        else:
            ptrace.resume(task.tid)

    def inject(self, task, regs, nr, args, then):
        """Run one syscall of the Sentry's choosing in the guest, then re-run
        the guest's own call from its syscall instruction (it traps again) --
        unless then(result) gives the guest's call its result instead (an
        -ERESTART* code lets the kernel restart it, or say EINTR, as for a
        signal that interrupted it)."""
        saved = ptrace.ffi_copy(regs)
        regs.orig_rax = nr
        for name, v in zip(ARG_REGS, args):
            setattr(regs, name, v)
        ptrace.setregs(task.tid, regs)

        def restore(t, result):
            answer = then(result)
            if answer is None:
                saved.rip -= 2             # back onto the syscall instruction
                saved.rax = saved.orig_rax
            else:
                saved.rax = answer & 0xFFFFFFFFFFFFFFFF
            ptrace.setregs(t.tid, saved)
            return None

        task.on_exit = restore
        task.strace_entry = None
        ptrace.resume_to_exit(task.tid)

    def inject_after(self, task, nr, args, result, then=None):
        """From an on_exit callback: run one more syscall of the Sentry's
        choosing in the guest (a cleanup), then let the guest's call return
        `result` (then(its result) first, if given).  The extra call stops
        at its entry and at its exit."""
        regs = task.exit_regs
        saved = ptrace.ffi_copy(regs)
        saved.rax = result & 0xFFFFFFFFFFFFFFFF
        regs.rip -= 2                      # back onto the syscall instruction
        regs.rax = regs.orig_rax = nr
        for name, v in zip(ARG_REGS, args):
            setattr(regs, name, v)
        ptrace.setregs(task.tid, regs)

        def at_entry(t, r):
            t.on_exit = at_exit

        def at_exit(t, r):
            t.injecting = False
            if then is not None:
                then(r)
            ptrace.ffi_copy_into(t.exit_regs, saved)
            ptrace.setregs(t.tid, saved)
            deferred, t.deferred = t.deferred, []
            for sig, raw in deferred:
                if raw is not None:
                    t.redelivered[sig] = raw
                ptrace.tgkill(t.process.tgid, t.tid, sig)
        task.on_exit = at_entry
        task.injecting = True
        task.strace_entry = None

    def map_staging(self, task, regs):
        slots = task.slots

        def mapped(result):
            # EEXIST: another thread of this address space mapped it first
            if result == staging.BASE or (result == -errno.EEXIST and staging.is_mapped(task.tid)):
                slots.mapped = True
                slots.slot_of(task.tid)     # the native fast path can stage from now on
            else:
                log.error("cannot map the staging area in %d: %s", task.tid,
                          os.strerror(-result) if result < 0 else hex(result))
                ptrace.kill_task(task.tid)

        self.inject(task, regs, SYS_MMAP,
                    (staging.BASE, staging.SIZE, staging.PROT_READ, staging.MAP_FLAGS,
                     0xFFFFFFFFFFFFFFFF, 0), mapped)

    # ---- process model -------------------------------------------------

    def on_new_task(self, parent, child_tid, kind, regs):
        pproc = parent.process
        child = self.task(child_tid)
        flags = regs.rdi if regs.orig_rax == SYS_CLONE else 0   # clone(2) flags
        child.vtid = self.pids.add(child_tid)
        log.debug("task %d is host %d", child.vtid, child_tid)
        child.creds = parent.creds.copy()
        if kind == ptrace.CLONE and flags & CLONE_THREAD:
            child.attach(pproc)
        else:
            shares_vm = kind == ptrace.VFORK or (kind == ptrace.CLONE and flags & CLONE_VM)
            if shares_vm:
                slots = pproc.slots
            else:
                slots = Slots()
                slots.mapped = pproc.slots.mapped   # fork copies the mapping
            ancestor = pproc.parent if flags & CLONE_PARENT else pproc
            proc = Process(child_tid, child.vtid, slots, pproc.exe, ancestor)
            proc.comm, proc.kernel_comm = pproc.comm, pproc.kernel_comm
            proc.core_limit, proc.nproc_limit = pproc.core_limit, pproc.nproc_limit
            if flags & CLONE_FILES:
                # one fd table for both: a number either names may change
                # under the other's feet (syscalls/locks.py, syscalls/pin.py)
                proc.files = pproc.files
                proc.files.shared = True
            if flags & CLONE_FS:
                proc.fs_shared = pproc.fs_shared = True
            self.processes[child_tid] = proc
            child.attach(proc)
            self.audit.event("start", child, ppid=pproc.vpid)
        self.phantoms.pop(child_tid, None)      # the number is a real child's now
        if (self.pids_limit and len(self.tasks) > self.pids_limit) or self._fork_over_nproc(parent):
            # Over a limit (a pids cgroup's, RLIMIT_NPROC): the parent's
            # fork/clone returns EAGAIN, and the child never runs.
            self.refuse(parent, child, kind == ptrace.CLONE and flags & CLONE_THREAD)
            return
        # The kernel wrote host tids where the caller asked for the child's:
        # the parent's copy now, the child's when it has stopped (it writes
        # its own on its way out of clone).
        vtid = child.vtid
        self.publish(child)
        if not lib.sn_exit_pid(parent.tid):       # translated in C when it can
            parent.on_exit = lambda task, result: vtid if result == child_tid else result
        if flags & CLONE_PARENT_SETTID:
            self._write_tid(parent.tid, regs.rdx, vtid)
        if flags & CLONE_CHILD_SETTID:
            child.set_child_tid = regs.r10
        if child.slots.mapped:
            child.slots.slot_of(child_tid)     # the native fast path can stage from now on
        if child.started:
            self.child_settid(child)
            ptrace.resume(child_tid)

    # ---- limits on new tasks: a pids cgroup's, RLIMIT_NPROC --------------------

    def _fork_over_nproc(self, parent):
        """The kernel's RLIMIT_NPROC check in copy_process, the child counted:
        root (the initial namespace's user, here the sandbox's uid 0) and
        holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN are exempt.  A fork
        that passes clears the parent's PF_NPROC_EXCEEDED."""
        c = parent.creds
        over = (c.ruid != 0 and not c.capable(CAP_SYS_RESOURCE) and not c.capable(CAP_SYS_ADMIN)
                and self.nproc_over(c.ruid, parent.process.nproc_limit[0]))
        if not over:
            parent.nproc_exceeded = False
        return over

    def nproc_over(self, uid, limit, extra=0):
        """Whether the sandbox's tasks of real uid `uid` (+ extra), threads
        and unreaped zombies included as the kernel counts them, are more
        than `limit`."""
        if limit == RLIM_INFINITY or len(self.tasks) + len(self.zombies) + extra <= limit:
            return False
        n = extra + sum(1 for t in list(self.tasks.values()) if t.creds is not None and t.creds.ruid == uid)
        for host, (_, proc) in list(self.zombies.items()):
            if n > limit:
                break
            c = proc.last_creds
            if c is not None and c.ruid == uid and self.in_sandbox_host(host):
                n += 1
        return n > limit

    def nproc_flag(self, task):
        """After a set*uid changed the real uid: the kernel's
        flag_nproc_exceeded (the task itself not yet counted as the new uid)."""
        c = task.creds
        task.nproc_exceeded = c.ruid != 0 and self.nproc_over(c.ruid, task.process.nproc_limit[0], extra=-1)

    def nproc_at_exec(self, task):
        """execve(2) after a set*uid past RLIMIT_NPROC: EAGAIN while the uid
        is still over it (the kernel's PF_NPROC_EXCEEDED rule)."""
        if task.nproc_exceeded:
            if self.nproc_over(task.creds.ruid, task.process.nproc_limit[0]):
                raise SyscallError(errno.EAGAIN)
            task.nproc_exceeded = False

    def refuse(self, parent, child, thread):
        """Undo a fork or clone the kernel already carried out, so that the
        guest sees what Linux shows when copy_process fails: the call
        returns EAGAIN, no child ran, none is left to wait for, no SIGCHLD.
        A thread exits by itself from its first stop (a SIGKILL would take
        its whole thread group); a process is killed, and its parent reaps
        it before its call returns.  Both are waited for here: a new task
        reaches its first stop at once, and a killed one dies at once."""
        tid = child.tid
        if thread:
            child.refused = True
            if child.started:
                self._exit_refused(child)
        else:
            ptrace.kill_task(tid)
        self._collect(tid)
        if thread:
            parent.on_exit = lambda task, result: -errno.EAGAIN
            return
        self.phantoms[tid] = None
        while len(self.phantoms) > PHANTOMS_MAX:
            del self.phantoms[next(iter(self.phantoms))]

        def reap(task, result):
            parent.reaping = tid

            def reaped(r):
                parent.reaping = None
                if r == tid:
                    self.reaped(tid)
            self.inject_after(task, SYS_WAIT4, (tid, 0, WALL, 0), -errno.EAGAIN, then=reaped)
        parent.on_exit = reap

    def _exit_refused(self, task):
        """A refused thread at its first stop, just out of clone: it runs
        exit(0) from the syscall instruction it came out of."""
        regs = ptrace.getregs(task.tid)
        regs.rip -= 2
        regs.rax, regs.orig_rax, regs.rdi = SYS_EXIT, 0xFFFFFFFFFFFFFFFF, 0
        ptrace.setregs(task.tid, regs)
        ptrace.resume(task.tid)

    def _collect(self, tid):
        """Wait for a refused task's end (its stops on the way are let go)."""
        while True:
            try:
                status = lib.sn_take_queued(tid)     # the loop may have taken it already
                if status == -1:
                    _, status = os.waitpid(tid, WALL)
            except ChildProcessError:
                self.on_gone(tid, 0)
                return
            except InterruptedError:
                continue
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self.on_gone(tid, status)
                return
            task = self.tasks.get(tid)
            if task is not None and task.refused and status >> 16 == PTRACE_EVENT_STOP:
                task.started = True
                try:
                    self._exit_refused(task)
                except ptrace.TaskGone:
                    pass
            else:
                ptrace.resume(tid)

    def child_settid(self, task):
        if task.set_child_tid:
            self._write_tid(task.tid, task.set_child_tid, task.vtid)
            task.set_child_tid = 0

    @staticmethod
    def _write_tid(tid, addr, vtid):
        try:
            memory.write(tid, addr, vtid.to_bytes(4, "little"))
        except SyscallError:
            pass        # a bad address: the kernel skipped it too

    def on_exec(self, tid, former_tid):
        if former_tid != tid:
            # a non-leader thread exec'd: it now has the leader's tid
            old = self.tasks.pop(former_tid, None)
            if old is not None:
                old.leave()                   # its slot and /proc/<former_tid>/mem go now
            leader = self.tasks.get(tid)
            if leader is not None:
                leader.leave()
            task = old or self.task(tid)
            task.tid = tid
            if leader is not None:
                task.vtid = leader.vtid       # it takes the leader's pid too
            self.pids.forget(former_tid)
            lib.sn_set_ident(former_tid, ffi.NULL)
            self.tasks[tid] = task
        task = self.tasks[tid]
        proc = task.process
        # the new image has a fresh address space: no staging area yet
        task.leave()
        proc.slots = Slots()
        proc.files = FdTable()         # exec unshares the fd table
        task.pin = None
        task.attach(proc)
        pending, proc.pending_exec = proc.pending_exec, None
        # The image has not run a single instruction yet.  Unless it is the
        # file the Sentry read and the kernel mapped nothing else (a racing
        # guest swapped the file or rewrote its headers, or the exec never
        # went through the Sentry), it never will.
        if pending is None:
            why = "an exec the Sentry did not check"
        else:
            try:
                why = image.verify(tid, pending[1], pending[2])
            except OSError as e:          # fail closed
                why = f"the new image cannot be checked ({e})"
            except Exception as e:
                log.exception("exec in %d: the check of the new image failed", tid)
                why = f"the check failed ({e!r})"
        if why is not None:
            log.error("exec in %d: %s; killed", tid, why)
            self.audit.event("exec-killed", task, syscall="execve", path=pending[0] if pending else None, why=why)
            ptrace.kill_task(tid)
        else:
            proc.exe, proc.comm, proc.kernel_comm = pending[0], pending[3], pending[4]
            task.creds.exec()
            self.publish(task)
            self.audit.event("exec", task)
        self.resume(task)

    def on_gone(self, tid, status):
        task = self.tasks.pop(tid, None)
        if task is not None:
            task.leave()
            proc = task.process
            if proc is not None and proc.tgid == tid:
                self.audit.event("exit", task, status=status)
                self.processes.pop(tid, None)
                proc.last_creds = task.creds
                self.recently_gone[tid] = proc
                if len(self.recently_gone) > RECENTLY_GONE:
                    del self.recently_gone[next(iter(self.recently_gone))]
                # until its parent reaps it, the pid still names it (kill(2)
                # of a zombie succeeds); its start time tells it from a reuse
                start = _start_time(tid)
                if start is not None:
                    self.zombies[tid] = (start, proc)   # its row stays: wait4 names it
                else:
                    self.reaped(tid)
                self._reparent_children_of(proc)
            else:
                self.pids.forget(tid)
                lib.sn_set_ident(tid, ffi.NULL)
        else:
            lib.sn_set_ident(tid, ffi.NULL)
        if len(self.zombies) > self.sweep_at:
            # reaps the Sentry did not see (wait4 in C, auto-reaping parents)
            for pid in list(self.zombies):
                self.in_sandbox_host(pid)
            self.sweep_at = max(ZOMBIE_SWEEP, 2 * len(self.zombies))
        if self.init is not None and tid == self.init.tgid and self.init_status is None:
            self.init_status = status
            self.kill_all()

    def reaped(self, host):
        """A wait call reaped `host`: its pid may be reused from now on."""
        self.zombies.pop(host, None)
        if host in self.tasks:              # the number is already someone else's
            return
        self.pids.retire(host, self._groups_in_use)
        # Its row in C stays a while: a wait4 that reaped it may not have
        # reached its syscall-exit stop (where the row names it) yet.
        self.stale_rows.append(host)
        if len(self.stale_rows) > STALE_ROWS:
            old = self.stale_rows.popleft()
            if old not in self.tasks:
                lib.sn_set_ident(old, ffi.NULL)

    def _groups_in_use(self):
        ids = set()
        for tgid in list(self.processes):
            try:
                ids.update((os.getpgid(tgid), os.getsid(tgid)))
            except OSError:
                pass
        return ids

    def _reparent_children_of(self, dead):
        """The host re-parented dead's children (to init, the sandbox's
        subreaper, or one the guest set): ask it whom to."""
        if dead.parent is not None:
            dead.parent.children.discard(dead)
        for proc in list(dead.children):
            proc.parent = self.processes.get(_stat_field(proc.tgid, 1))
            if proc.parent is not None:
                proc.parent.children.add(proc)
            self.publish_process(proc)
        dead.children.clear()

    def kill_all(self):
        """When the sandbox's first process exits, the rest of the sandbox dies."""
        for tid in list(self.tasks):
            ptrace.kill_task(tid)

    # ---- identity: what the guest is told ----------------------------------

    def publish(self, task):
        """Hand a task's ids to the C fast path (native/identity.c)."""
        if not self.fast_ids or task.process is None or task.creds is None:
            return
        c = task.creds
        row = ffi.new("sn_ident *", {
            "vtid": task.vtid, "vpid": task.process.vpid, "vppid": self.ppid_of(task.process),
            "vpgrp": self.pgid_of(task.process.tgid),
            "ruid": c.ruid, "euid": c.euid, "suid": c.suid,
            "rgid": c.rgid, "egid": c.egid, "sgid": c.sgid, "checks_files": int(c.checks_files)})
        lib.sn_set_ident(task.tid, row)

    def publish_process(self, proc):
        for tid in proc.threads:
            t = self.tasks.get(tid)
            if t is not None:
                self.publish(t)

    def ppid_of(self, proc):
        parent = proc.parent
        return parent.vpid if parent is not None and parent.tgid in self.processes else 0

    def pgid_of(self, host_pid):
        """Virtual process group of a host pid (0: a group outside the sandbox)."""
        try:
            return self.pids.virtual(os.getpgid(host_pid))
        except OSError:
            return 0

    def sid_of(self, host_pid):
        try:
            return self.pids.virtual(os.getsid(host_pid))
        except OSError:
            return 0

    def resident_bytes(self):
        """Memory the sandbox's processes hold resident (for --memory's view)."""
        total = 0
        for tgid in list(self.processes):
            try:
                with open(f"/proc/{tgid}/statm") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
        return total * os.sysconf("SC_PAGE_SIZE")

    # ---- pids: the guest names sandbox processes by virtual pid -------------

    def visible_pids(self):
        return [p.vpid for p in self.processes.values()]

    def host_pid(self, vpid):
        return self.pids.host(vpid)

    def process_of(self, vpid):
        return self.processes.get(self.pids.host(vpid))

    def task_of(self, vtid):
        return self.tasks.get(self.pids.host(vtid))

    def vpid(self, host):
        return self.pids.virtual(host)

    def host_id(self, vid, group=False, task=False):
        """The host id for a guest's pid (with task: any tid; with group: a
        process group with a sandbox process in it).  ESRCH for anything
        else, as for a pid that does not exist."""
        host = self.pids.host(vid) if vid > 0 else None
        if host is None:
            raise SyscallError(errno.ESRCH)
        if group:
            for tgid in self.processes:
                try:
                    if os.getpgid(tgid) == host:
                        return host
                except ProcessLookupError:
                    pass
            raise SyscallError(errno.ESRCH)
        if task and host in self.tasks:
            return host
        if not self.in_sandbox_host(host):
            raise SyscallError(errno.ESRCH)
        return host

    def in_sandbox_host(self, host):
        """Whether a host pid is a sandbox process, live or zombie."""
        if host in self.processes:
            return True
        z = self.zombies.get(host)
        if z is not None:
            if _start_time(host) == z[0]:
                return True
            self.reaped(host)            # reaped: the pid is free or reused
        return False

    def is_sandbox_task(self, vtid):
        return self.task_of(vtid) is not None

    # ---- signals --------------------------------------------------------

    def on_signal(self, task, sig):
        """Signal-delivery-stop: the siginfo the guest will see names
        senders by virtual pid and emulated uid.  The SIGCHLD of a child
        the guest never had (Kernel.refuse) is dropped."""
        raw = ptrace.getsiginfo(task.tid)
        if raw is not None and sig == signal.SIGCHLD and self.phantoms:
            if self.phantoms.pop(siginfo.sender_pid(raw), 0) is None:
                self.resume(task)
                return
        if task.injecting:
            # The call the Sentry set up to run next (inject_after) must run
            # first, or a handler's calls would take its stops: the signal
            # is held back, and sent again with its siginfo once it has.
            task.deferred.append((sig, raw))
            self.resume(task)
            return
        if task.redelivered and raw is not None:
            raw = task.redelivered.pop(sig, None) or raw
            ptrace.setsiginfo(task.tid, raw)
        if raw is not None:
            new = siginfo.translate(self, task, raw)
            if new != raw:
                ptrace.setsiginfo(task.tid, new)
        # a call the Sentry injected may be on its way (Kernel.inject_after):
        # its stops must still come
        self.resume(task, sig)

    def _known_process(self, host_pid):
        """A sandbox process by host pid: live, zombie, or just gone."""
        proc = self.processes.get(host_pid)
        if proc is None:
            z = self.zombies.get(host_pid)
            proc = z[1] if z else self.recently_gone.get(host_pid)
        return proc

    def creds_of(self, host_pid):
        """Credentials of a process (its leader's) by host pid; None outside."""
        proc = self._known_process(host_pid)
        if proc is None:
            return None
        t = self.tasks.get(proc.tgid)
        return t.creds if t is not None else proc.last_creds

    def sender_of(self, host_pid):
        """(vpid, ruid) of a process by host pid, live or zombie; None outside."""
        proc = self._known_process(host_pid)
        if proc is None:
            return None
        creds = self.creds_of(host_pid)
        return proc.vpid, (creds.ruid if creds else 0)

    def borrow_fd(self, process, fd, hidden_ok=False):
        """A Sentry-side duplicate of a guest fd (pidfd_getfd); caller closes it.
        The Sentry's own hidden fds are EBADF here unless the caller says it
        put one there itself (syscalls/locks.py's slots): a guest call naming
        one (statx(1000, "", AT_EMPTY_PATH)) must not reach it."""
        from sentry.vfs.mount import is_hidden_fd
        if is_hidden_fd(fd) and not hidden_ok:
            raise SyscallError(errno.EBADF)
        pidfd = os.pidfd_open(process.tgid)
        try:
            r = lib.sn_pidfd_getfd(pidfd, fd)
        finally:
            os.close(pidfd)
        if r < 0:
            raise SyscallError(-r)
        return r


def _stat_field(pid, i):
    """Field i+3 of /proc/<pid>/stat (i=1: ppid, 19: start time); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rsplit(b")", 1)[1].split()[i])


def _start_time(pid):
    """With the pid, the start time names one process."""
    return _stat_field(pid, 19)
