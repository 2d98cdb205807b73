"""What happens at exec: the exec stop, where the new image has not run one
instruction yet.  Unless it is the file the Sentry checked (sentry/loader/
image.py), the task is killed; else the process takes its new name, a fresh
address space (no staging area yet) and fd table, and its credentials
change as execve changes them.  RLIMIT_NPROC's exec-time rule is here too.
"""
import errno
import logging

from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.kernel import timens
from sentry.kernel.task import FdTable
from sentry.loader import auxv, image
from sentry.platform import ptrace
from sentry.platform.staging import Slots

log = logging.getLogger("sentry")


class Exec:
    """The Kernel's exec stops."""

    def nproc_at_exec(self, task):
        """execve(2) after a set*uid past RLIMIT_NPROC: EAGAIN while the uid
        is still over it (the kernel's PF_NPROC_EXCEEDED rule)."""
        if task.nproc_exceeded:
            if self.nproc_over(task.creds.ruid, task.process.nproc_limit[0]):
                raise SyscallError(errno.EAGAIN)
            task.nproc_exceeded = False

    def text_busy(self, st):
        """Whether a live sandbox process runs the file whose stat is st (as
        its program or ELF interpreter): Linux refuses to open it for writing
        (ETXTBSY)."""
        key = (st.st_dev, st.st_ino)
        return any(key in proc.busy for proc in list(self.processes.values()))

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
            self._forget_nested(former_tid)      # the leader's numbers stay its
            lib.sn_set_ident(former_tid, ffi.NULL)
            self.tasks[tid] = task
        task = self.tasks[tid]
        proc = task.process
        # the new image has a fresh address space: no staging area yet
        task.leave()
        proc.slots = Slots()
        proc.files = FdTable()         # exec unshares the fd table
        self.unpin(task)
        task.attach(proc)
        proc.slots.first_thread(tid)   # C maps the area when a fast path first needs it
        pending, proc.pending_exec = proc.pending_exec, None
        # The image has not run a single instruction yet.  Unless it is the
        # file the Sentry read and the kernel mapped nothing else (a racing
        # guest swapped the file or rewrote its headers, or the exec never
        # went through the Sentry), it never will.
        if pending is None:
            why = "an exec the Sentry did not check"
        else:
            try:
                why = image.verify(tid, pending.dev, pending.ino)
            except OSError as e:          # fail closed
                why = f"the new image cannot be checked ({e})"
            except Exception as e:
                log.exception("exec in %d: the check of the new image failed", tid)
                why = f"the check failed ({e!r})"
        if why is None:
            proc.exe, proc.comm, proc.kernel_comm, proc.busy = pending.exe, pending.comm, pending.kernel_comm, pending.busy
            if task.creds.exec(*pending.setid):
                # the kernel knows nothing of the emulated ids: the new image's
                # loader must learn from its auxv that it runs set-id
                why = auxv.mark_secure(tid, ptrace.getregs(tid).rsp)
        if why is None and not timens.exec_in(proc):
            why = "its vDSO's clock_gettime could not be sent to the Sentry (time namespace)"
        if why is not None:
            log.error("exec in %d: %s; killed", tid, why)
            self.audit.event("exec-killed", task, syscall="execve", path=pending.exe if pending else None, why=why)
            ptrace.kill_task(tid)
        else:
            self.publish(task)
            self.audit.event("exec", task)
        self.resume(task)
