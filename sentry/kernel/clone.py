"""fork, vfork and clone: the new task's ids, process and address space, and
the limits a new task must pass (--pids-limit as a pids cgroup's,
RLIMIT_NPROC as copy_process checks it).  A fork over a limit already
happened on the host: it is undone so that the guest sees EAGAIN and no child.
"""
import errno
import logging
import os
import struct

from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.kernel import hiddenslots
from sentry.kernel.credentials import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from sentry.kernel.namespaces import CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWUSER, CLONE_NEWUTS
from sentry.kernel.pidns import PidNamespace
from sentry.kernel.task import Process
from sentry.kernel.timens import TimeNamespace, enter
from sentry.platform import memory, ptrace, staging
from sentry.platform.staging import Slots

log = logging.getLogger("sentry")

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_PARENT, CLONE_THREAD = 0x100, 0x200, 0x400, 0x8000, 0x10000
CLONE_PARENT_SETTID, CLONE_CHILD_SETTID = 0x00100000, 0x01000000
SYS_CLONE, SYS_WAIT4, SYS_EXIT, SYS_DUP3, SYS_CLONE3 = 56, 61, 60, 292, 435
WALL = 0x40000000                  # __WALL
PTRACE_EVENT_STOP, PTRACE_EVENT_EXIT = 128, 6
SYSCALL_STOP = 0x80 | 5            # SIGTRAP | 0x80: PTRACE_O_TRACESYSGOOD
RLIM_INFINITY = 2 ** 64 - 1
PHANTOMS_MAX = 256

# clone3(2)'s struct clone_args, as far as this kernel knows it (version 2)
CLONE_ARGS = ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
              "tls", "set_tid", "set_tid_size", "cgroup")
CLONE_ARGS_VER0, CLONE_ARGS_SIZE = lib.SN_CLONE_ARGS_VER0, lib.SN_CLONE_ARGS_SIZE


def clone3_staging_blob(raw, rdi, rsi):
    """What a clone3 is pointed at (native/clone3.c stages the same): the
    struct as the kernel will read it, then the guest's own rdi and rsi,
    which its child gets back at its first stop."""
    return raw.ljust(CLONE_ARGS_SIZE, b"\0") + struct.pack("<QQ", rdi, rsi)


def staged_clone3(tid, addr):
    """The struct clone_args (a dict) a clone3 stopped at its clone event
    was given, and the guest's own (rdi, rsi) -- read back from the staging
    copy the call was pointed at, which no guest thread can write.  None if
    `addr` is not there (every clone3 is rewritten to it, so never)."""
    if not staging.BASE <= addr < staging.BASE + staging.SIZE:
        return None, None
    raw = memory.read(tid, addr, lib.SN_CLONE3_STAGED)
    values = struct.unpack(f"<{len(CLONE_ARGS) + 2}Q", raw)
    return dict(zip(CLONE_ARGS, values)), values[len(CLONE_ARGS):]


