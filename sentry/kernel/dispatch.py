"""Syscall dispatch: a seccomp stop goes to the table's entry for its number,
whose handler emulates, rewrites, passes or denies the call (the outcomes
are sentry/kernel/syscall.py's); the outcome is applied to the stopped
task's registers, and a rewrite's callback runs at the syscall-exit stop.
The Sentry never blocks on a guest's behalf: when it needs a call of its
own in the guest (the staging area's mmap, a cleanup), it injects one.
"""
import errno
import logging
import os

from sentry._native import ffi, lib
from sentry.errors import RESTART_ERRNOS, SyscallError
from sentry.kernel.syscall import After, Call, Handover, Inject, NeedStaging, PASS, Rewrite
from sentry.platform import handover, ptrace, seccomp, staging

log = logging.getLogger("sentry")

SYS_MMAP, SYS_PRCTL = 9, 157
PR_SET_CHILD_SUBREAPER = 36
ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
GUEST_NR = -1             # in task.guest_args: the syscall number a rewrite replaced


class SyscallDispatch:
    """The Kernel's seccomp and syscall-exit stops."""

    def on_syscall(self, task, regs):
        # pids are the caller's namespace's while its call is handled (pids.py)
        with self.viewed_from(self.pidns_of(task)):
            self._on_syscall(task, regs)

    def _on_syscall(self, task, regs):
        if task.process is not None and task.process.subreaper_due:
            # a PID namespace's init adopts its namespace's orphans: the
            # host's subreaper bit, set from its first call the Sentry sees
            task.process.subreaper_due = False
            self.inject(task, regs, SYS_PRCTL, (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), lambda result: None)
            return
        entry = self.table.entry(regs.orig_rax)
        call = Call(self, task, regs, entry.decode)
        if self.strace:
            self.strace.begin(task)
        try:
            if task.injecting:
                # the Sentry's own call (inject_after), trapped again by the
                # filter on its way in: it runs as the Sentry set it, never
                # through the handler a guest's call of that number meets
                outcome = PASS
            elif entry.outcome == "deny":
                raise SyscallError(entry.deny_errno)
            elif entry.handler is None and entry.outcome == "allow":
                # a call our filter lets through, trapped by a guest's own
                # RET_TRACE filter (or for --strace): it runs as it would have
                outcome = PASS
            elif self.strace and entry.handler is None and entry.nr in self.mm_checked:
                # with --strace, C hands over a memory call it found clear of
                # the staging area (tracer.c), so that it is shown: it runs
                outcome = PASS
            elif self.strace and entry.outcome == "allow-if" and \
                    seccomp.allowed_by(entry.allow_if, call.raw) and not self._traps_own(task, entry.nr):
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
        except Handover as h:
            self.hand_over(task, regs, h)
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

    @staticmethod
    def _traps_own(task, nr):
        """Whether a filter of the process's own (kernel/fdtraps.py
        ensure_process_filter) may trap this call: its handler decides then."""
        return task.process is not None and any(nr in nrs for nrs in task.process.process_traps.values())

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
            guest_nr = regs.orig_rax
            if outcome.nr is not None:
                regs.orig_rax = outcome.nr
            on_exit = outcome.on_exit
            guest = None
            if (on_exit or outcome.restore) and outcome.args:
                # back at the exit (and for a restarted call, which runs
                # again from these registers): the guest's own arguments,
                # and its own call (a restart of the rewritten one would
                # take the guest's arguments as its own)
                guest = {i: getattr(regs, ARG_REGS[i]) for i in outcome.args}
                if regs.orig_rax != guest_nr:
                    guest[GUEST_NR] = guest_nr
            for i, v in outcome.args.items():
                setattr(regs, ARG_REGS[i], v & 0xFFFFFFFFFFFFFFFF)
            ptrace.setregs(task.tid, regs)
            if guest is not None:
                if on_exit is None and not tracer and GUEST_NR not in guest \
                        and self._restore_in_c(task, guest):
                    ptrace.resume_to_exit(task.tid)
                    return
                task.guest_args = guest
                on_exit = on_exit or (lambda t, r: None)
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

    @staticmethod
    def _restore_in_c(task, guest):
        """A rewrite that needs nothing at its exit stop but the guest's
        own argument registers back: C puts them back there
        (native/identity.c sn_restore_args_at_exit), so that stop never
        reaches Python.  False where C cannot (the task has no row)."""
        mask, values = 0, ffi.new("uint64_t[6]")
        for i, v in guest.items():
            mask |= 1 << i
            values[i] = v
        return bool(lib.sn_restore_args_at_exit(task.tid, mask, values))

    def on_syscall_exit(self, task, regs):
        cb, task.on_exit = task.on_exit, None
        guest_args, task.guest_args = task.guest_args, None
        result = regs.rax - (1 << 64) if regs.rax >= 1 << 63 else regs.rax
        changed = False
        if guest_args:
            for i, v in guest_args.items():
                setattr(regs, "orig_rax" if i == GUEST_NR else ARG_REGS[i], v)
            changed = True
        if cb is not None and not (guest_args and -result in RESTART_ERRNOS):
            task.exit_regs = regs
            try:
                with self.viewed_from(self.pidns_of(task)):
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

    def inject(self, task, regs, nr, args, then, ip=None):
        """Run one syscall of the Sentry's choosing in the guest, then re-run
        the guest's own call from its syscall instruction (it traps again) --
        unless then(result) gives the guest's call its result instead (an
        -ERESTART* code lets the kernel restart it, or say EINTR, as for a
        signal that interrupted it).  ip: the instruction pointer the call
        is made from, as the filters see it (the handover's marker)."""
        saved = ptrace.ffi_copy(regs)
        regs.orig_rax = nr
        for name, v in zip(ARG_REGS, args):
            setattr(regs, name, v)
        if ip is not None:
            regs.rip = ip
        ptrace.setregs(task.tid, regs)

        def restore(t, result):
            answer = then(result)
            if isinstance(answer, After):
                saved.rax = answer.result & 0xFFFFFFFFFFFFFFFF
                t.exit_regs = saved          # inject_after starts from the guest's own
                if not answer.run():         # nothing injected: the guest's own back now
                    ptrace.setregs(t.tid, saved)
                return None
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

    def hand_over(self, task, regs, h):
        """Kernel.inject of the marker call, answered here and now by the
        listener with the Sentry's fd (platform/handover.py); the thread
        waits for nothing else, so the answer comes at once."""
        try:
            self.inject(task, regs, handover.MARKER_NR, (), h.then, ip=handover.MARKER_IP)
            # -ESRCH: it stopped or died instead; its exit stop tells restore
            handover.serve(self.handover_of(task), task.tid, h.fd, h.at, h.cloexec)
        finally:
            os.close(h.fd)

    def rerun(self, task):
        """From an on_exit callback of a rewrite: the guest's own call runs
        again, from its syscall instruction and its own registers (it traps
        again), as after a lost race; its result now is nobody's."""
        regs = task.exit_regs
        regs.rip -= 2                      # back onto the syscall instruction
        regs.rax = regs.orig_rax           # the guest's own (GUEST_NR)
        ptrace.setregs(task.tid, regs)

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
            if then is not None:
                then(r)
            self.end_injection(t, saved)
        task.on_exit = at_entry
        task.injecting = True
        self.signals_to_python(task)
        task.strace_entry = None

    def end_injection(self, task, saved):
        """After the Sentry's own calls injected at a stop: the task's
        registers as they were (saved), and the signals held back meanwhile
        delivered."""
        task.injecting = False
        ptrace.ffi_copy_into(task.exit_regs, saved)
        ptrace.setregs(task.tid, saved)
        deferred, task.deferred = task.deferred, []
        for sig, raw in deferred:
            if raw is not None:
                task.redelivered[sig] = raw
        self.signals_to_python(task)
        for sig, raw in deferred:
            ptrace.tgkill(task.process.tgid, task.tid, sig)

    def map_staging(self, task, regs):
        slots = task.slots

        def mapped(result):
            # EEXIST: another thread of this address space mapped it first
            if result == staging.BASE or (result == -errno.EEXIST and staging.is_mapped(task.tid)):
                slots.mark_mapped(task.tid)     # the native fast path can stage from now on
            else:
                log.error("cannot map the staging area in %d: %s", task.tid,
                          os.strerror(-result) if result < 0 else hex(result))
                ptrace.kill_task(task.tid)

        self.inject(task, regs, SYS_MMAP,
                    (staging.BASE, staging.SIZE, staging.PROT_READ, staging.MAP_FLAGS,
                     0xFFFFFFFFFFFFFFFF, 0), mapped)
