"""Bad input to every call the Sentry handles: random arguments (bad
pointers, huge lengths, the Sentry's own fds, odd flags) must get an errno or
a result, never a failing handler, a crashed or a hung Sentry."""
import os

from conftest import copy_root, install, run_sentry
from syscalls.table import build_table

# never fuzzed: they would end or signal the fuzzer itself (the kill family
# with small pids, exit, waits on its children), or write its memory
SPARED = {"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal",
          "process_vm_writev", "exit", "exit_group", "wait4", "waitid", "ptrace", "reboot"}
SEEDS = (1, 2)
ITERATIONS = 25


def test_random_arguments_never_fail_a_handler(tmp_path, busybox_root, cbin):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    os.makedirs(root + "/scratch/d")
    for f in ("f", "d/f"):
        open(root + "/scratch/" + f, "w").close()
    exe = install(cbin("fuzz"), root)
    nrs = [str(nr) for nr, e in sorted(build_table().entries.items())
           if e.outcome in ("handler", "allow-if", "native") and e.name not in SPARED]
    for seed in SEEDS:
        r = run_sentry([exe, str(ITERATIONS), str(seed)] + nrs, root, timeout=300,
                       extra=["--cwd", "/scratch"])
        err = r.stderr.decode(errors="replace")
        assert "Traceback" not in err and "failed" not in err, err[-3000:]
        assert r.stdout == b"fuzz done\n" and r.returncode == 0, err[-3000:]
