"""The signal dispositions and mask sentry was started with, for its guest.

A program started natively inherits its parent's ignored signals and signal
mask through execve (handlers it cannot inherit: they become SIG_DFL).  The
guest must start as it would have without the sandbox, so these are recorded
when the `sentry` package is first imported — before the Sentry changes any —
and set again in the guest just before its execve (`restore`).

What can be recorded, and what cannot:

- the mask: exact; Python's start-up blocks nothing;
- ignored signals: exact for every signal but two. Python's start-up
  (`signal_install_handlers`, before any of sentry's code runs) sets SIGPIPE
  and SIGXFSZ to SIG_IGN whatever they were, and discards what they were: the
  guest gets them at SIG_DFL, as every shell gives them to a program (a parent
  that ignored them on purpose is not seen). SIGINT keeps an inherited
  SIG_IGN (`nohup`, `cmd &` in a script): Python installs its own handler only
  over a SIG_DFL, so an ignored SIGINT is still ignored here.
"""
import signal

# Set to SIG_IGN by the interpreter itself, whatever sentry's parent gave it.
_FORCED_BY_PYTHON = frozenset(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ")
                              if hasattr(signal, name))
_UNSETTABLE = frozenset((signal.SIGKILL, signal.SIGSTOP))


def _record():
    ignored = set()
    for sig in signal.valid_signals():
        if sig in _UNSETTABLE or sig in _FORCED_BY_PYTHON:
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                ignored.add(sig)
        except (OSError, ValueError):
            pass
    return frozenset(ignored), frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, ()))


IGNORED, BLOCKED = _record()


def restore():
    """In the guest, before execve: the dispositions and mask sentry started
    with (handlers do not survive execve, so SIG_DFL for all the others)."""
    for sig in signal.valid_signals():
        if sig in _UNSETTABLE:
            continue
        try:
            signal.signal(sig, signal.SIG_IGN if sig in IGNORED else signal.SIG_DFL)
        except (OSError, ValueError):
            pass             # a number the C library keeps for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, BLOCKED)