class NewTasks:
    """The Kernel's fork, vfork and clone events."""

    def on_new_task(self, parent, child_tid, kind, regs):
        pproc = parent.process
        child = self.task(child_tid)
        if lib.sn_unpark(child_tid):
            child.started = True       # its first stop came first, held in C (native/identity.c)
        # clone(2)'s flags decide, not the event's kind: ptrace reports a
        # clone whose exit signal is SIGCHLD as a fork, a thread or a
        # CLONE_VM child included
        flags, parent_tid, child_tid_at = 0, regs.rdx, regs.r10
        if regs.orig_rax == SYS_CLONE:
            flags = regs.rdi
        elif regs.orig_rax == SYS_CLONE3:
            args, child.clone3_regs = staged_clone3(parent.tid, regs.rdi)
            if args is None:
                log.error("clone3 of task %d ran on arguments outside the staging area", parent.tid)
            else:
                flags, parent_tid, child_tid_at = args["flags"], args["parent_tid"], args["child_tid"]
        # its PID namespace: its process's for a thread; else the one its
        # parent makes children in, or a new one below that (a clone with
        # CLONE_NEWPID, which syscalls/process.py took off the host's call)
        new_namespaces, parent.clone_namespaces = parent.clone_namespaces, 0
        child_userns, parent.clone_userns = parent.clone_userns, None
        child_netns, parent.clone_netns = parent.clone_netns, None
        if flags & CLONE_THREAD:
            pidns = pproc.pidns
        else:
            pidns = pproc.pidns_children
            if new_namespaces & CLONE_NEWPID:
                pidns = PidNamespace(pidns)
        child.vtid = self.pids.add(child_tid)
        for ns in pidns.chain():
            if ns is not self.pids:
                ns.add(child_tid)
        if pidns is not self.pids:
            self.nested_pidns[child_tid] = pidns
        new_init = pidns.init is None
        if new_init:
            pidns.init = child_tid
        log.debug("task %d is host %d", child.vtid, child_tid)
        child.creds = parent.creds.copy()
        if new_namespaces & CLONE_NEWUSER:
            child.creds.enter_userns(child_userns)
        # the parent's fd table was its threads' alone until this clone
        table_was_alone = len(pproc.threads) <= 1 and not pproc.files.shared
        if flags & CLONE_THREAD:
            child.attach(pproc)
        else:
            shares_vm = kind == ptrace.VFORK or flags & CLONE_VM
            if shares_vm:
                slots = pproc.slots
            else:
                slots = Slots()
                slots.mapped = pproc.slots.mapped   # fork copies the mapping
            ancestor = pproc.parent if flags & CLONE_PARENT else pproc
            proc = Process(child_tid, child.vtid, slots, pproc.exe, ancestor, pidns)
            proc.comm, proc.kernel_comm = pproc.comm, pproc.kernel_comm
            proc.core_limit, proc.nproc_limit = pproc.core_limit, pproc.nproc_limit
            proc.uts, proc.busy, proc.root, proc.mounts = pproc.uts, pproc.busy, pproc.root, pproc.mounts
            proc.netns = child_netns if new_namespaces & CLONE_NEWNET and child_netns else pproc.netns
            if new_namespaces & CLONE_NEWNS:
                proc.mounts = self.mounts_of(pproc).copy()
                proc.mounts.owner = child.creds.userns
            if new_namespaces & CLONE_NEWUTS:
                proc.uts = proc.uts.unshared(child.creds.userns)
            # a child enters its parent's time namespace for children, or a new
            # one; a child sharing its memory (vfork, CLONE_VM) keeps the parent's
            # vDSO and so its namespace, until it execs (timens_on_fork)
            timens = pproc.timens_children
            if new_namespaces & CLONE_NEWTIME:
                timens = TimeNamespace(child.creds.userns, timens)
            if shares_vm:
                proc.timens, proc.timens_children = pproc.timens, timens
            else:
                proc.timens = proc.timens_children = enter(timens)
            proc.handover = pproc.handover      # the filter is inherited
            proc.host_socket_traps = pproc.host_socket_traps    # so is this one
            proc.process_traps = pproc.process_traps            # and these
            proc.fd_traps = dict(pproc.fd_traps)                # and the per-fd ones
            if flags & CLONE_FILES:
                # one fd table for both: a number either names may change
                # under the other's feet (syscalls/locks.py, syscalls/pin.py)
                proc.files = pproc.files
                proc.files.shared = True
            if flags & CLONE_FS:
                proc.fs_shared = pproc.fs_shared = True
            proc.subreaper_due = new_init
            self.processes[child_tid] = proc
            child.attach(proc)
            self.audit.event("start", child, ppid=pproc.vpid)
        if flags & (CLONE_THREAD | CLONE_FILES) and table_was_alone:
            # its fd table is shared from now on: C learns it before either
            # task runs (native/fastnet.c names fds only in a table of one).
            # A table shared before stays so, its rows say it already: each
            # thread made then was published so, and the rest here, once
            for tid in pproc.threads:
                if tid != child_tid and tid in self.tasks:
                    self.publish(self.tasks[tid])
        if self.phantoms.pop(child_tid, 0) is None:      # the number is a real child's now
            self.refused_children_changed()
        if pidns.dead:
            # its namespace's init is gone: alloc_pid's ENOMEM
            self.refuse(parent, child, flags & CLONE_THREAD, errno.ENOMEM)
            return
        limit = self.pids_max.current()
        if (limit and len(self.tasks) > limit) or self._fork_over_nproc(parent):
            # Over a limit (a pids cgroup's, RLIMIT_NPROC): the parent's
            # fork/clone returns EAGAIN, and the child never runs.
            self.refuse(parent, child, flags & CLONE_THREAD)
            return
        # The kernel wrote host tids where the caller asked for the child's:
        # the parent's copy now, the child's when it has stopped (it writes
        # its own on its way out of clone).
        self.publish(child)
        # the parent's name for the child: its own namespace's number
        seen = self.pidns_of(parent).virtual(child_tid)
        # Translated in C when it can: the sandbox's namespace only, and not
        # for a call Python rewrote (a clone with CLONE_NEWPID), whose exit
        # stop is Python's -- C would answer it and leave the rewrite's
        # registers unrestored, to be put back on a later call.
        if self.pidns_of(parent) is not self.pids or parent.on_exit is not None \
                or not lib.sn_exit_pid(parent.tid, child_tid, seen):
            self._exit_to_python(parent)
            parent.on_exit = lambda task, result: seen if result == child_tid else result
        if flags & CLONE_PARENT_SETTID:
            self._write_tid(parent.tid, parent_tid, seen)
        if flags & CLONE_CHILD_SETTID:
            child.set_child_tid = child_tid_at
        if child.slots.mapped:
            child.slots.slot_of(child_tid)     # the native fast path can stage from now on
        if not flags & (CLONE_THREAD | CLONE_FILES):
            # slots of the parent's socket calls in flight (syscalls/slots.py)
            child.stale_slots = [h for h, key in getattr(pproc, "lock_inflight", {}).values()
                                 if key[0] == "socket"]
        if not child.stale_slots and lib.sn_start_child(
                child_tid, child.set_child_tid, self.pidns_of(child).virtual(child_tid) if child.set_child_tid else 0,
                child.clone3_regs is not None, *(child.clone3_regs or (0, 0))):
            # its first stop is C's (native/identity.c sn_ident_first_stop):
            # the same tid written, a clone3 child's rdi and rsi given back
            # (_give_back_clone3_regs), and it runs -- now, if it is stopped there
            child.set_child_tid, child.clone3_regs = 0, None
            if child.started:
                lib.sn_ident_first_stop(child_tid)
        elif child.started:
            self.start_child(child)

    def start_child(self, child):
        """A new task's first run, from its first stop: its tid where it
        asked for it, and -- a process with an fd table of its own, forked
        while another thread of its parent ran a socket call through a
        hidden slot -- the filler back in its copy of that slot (an injected
        dup3 first), so that the child never holds the parent's socket open."""
        self.child_settid(child)
        if child.clone3_regs is not None:
            self._give_back_clone3_regs(child)
        stale, child.stale_slots = child.stale_slots, []
        holes = [h for h in stale if hiddenslots.holds_socket(child.tid, h)]
        if not holes:
            ptrace.resume(child.tid)
            return
        try:
            saved = ptrace.getregs(child.tid)
        except ptrace.TaskGone:
            return

        def refill_next(regs):
            """Set up the next dup3 (True), or False when none is left."""
            while holes:
                h = holes.pop()
                filler = hiddenslots.a_filler(child.tid, self, h)
                if filler is None:
                    continue                  # none left to refill from: kept
                regs.rip = saved.rip - 2       # the fork's syscall instruction
                regs.rax = regs.orig_rax = SYS_DUP3
                regs.rdi, regs.rsi, regs.rdx = filler, h, 0
                ptrace.setregs(child.tid, regs)
                child.on_exit, child.injecting, child.strace_entry = at_entry, True, None
                self.signals_to_python(child)
                return True
            return False

        def at_entry(t, r):
            t.on_exit = at_exit

        def at_exit(t, r):
            if refill_next(t.exit_regs):
                return
            self.end_injection(t, saved)        # fork's 0, from where it returns
        try:
            if refill_next(ptrace.ffi_copy(saved)):
                ptrace.resume_to_exit(child.tid)
                return
        except ptrace.TaskGone:
            return                              # killed meanwhile: nothing holds the slot
        ptrace.resume(child.tid)

    @staticmethod
    def _exit_to_python(task):
        """Python is to answer this task's syscall exit (a callback set at
        its clone event): registers a rewrite left for C to put back
        (clone3's rdi and rsi, a Python rewrite's) are handed over, to be
        put back as a Python rewrite's are."""
        saved = ffi.new("uint64_t[6]")
        mask = lib.sn_exit_to_python(task.tid, saved)
        if mask:
            task.guest_args = {i: saved[i] for i in range(6) if mask & (1 << i)}

    @staticmethod
    def _give_back_clone3_regs(child):
        """A clone3 child starts with its parent's registers as the kernel
        had them: rdi pointing at the staging copy.  It gets the guest's own
        back, as the parent does at its syscall exit."""
        (rdi, rsi), child.clone3_regs = child.clone3_regs, None
        try:
            regs = ptrace.getregs(child.tid)
            regs.rdi, regs.rsi = rdi, rsi
            ptrace.setregs(child.tid, regs)
        except ptrace.TaskGone:
            pass

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

    def refuse(self, parent, child, thread, errno_=errno.EAGAIN):
        """Undo a fork or clone the kernel already carried out, so that the
        guest sees what Linux shows when copy_process fails: the call
        returns EAGAIN, no child ran, none is left to wait for, no SIGCHLD.
        A thread exits by itself from its first stop (a SIGKILL would take
        its whole thread group); a process is killed, and its parent reaps
        it before its call returns.  Both are waited for here: a new task
        reaches its first stop at once, and a killed one dies at once."""
        tid = child.tid
        self._exit_to_python(parent)
        if thread:
            child.refused = True
            if child.started:
                self._exit_refused(child)
        else:
            ptrace.kill_task(tid)
        self._collect(tid)
        if thread:
            parent.on_exit = lambda task, result: -errno_
            return
        self.phantoms[tid] = None
        while len(self.phantoms) > PHANTOMS_MAX:
            del self.phantoms[next(iter(self.phantoms))]
        self.refused_children_changed()

        def reap(task, result):
            parent.reaping = tid

            def reaped(r):
                parent.reaping = None
                if r == tid:
                    self.reaped(tid)
            self.inject_after(task, SYS_WAIT4, (tid, 0, WALL, 0), -errno_, then=reaped)
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
        """Wait for a refused task's end.  On the way it may stop for a
        signal or at its exit, and is let go; a refused thread stops first
        where it is told to exit.  Anything else -- a trapped syscall, a
        fork, an exec -- means it runs code of its own: its exit(0) came
        back (a filter of the guest's own denied it) and it went on.  Its
        stops are not served here, so it may not go on: the whole process
        is killed (a SIGKILL takes the thread group; no thread alone can be)."""
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
            event = status >> 16
            if task is not None and task.refused and event == PTRACE_EVENT_STOP:
                task.started = True
                try:
                    self._exit_refused(task)
                except ptrace.TaskGone:
                    pass
                continue
            if not (event in (PTRACE_EVENT_STOP, PTRACE_EVENT_EXIT) or
                    (event == 0 and os.WSTOPSIG(status) != SYSCALL_STOP)):
                log.warning("task %d, refused, runs on (event %d, signal %d): its process is killed",
                            tid, event, os.WSTOPSIG(status))
                ptrace.kill_task(tid)
            ptrace.resume(tid)

    def child_settid(self, task):
        if task.set_child_tid:
            # its own name, in its own namespace
            self._write_tid(task.tid, task.set_child_tid, self.pidns_of(task).virtual(task.tid))
            task.set_child_tid = 0

    @staticmethod
    def _write_tid(tid, addr, vtid):
        try:
            memory.write(tid, addr, vtid.to_bytes(4, "little"))
        except SyscallError:
            pass        # a bad address: the kernel skipped it too
