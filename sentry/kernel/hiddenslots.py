"""The Sentry's hidden fd slots as a guest's fd table holds them: which
numbers are slots, what each holds (the inert filler, O_PATH /dev/null, or
a copy the Sentry put there), and a filler to refill one from.  The calls
that use them are syscalls/slots.py's and syscalls/locks.py's; the kernel
needs this much to drop a forked child's copies (kernel/clone.py)."""
import os

from sentry.host import fdinfo
from sentry.vfs.mount import HIDDEN_FD_BASE, HIDDEN_FD_END, O_PATH


def hidden_slots(kernel):
    """The Sentry's hidden fd numbers that no mount uses."""
    used = {guest_fd for _, guest_fd in kernel.mounts.hidden_fds()}
    return [h for h in range(HIDDEN_FD_BASE, HIDDEN_FD_END) if h not in used]


def slot(tid, h):
    """What hidden slot h holds: (None, flags) for the inert filler (O_PATH
    /dev/null), ((dev, ino), flags) for a copy the Sentry put there, None
    when it cannot be read."""
    path = f"/proc/{tid}/fd/{h}"
    try:
        link, st, flags = os.readlink(path), os.stat(path), int(fdinfo(tid, h)["flags"], 8)
    except (OSError, KeyError):
        return None
    if link == os.devnull and flags & O_PATH:
        return None, flags
    return (st.st_dev, st.st_ino), flags


def a_filler(tid, kernel, but):
    """A slot holding the filler, other than `but`; None if there is none."""
    for h in hidden_slots(kernel):
        if h != but:
            state = slot(tid, h)
            if state is not None and state[0] is None:
                return h
    return None


def holds_socket(tid, h):
    """Whether slot h holds a socket (only syscalls/slots.py's calls leave
    one there: a lock's slot holds a file of a mount)."""
    try:
        return os.readlink(f"/proc/{tid}/fd/{h}").startswith("socket:")
    except OSError:
        return False
