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
    # the same three where sentry's root mount serves them: a file the guest
    # made (default root: the overlay's upper layer; --rootfs: in place) and
    # one made before the run (default root: the overlay's lower layer)
    "open_close_root": "open+close of a file the guest made under /var/tmp",
    "stat_root": "stat of a file the guest made under /var/tmp",
    "getdents64_root_1000": "listing of a 1000-entry directory the guest made under /var/tmp",
    "open_close_lower": "open+close of a file made before the run",
    "stat_lower": "stat of a file made before the run",
    "getdents64_lower_1000": "listing of a 1000-entry directory made before the run",
    "creat_unlink": "open(O_CREAT|O_EXCL) of a new file, close, unlink (file-creating work)",
    "mkdir_rmdir": "mkdir + rmdir of a new directory",
    "creat_unlink_root": "creat_unlink under /var/tmp (sentry: the overlay's upper layer)",
    "mkdir_rmdir_root": "mkdir_rmdir under /var/tmp (sentry: the overlay's upper layer)",
    "fork_wait": "new process + tracer auto-attach",
    "thread_create_join": "pthread_create (glibc: clone3) + pthread_join of a thread that returns at once",
    "fork_exec_wait": "fork + execve of a static binary",
    "pipe_pingpong": "1-byte round trip between two processes",
    "kill_probe": "kill(child, 0): a signal's pid translation (the kill family)",
    # loopback TCP: the host's loopback natively, the sandbox's own (a private
    # network namespace) under sentry
    "tcp_pingpong": "1-byte round trip over loopback TCP between two processes (TCP_NODELAY)",
    "tcp_stream_64k": "64 KiB written to a loopback TCP connection a peer drains",
    "tcp_connect_accept": "socket + connect + accept + close of both ends on loopback",
    "udp_pingpong": "1-byte round trip over loopback UDP between two processes (a connected socket)",
    "clock_gettime": "clock_gettime(CLOCK_MONOTONIC) through the vDSO, outside any time namespace",
    "clock_gettime_timens": "the same in a time namespace with a CLOCK_MONOTONIC offset (sentry: a trap)",
}

UNIT = "ns/op"
DIR_ENTRIES = 1000       # as in micro.c


def setup(workdir):
    """The *_lower cases' files, made before any runner starts: under sentry's
    default root they are the overlay's lower layer."""
    import os
    lower = os.path.join(workdir, "lower")
    os.makedirs(os.path.join(lower, "dir"))
    with open(os.path.join(lower, "file"), "w") as f:
        f.write("hello\n")
    for i in range(DIR_ENTRIES):
        open(os.path.join(lower, "dir", f"entry-{i:04d}"), "w").close()
    os.environ["MICRO_LOWER"] = lower


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
