"""The platform: how sentry stops a guest at a syscall and changes its state.

ptrace + seccomp-bpf is the only platform today; everything above it talks to
`Tracee`, `GuestMemory` and the filter built here, so another platform can
slot in behind the same interface.
"""
