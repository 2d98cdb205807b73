"""Signal delivery: at a signal-delivery stop, the siginfo the guest will
see names senders by virtual pid and emulated uid; the SIGCHLD of a child
the guest never had (a refused fork) is dropped.
"""
import signal

from sentry.kernel import siginfo
from sentry.platform import ptrace


class SignalDelivery:
    """The Kernel's signal-delivery stops, and who sent a signal."""

    def on_signal(self, task, sig):
        """Signal-delivery-stop: the siginfo the guest will see names
        senders by virtual pid and emulated uid.  The SIGCHLD of a child
        the guest never had (Kernel.refuse) is dropped."""
        raw = ptrace.getsiginfo(task.tid)
        if raw is not None and sig == signal.SIGCHLD and self.phantoms:
            if self.phantoms.pop(siginfo.sender_pid(raw), 0) is None:
                self.refused_children_changed()
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
            self.signals_to_python(task)
        if raw is not None:
            with self.viewed_from(self.pidns_of(task)):     # the receiver's names
                new = siginfo.translate(self, task, raw)
            if new != raw:
                ptrace.setsiginfo(task.tid, new)
        # a call the Sentry injected may be on its way (Kernel.inject_after):
        # its stops must still come
        self.resume(task, sig)

    def known_process(self, host_pid):
        """A sandbox process by host pid: live, zombie, or just gone."""
        proc = self.processes.get(host_pid)
        if proc is None:
            z = self.zombies.get(host_pid)
            proc = z[1] if z else self.recently_gone.get(host_pid)
        return proc

    def creds_of(self, host_pid):
        """Credentials of a process (its leader's) by host pid; None outside."""
        proc = self.known_process(host_pid)
        if proc is None:
            return None
        t = self.tasks.get(proc.tgid)
        return t.creds if t is not None else proc.last_creds

    def sender_of(self, host_pid):
        """(vpid, ruid) of a process by host pid, live or zombie; None outside."""
        proc = self.known_process(host_pid)
        if proc is None:
            return None
        creds = self.creds_of(host_pid)
        return self.vpid_of(proc), (creds.ruid if creds else 0)
