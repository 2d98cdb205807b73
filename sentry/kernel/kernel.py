"""The Kernel: one tracer loop serving every guest task.

Stops come from native/tracer.c (sn_wait), already sorted by kind; the ones
it could answer alone never reach here.  A seccomp stop is dispatched to the
syscall table, whose handler emulates, rewrites or denies the call.  The Sentry
never blocks on a guest's behalf: blocking calls run in the guest's context.
"""
import errno
import logging
import os
import signal

from sentry.kernel.task import Process, Task
from sentry.platform import ptrace, staging
from sentry.platform.staging import Slots
from syscalls import table
from syscalls.call import Call, NeedStaging
from syscalls.errors import SyscallError
from syscalls.registry import PASS, Rewrite

log = logging.getLogger("sentry")

CLONE_VM, CLONE_THREAD = 0x100, 0x10000
SYS_MMAP = 9


class Kernel:
    def __init__(self, mounts, strace=None, pids_limit=0):
        self.mounts = mounts
        self.strace = strace           # sentry.strace.Tracer or None
        self.tasks = {}                # tid -> Task
        self.processes = {}            # tgid -> Process
        self.zombies = {}              # tgid -> start time: exited, not yet reaped
        self.pids_limit = pids_limit   # tasks at most (0: no limit), as a pids cgroup
        self.init = None               # the sandbox's first process
        self.init_status = None        # wait status of init, once it exited
        self.event = ptrace.new_event()
        self.warned = set()
        self.uts = {}                  # hostname, domainname, release, version
        self.abstract_prefix = b"sentry-%x/" % os.getpid()   # namespaces abstract sockets
        self.mountns = None            # the private mount namespace's helper (platform/mountns.py), if any

    # ---- start ---------------------------------------------------------

    def adopt_init(self, pid):
        proc = Process(pid, Slots())
        self.processes[pid] = proc
        task = Task(pid, None)
        task.attach(proc)
        task.started = True
        self.tasks[pid] = task
        self.init = proc

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
                pass
            except Exception:
                # A bug must not take the sandbox down, nor leave the task
                # stopped for ever: log it and let the task go on.
                log.exception("event %d of task %d", ev.kind, ev.tid)
                ptrace.resume(ev.tid)
        return self.init_status

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
                ptrace.resume(tid)
            # else: resumed once its parent's clone event has told us who it is
        elif kind == ptrace.GROUP_STOP:
            ptrace.listen(tid)   # job control: stay stopped until SIGCONT
        elif kind == ptrace.SIGNAL:
            ptrace.resume(tid, ev.sig)
        elif kind == ptrace.GONE:
            pass
        else:   # EXIT, VFORK_DONE, other events: nothing to do
            self.resume(self.task(tid))

    def resume(self, task, sig=0):
        """Continue a task from an event stop, keeping a pending syscall-exit
        stop (a rewrite's callback, --strace) that the event interrupted."""
        if task.on_exit is not None:
            ptrace.resume_to_exit(task.tid)
        else:
            ptrace.resume(task.tid, sig)

    def task(self, tid):
        t = self.tasks.get(tid)
        if t is None:
            t = self.tasks[tid] = Task(tid)
        return t

    # ---- syscalls ------------------------------------------------------

    def on_syscall(self, task, regs):
        entry = table.entry(regs.orig_rax)
        call = Call(self, task, regs)
        try:
            if entry.outcome == "deny":
                raise SyscallError(entry.deny_errno)
            if entry.handler is None and entry.outcome == "allow":
                # a call our filter lets through, trapped by a guest's own
                # RET_TRACE filter: it runs as it would have
                outcome = PASS
            elif entry.handler is None:
                # checked in C, which let this one through to here: refuse
                raise SyscallError(errno.EPERM, "not checked")
            else:
                outcome = entry.handler.fn(call)
        except NeedStaging:
            self.map_staging(task, regs)
            return
        except SyscallError as e:
            if entry.outcome == "deny" and entry.name not in self.warned:
                self.warned.add(entry.name)
                log.warning("%s: %s (%s)", entry.name, os.strerror(e.errno),
                            entry.note or "not offered by sentry")
            outcome = -e.errno
        except (ptrace.TaskGone, ProcessLookupError):
            return
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
                task.on_exit = lambda t, r: None
                ptrace.resume_to_exit(task.tid)
            else:
                ptrace.resume(task.tid)
            return
        if isinstance(outcome, Rewrite):
            if outcome.nr is not None:
                regs.orig_rax = outcome.nr
            for i, v in outcome.args.items():
                setattr(regs, ("rdi", "rsi", "rdx", "r10", "r8", "r9")[i], v & 0xFFFFFFFFFFFFFFFF)
            ptrace.setregs(task.tid, regs)
            if tracer:
                tracer.enter(task, call, entry, "rewritten")
            if outcome.on_exit or tracer:
                task.on_exit = outcome.on_exit or (lambda t, r: None)
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
        result = regs.rax - (1 << 64) if regs.rax >= 1 << 63 else regs.rax
        if cb is not None:
            new = cb(task, result)
            if new is not None and new != result:
                regs.rax = new & 0xFFFFFFFFFFFFFFFF
                ptrace.setregs(task.tid, regs)
                result = new
        if self.strace and task.strace_entry is not None:
            self.strace.exit(task, result)
        ptrace.resume(task.tid)

    def inject(self, task, regs, nr, args, then):
        """Run one syscall of the Sentry's choosing in the guest, then re-run
        the guest's own call from its syscall instruction (it traps again)."""
        saved = ptrace.ffi_copy(regs)
        regs.orig_rax = nr
        for name, v in zip(("rdi", "rsi", "rdx", "r10", "r8", "r9"), args):
            setattr(regs, name, v)
        ptrace.setregs(task.tid, regs)

        def restore(t, result):
            then(result)
            saved.rip -= 2                 # back onto the syscall instruction
            saved.rax = saved.orig_rax
            ptrace.setregs(t.tid, saved)
            return None

        task.on_exit = restore
        task.strace_entry = None
        ptrace.resume_to_exit(task.tid)

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
        flags = regs.rdi if regs.orig_rax == 56 else 0   # clone(2) flags
        if kind == ptrace.CLONE and flags & CLONE_THREAD:
            child.attach(pproc)
        else:
            shares_vm = kind == ptrace.VFORK or (kind == ptrace.CLONE and flags & CLONE_VM)
            if shares_vm:
                slots = pproc.slots
            else:
                slots = Slots()
                slots.mapped = pproc.slots.mapped   # fork copies the mapping
            proc = Process(child_tid, slots, pproc.exe, pproc)
            proc.comm, proc.kernel_comm = pproc.comm, pproc.kernel_comm
            self.processes[child_tid] = proc
            child.attach(proc)
        if self.pids_limit and len(self.tasks) > self.pids_limit:
            # Over the limit: the child dies before its first instruction and
            # the parent's fork/clone returns EAGAIN, as under a pids cgroup.
            ptrace.kill_task(child_tid)
            parent.on_exit = lambda task, result: -errno.EAGAIN
            if child.started:
                ptrace.resume(child_tid)
            return
        if child.slots.mapped:
            child.slots.slot_of(child_tid)     # the native fast path can stage at once
        if child.started:
            ptrace.resume(child_tid)

    def on_exec(self, tid, former_tid):
        if former_tid != tid:
            # a non-leader thread exec'd: it now has the leader's tid
            old = self.tasks.pop(former_tid, None)
            leader = self.tasks.get(tid)
            if leader is not None:
                leader.leave()
            task = old or self.task(tid)
            task.tid = tid
            self.tasks[tid] = task
        task = self.tasks[tid]
        proc = task.process
        # the new image has a fresh address space: no staging area yet
        task.leave()
        proc.slots = Slots()
        task.attach(proc)
        pending, proc.pending_exec = proc.pending_exec, None
        try:
            st = os.stat(f"/proc/{tid}/exe")
        except OSError:
            st = None
        if pending is None or st is None or (st.st_dev, st.st_ino) != pending[1:3]:
            # The image is not the file the Sentry checked (a racing guest
            # swapped it, or the exec never went through the Sentry): it has
            # not run a single instruction yet; it never will.
            log.error("exec in %d: the new image is not the checked file; killed", tid)
            ptrace.kill_task(tid)
        else:
            proc.exe, proc.comm, proc.kernel_comm = pending[0], pending[3], pending[4]
        self.resume(task)

    def on_gone(self, tid, status):
        task = self.tasks.pop(tid, None)
        if task is not None:
            task.leave()
            proc = task.process
            if proc is not None and proc.tgid == tid:
                self.processes.pop(tid, None)
                # until its parent reaps it, the pid still names it (kill(2)
                # of a zombie succeeds); its start time tells it from a reuse
                start = _start_time(tid)
                if start is not None:
                    self.zombies[tid] = start
        if self.init is not None and tid == self.init.tgid and self.init_status is None:
            self.init_status = status
            self.kill_all()

    def kill_all(self):
        """When the sandbox's first process exits, the rest of the sandbox dies."""
        for tid in list(self.tasks):
            ptrace.kill_task(tid)

    # ---- questions handlers ask ------------------------------------------

    # The one place pids are chosen for the guest: host pids today, the PID
    # namespace's virtual pids later (/proc and the kill family ask here).
    def visible_pids(self):
        return list(self.processes)

    def host_pid(self, pid):
        return pid

    def process_of(self, pid):
        return self.processes.get(pid)

    def is_sandbox_task(self, tid):
        return tid in self.tasks

    def in_sandbox(self, pid, group=False, task=False):
        """Whether pid names a sandbox process (or, with group, a process
        group that has a sandbox process in it; with task, any sandbox tid)."""
        if pid <= 0:
            return False
        if group:
            for tgid in self.processes:
                try:
                    if os.getpgid(tgid) == pid:
                        return True
                except ProcessLookupError:
                    pass
            return False
        if pid in self.processes or (task and pid in self.tasks):
            return True
        start = self.zombies.get(pid)
        if start is not None:
            if _start_time(pid) == start:
                return True
            del self.zombies[pid]          # reaped: the pid is free or reused
        return False

    def borrow_fd(self, process, fd):
        """A Sentry-side duplicate of a guest fd (pidfd_getfd); caller closes it."""
        from sentry._native import lib
        pidfd = os.pidfd_open(process.tgid)
        try:
            r = lib.sn_pidfd_getfd(pidfd, fd)
        finally:
            os.close(pidfd)
        if r < 0:
            raise SyscallError(-r)
        return r


def _start_time(pid):
    """Field 22 of /proc/<pid>/stat: with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rsplit(b")", 1)[1].split()[19])
