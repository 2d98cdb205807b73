"""Calls sentry never offers, with the errno Linux gives when they are not
permitted, and why (syscalls/table.py makes them "deny" entries, which the
dispatcher answers without a handler).  Each is logged once per sandbox
(sentry/kernel/dispatch.py), never silent."""
import errno

# never reachable, whatever the configuration (design notes §1)
DENIED = {name: errno.EPERM for name in """
io_uring_setup io_uring_enter io_uring_register open_by_handle_at
name_to_handle_at bpf perf_event_open userfaultfd kexec_load kexec_file_load
init_module finit_module delete_module reboot swapon swapoff fsopen fsconfig
fsmount fspick move_mount open_tree mount_setattr keyctl add_key request_key
ptrace acct quotactl quotactl_fd iopl ioperm vhangup syslog lookup_dcookie
process_madvise pidfd_getfd memfd_secret
""".split()}
DENIED["name_to_handle_at"] = errno.EOPNOTSUPP

NOTES = {
    "ptrace": "a guest cannot trace: the Sentry is the only tracer",
    "io_uring_setup": "its operations bypass seccomp",
}


def note(name):
    return NOTES.get(name, "never offered (design notes §1)")
