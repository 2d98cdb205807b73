"""Fd handover: the Sentry puts a file it opened itself into a guest thread's
fd table, atomically (native/handover.c has the mechanism and why).

The guest's first process installs the marker filter and hands its listener
to the Sentry (install_filter, in sentry/sandbox/guest.py); the kernel's
dispatcher injects the marker (MARKER_NR from MARKER_IP) at a thread's
seccomp stop and answers it with `serve`.  No number in the guest's table names the file before it is in
place, so no other guest thread can swap it, close it or use it first.
"""
import os

from sentry._native import lib

MARKER_NR = 39                  # getpid, from an address no code runs at
MARKER_IP = lib.sn_handover_ip()


def install_filter():
    """In the guest's first process, before its main filter: the listener
    fd, for the Sentry alone (the caller sends it and closes its copy)."""
    fd = lib.sn_handover_filter()
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd))
    return fd


def serve(listener, tid, fd, at=None, cloexec=False):
    """Answer thread tid's marker by installing the Sentry's `fd` at number
    `at` (replacing what is there) or at its lowest free number: the number,
    which is also the marker's result, or -errno (-ESRCH: the thread stopped
    or died without reaching the listener -- a filter of its own denied the
    marker -- and its exit stop reports what it got instead)."""
    return lib.sn_handover_serve(listener, tid, fd, -1 if at is None else at,
                                 os.O_CLOEXEC if cloexec else 0)
