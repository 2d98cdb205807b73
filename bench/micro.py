"""Microbenchmarks: one guest process (bench/c/micro.c) times every case."""

# name -> what it stresses under a syscall-intercepting runner
CASES = {
    "getpid": "cheapest possible syscall (raw SYS_getpid)",
    "uname": "a call sentry handles in Python",
    "read_devzero": "1-byte read, allowed in-kernel by seccomp",
    "write_devnull": "1-byte write, allowed in-kernel by seccomp",
    "open_close": "path lookup + fd table",
    "stat": "path lookup, no fd",
    "getdents64_1000": "full listing of a 1000-entry directory",
    "fork_wait": "new process + tracer auto-attach",
    "fork_exec_wait": "fork + execve of a static binary",
    "pipe_pingpong": "1-byte round trip between two processes",
}

UNIT = "ns/op"


def command(built, cases, budget_ms, reps):
    return [built["micro"], str(budget_ms), str(reps), built["tiny"]] + list(cases)


def parse(stdout):
    """'case ns iters' lines -> {case: ns}; cases that never printed are absent."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in CASES:
            out[parts[0]] = float(parts[1])
    return out
