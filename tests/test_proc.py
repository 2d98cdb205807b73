"""The synthetic /proc and /sys: what programs read, about sandbox processes only."""
import os
import subprocess
import re

import pytest

from conftest import SENTRY, run_sentry


def sh(script, **kw):
    r = run_sentry(["/bin/sh", "-c", script], **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_only_sandbox_processes_appear():
    out = sh("sleep 5 & echo me $$ child $!; ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; kill $!")
    first, listed = out.splitlines()
    _, me, _, child = first.split()
    pids = set(listed.split())
    assert {me, child} <= pids
    assert me == "1"                    # the sandbox's init, in its own PID namespace
    # every pid shown is one of the sandbox's: the shell, sleep, ls, grep, tr
    assert len(pids) <= 5 and all(int(p) <= 6 for p in pids)


def test_host_processes_are_not_reachable_through_proc():
    # a fresh host process: its pid is above the sandbox's few (pytest's
    # own parent may be a small pid, which names a sandbox process there)
    host = subprocess.Popen(["sleep", "60"], cwd="/")
    try:
        out = sh(f"cat /proc/{host.pid}/status 2>&1; ls /proc/{host.pid}/cwd 2>&1; "
                 f"cat /proc/{host.pid}/environ 2>&1; true")
    finally:
        host.kill()
        host.wait()
    assert host.pid > 10
    assert out.count("No such file") == 3


def test_self_links_are_sandbox_paths(busybox_root, outside_tmp):
    out = sh("cd /etc && readlink /proc/self/cwd; readlink /proc/self/root; readlink /proc/self/exe; "
             "exec 3< /etc/passwd; readlink /proc/self/fd/3; ls /proc/self/root/.. | grep -c . ; "
             "exec 4< /tmp; ls -d /proc/self/fd/4/../etc", rootfs=busybox_root)
    lines = out.splitlines()
    assert lines[:4] == ["/etc", "/", "/bin/busybox", "/etc/passwd"]
    assert int(lines[4]) == len(os.listdir(busybox_root))     # /.. is / itself
    assert lines[5] == "/proc/self/fd/4/../etc"


def test_cmdline_and_names_are_the_programs():
    out = sh("cat /proc/self/cmdline | tr '\\0' ' '; echo; cat /proc/self/comm; "
             "grep Name /proc/self/status; ps -o comm= -p $$")
    lines = out.splitlines()
    assert lines[0] == "cat /proc/self/cmdline "
    assert lines[1] == "cat"
    assert lines[2].split() == ["Name:", "grep"]
    assert lines[3] == "sh"
    assert "ld-linux" not in out


def test_ps_and_mounts_show_the_sandbox():
    out = sh("sleep 3 & ps -e -o pid=,comm= ; cat /proc/mounts; kill $!")
    procs = [line.split() for line in out.splitlines() if re.match(r"\s*\d+ ", line)]
    assert {name for _, name in procs} == {"sh", "sleep", "ps"}
    mounts = [line.split()[1] for line in out.splitlines() if line.startswith("sentry ")]
    assert mounts[0] == "/" and {"/tmp", "/proc", "/dev", "/sys"} <= set(mounts)
    assert "/work" not in mounts and "cgroup" not in out


def test_kernel_sysctls_and_sys():
    out = sh("cat /proc/sys/kernel/hostname /proc/sys/kernel/ostype; cat /proc/sys/kernel/random/uuid; "
             "cat /sys/devices/system/cpu/online; nproc; head -1 /proc/meminfo; "
             "echo 100 > /proc/self/oom_score_adj && echo oom-ok; echo x > /proc/meminfo || echo ro", extra=["--hostname", "box"])
    lines = out.splitlines()
    assert lines[0] == "box" and lines[1] == "Linux"
    assert re.fullmatch(r"[0-9a-f-]{36}", lines[2])
    assert lines[3] == open("/sys/devices/system/cpu/online").read().strip()
    assert lines[4] == str(os.cpu_count())
    assert lines[5].startswith("MemTotal:")
    assert lines[-2:] == ["oom-ok", "ro"]


def test_open_file_linked_through_proc_fd():
    code = r"""
import os
fd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, b"anonymous\n")
root = os.open("/", os.O_RDONLY)    # a dir_fd makes Python use linkat(AT_SYMLINK_FOLLOW)
os.link(f"/proc/self/fd/{fd}", "/tmp/named", src_dir_fd=root, follow_symlinks=True)
print(open("/tmp/named").read(), end="")
host = os.open("/etc/hostname", os.O_RDONLY)
try:
    os.link(f"/proc/self/fd/{host}", "/tmp/stolen", src_dir_fd=root, follow_symlinks=True)
except OSError as e:
    print(e.strerror)
"""
    out = sh(f"python3 -c '{code}'")
    assert out.splitlines() == ["anonymous", "Invalid cross-device link"]


def test_dev_fd_and_stdin_reach_pipes_and_files(host_root):
    script = """echo piped | cat /dev/stdin; diff <(echo a) <(echo b) | head -1
exec 3>/tmp/f; echo written >&3; cat /dev/fd/3; cat /proc/self/fd/3; test -p /dev/stdin && echo stdin-is-a-pipe
echo to-stderr > /dev/stderr"""
    r = run_sentry(["/bin/bash", "-c", script], host_root, input=b"")
    assert r.stdout.decode().splitlines() == ["piped", "1c1", "written", "written", "stdin-is-a-pipe"]
    assert r.stderr == b"to-stderr\n"


def test_reopening_through_proc_fd_never_gains_access(tmp_path):
    (tmp_path / "f").write_text("kept\n")
    out = sh("exec 3< /ro/f; (echo x > /proc/self/fd/3) 2>&1; (echo x > /dev/fd/3) 2>&1; cat /ro/f",
             extra=["--mount", f"type=bind,src={tmp_path},dst=/ro,ro"])
    assert out.count("Read-only file system") == 2 and out.endswith("kept\n")
    assert (tmp_path / "f").read_text() == "kept\n"


def test_limits_show_the_sandboxs_core_limit():
    """RLIMIT_CORE is the sandbox's own (syscalls/rlimit.py): /proc says what
    the guest set, in the kernel's layout."""
    out = sh("ulimit -c 100; grep core /proc/self/limits; ulimit -S -c 50; grep core /proc/$$/limits")
    # dash counts in 512-byte blocks
    assert out.splitlines() == ["%-25s %-20s %-20s %-10s" % ("Max core file size", 51200, 51200, "bytes"),
                                "%-25s %-20s %-20s %-10s" % ("Max core file size", 25600, 51200, "bytes")]


def test_pids_and_tids_are_listed_in_ascending_order():
    """As Linux lists them: `ps -ef` (which shows /proc's order) has init
    first, also when /proc/self was looked up before the listing."""
    out = sh("cat /proc/self/status > /dev/null; sleep 5 & a=$!; sleep 5 & b=$!; cat /proc/$b/stat > /dev/null; "
             "ls -f /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; echo; ps -eo pid= | tr -d ' ' | tr '\\n' ' '; echo; "
             "python3 -c 'import threading, os; e = threading.Event(); "
             "[threading.Thread(target=e.wait).start() for _ in range(3)]; "
             "l = [int(t) for t in os.listdir(\"/proc/self/task\")]; print(l == sorted(l), len(l)); e.set()'; "
             "kill $a $b")
    listed, ps, tasks = out.splitlines()
    for line in (listed, ps):
        pids = [int(p) for p in line.split()]
        assert pids == sorted(pids) and pids[0] == 1, out
    assert tasks == "True 4"


def test_a_proc_pid_directory_fd_is_a_pidfd():
    """pidfd_send_signal accepts a /proc/<pid> directory fd, as Linux does
    (python's test_signal uses it); a child's works as well as one's own."""
    out = sh("python3 -c 'import os, signal, subprocess\n"
             "fd = os.open(\"/proc/%d\" % os.getpid(), os.O_DIRECTORY)\n"
             "try: signal.pidfd_send_signal(fd, signal.SIGINT)\n"
             "except KeyboardInterrupt: print(\"own\")\n"
             "p = subprocess.Popen([\"sleep\", \"10\"])\n"
             "signal.pidfd_send_signal(os.open(\"/proc/%d\" % p.pid, os.O_DIRECTORY), signal.SIGTERM)\n"
             "print(p.wait())'")
    assert out.splitlines() == ["own", "-15"]


NS_NAMES = ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts"]
NS_SCRIPT = ("cd /proc/self/ns && ls; for n in *; do echo $n $(readlink $n) $(stat -L -c %i $n); done; "
             "sh -c 'for n in pid net; do echo child $n $(readlink /proc/self/ns/$n) $(stat -L -c %i /proc/self/ns/$n); done'; "
             "test -e /proc/self/ns/pid && echo pid-exists; ls /proc/self/ns | wc -l")


def _namespaces(out):
    links, inodes, child = {}, {}, {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in NS_NAMES:
            links[parts[0]], inodes[parts[0]] = parts[1], parts[2]
        elif len(parts) == 4 and parts[0] == "child":
            child[parts[1]] = (parts[2], parts[3])
    return links, inodes, child


def test_namespace_links_are_the_sandboxs():
    """/proc/<pid>/ns/* exist as on Linux (LTP checks /proc/self/ns/pid for
    CONFIG_PID_NS): "kind:[N]" links that can be followed; the sandbox's
    own namespaces show the kernel's numbers, the ones it shares with the
    host numbers of its own, so the host's identities never show and two
    sandboxes differ."""
    # both at once: a namespace's number is free again once it is gone
    procs = [subprocess.Popen(SENTRY + ["--", "/bin/sh", "-c", NS_SCRIPT + "; sleep 2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    (out, err), (out_b, _) = [p.communicate(timeout=60) for p in procs]
    assert procs[0].returncode == 0, err
    out = out.decode()
    assert out.split()[:10] == NS_NAMES
    assert "pid-exists" in out and out.rstrip().endswith("\n10")    # the followed targets stay unlisted
    links, inodes, child = _namespaces(out)
    other, _, _ = _namespaces(out_b.decode())
    for name in NS_NAMES:
        kind = name.replace("_for_children", "")
        assert re.fullmatch(kind + r":\[\d+\]", links[name]), links[name]
        host = os.readlink(f"/proc/self/ns/{name}")
        assert links[name] != host, name
    # one namespace, one identity: the same link and inode in a child process
    assert child["pid"] == (links["pid"], inodes["pid"]) and child["net"] == (links["net"], inodes["net"])
    assert links["pid_for_children"] == links["pid"] and inodes["pid_for_children"] == inodes["pid"]
    assert inodes["pid"] != inodes["net"]
    # another sandbox is another set of namespaces
    assert other["pid"] != links["pid"] and other["net"] != links["net"]


MEMFD = r"""
import os
fd = os.memfd_create("x"); os.write(fd, b"hello")
again = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
print(os.fstat(again).st_size)
cut = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_TRUNC)
print(os.fstat(fd).st_size, os.fstat(cut).st_size)
"""


def test_a_memfd_reopened_with_o_trunc_is_truncated():
    """open(/proc/self/fd/N, O_TRUNC) of a memfd truncates it, as Linux's
    reopen does (LTP memfd_create01)."""
    native = subprocess.run(["python3", "-c", MEMFD], capture_output=True)
    boxed = run_sentry(["python3", "-c", MEMFD])
    assert native.stdout == b"5\n0 0\n"
    assert boxed.stdout == native.stdout, boxed.stderr


SEALS = r'''
import os, fcntl, errno
F_ADD_SEALS, F_GET_SEALS, F_SEAL_WRITE, F_SEAL_SHRINK = 1033, 1034, 8, 2
def tryit(f, *a):
    try:
        return f(*a)
    except OSError as e:
        return errno.errorcode[e.errno]
m = os.memfd_create("x", os.MFD_ALLOW_SEALING)
os.write(m, b"hello")
ro = os.open(f"/proc/self/fd/{m}", os.O_RDONLY)
print("ro flags", fcntl.fcntl(ro, fcntl.F_GETFL) & 3, "write", tryit(os.write, ro, b"x"),
      "seal via ro", tryit(fcntl.fcntl, ro, F_ADD_SEALS, F_SEAL_SHRINK))
print("read ro", os.pread(ro, 5, 0), "same offset?", os.lseek(ro, 0, 1), os.lseek(m, 0, 1))
print("seal", fcntl.fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK), "seen via ro", fcntl.fcntl(ro, F_GET_SEALS))
rw = os.open(f"/dev/fd/{m}", os.O_RDWR | os.O_CLOEXEC)
print("rw", fcntl.fcntl(rw, fcntl.F_GETFL) & 3, fcntl.fcntl(rw, fcntl.F_GETFD), os.lseek(rw, 0, 1))
p = "/tmp/del%d" % os.getpid()
d = os.open(p, os.O_CREAT | os.O_RDWR, 0o600); os.write(d, b"abc"); os.unlink(p)
dr = os.open(f"/proc/self/fd/{d}", os.O_RDONLY)
print("deleted ro", fcntl.fcntl(dr, fcntl.F_GETFL) & 3, os.read(dr, 3), tryit(os.write, dr, b"z"))
'''


def test_a_memfd_reopened_read_only_is_a_new_read_only_file():
    """/proc/self/fd/N of a memfd (or a deleted file) reopened with less
    access is a new open file description with that access, as on Linux:
    writes are EBADF, seals cannot be added through it, the offset is its
    own (LTP memfd_create01; how sealing programs hand out read-only fds)."""
    native = subprocess.run(["python3", "-c", SEALS], capture_output=True)
    boxed = run_sentry(["python3", "-c", SEALS])
    assert native.returncode == 0 and b"seal via ro EPERM" in native.stdout, native.stderr
    assert boxed.stdout == native.stdout, boxed.stderr

ZOMBIE = r'''
import os, time
c = os.fork()
if c == 0:
    os._exit(3)
time.sleep(0.3)
with open(f"/proc/{c}/stat") as f:
    parts = f.read().split()
print(parts[0] == str(c), parts[1], parts[2])
print(str(c) in os.listdir("/proc"))
with open(f"/proc/{c}/status") as f:
    print([l.strip() for l in f if l.startswith("State")])
os.waitpid(c, 0)
print(os.path.exists(f"/proc/{c}"))
'''


def test_a_zombie_stays_in_proc_until_reaped():
    """An exited child its parent has not waited for is listed in /proc,
    state Z, as on Linux (ps shows it <defunct>), and goes when reaped."""
    native = subprocess.run(["python3", "-c", ZOMBIE], capture_output=True)
    boxed = run_sentry(["python3", "-c", ZOMBIE])
    assert native.stdout == b"True (python3) Z\nTrue\n['State:\\tZ (zombie)']\nFalse\n"
    assert boxed.stdout == native.stdout, boxed.stderr


def test_more_sysctls_programs_read():
    """lease-break-time, the inotify limits, vfs_cache_pressure, printk, the
    entropy pool's figures, pipe and link protection settings are the
    host's (machine-wide, naming no one); ns_last_pid is the sandbox's pid
    namespace's; core_pattern the default (no core is ever written)."""
    host = ["fs/lease-break-time", "fs/inotify/max_user_watches", "vm/vfs_cache_pressure", "kernel/printk",
            "kernel/random/poolsize", "fs/pipe-user-pages-soft", "fs/protected_symlinks", "user/max_inotify_instances"]
    r = run_sentry(["/bin/sh", "-c", f"for f in {' '.join(host[:4])} kernel/core_pattern {' '.join(host[4:])}; "
                    "do cat /proc/sys/$f; done; true & wait; echo $! $(cat /proc/sys/kernel/ns_last_pid)"])
    lines = r.stdout.decode().splitlines()
    lines = lines[:4] + lines[5:-1] + [lines[4], lines[-1]]
    for i, f in enumerate(host):
        with open(f"/proc/sys/{f}") as h:
            assert lines[i] == h.read().rstrip("\n"), f
    assert lines[-2] == "core"
    last, ns_last = map(int, lines[-1].split())
    assert ns_last == last + 1            # the cat that read it came next


def test_ipc_sysctls_are_the_sandboxs_namespace():
    """/proc/sys/kernel/{shmall,shmmni,msg*,sem} and fs/mqueue show the sandbox's IPC
    namespace as a new one natively does (unshare --ipc); shmmax its cap."""
    script = ("for f in shmall shmmni msgmax msgmnb msgmni sem; do cat /proc/sys/kernel/$f; done; "
              "ls /proc/sys/fs/mqueue; cat /proc/sys/fs/mqueue/*; cat /proc/sys/kernel/shmmax")
    native = subprocess.run(["unshare", "--ipc", "sh", "-c", script], capture_output=True)
    boxed = run_sentry(["/bin/sh", "-c", script])
    assert b"msgsize_max" in native.stdout
    assert boxed.stdout.splitlines()[:-1] == native.stdout.splitlines()[:-1], boxed.stderr
    assert boxed.stdout.splitlines()[-1] == str(1 << 40).encode()


IPC_SETTINGS = r'''
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def setting(name, value=None):
    path = "/proc/sys/" + name
    if value is not None:
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            return errno.errorcode[e.errno]
    return open(path).read().strip()
print(setting("kernel/msgmax", "100"), setting("kernel/msgmnb", "300"), setting("kernel/sem", "10 100 5 20"))
print(setting("fs/mqueue/msg_max", "20"), setting("kernel/shm_rmid_forced", "1"))
q = libc.msgget(0, 0o1600)
big, small = ctypes.create_string_buffer(8 + 200), ctypes.create_string_buffer(8 + 100)
big[0] = small[0] = 1
print("over msgmax", libc.msgsnd(q, big, 200, 0), errno.errorcode[ctypes.get_errno()])
print("at msgmax", libc.msgsnd(q, small, 100, 0), libc.msgsnd(q, small, 100, 0), libc.msgsnd(q, small, 100, 0))
print("over msgmnb", libc.msgsnd(q, small, 100, 0o4000), errno.errorcode[ctypes.get_errno()])
print("semmsl", libc.semget(0, 11, 0o1600), errno.errorcode[ctypes.get_errno()])
os.setuid(65534)
print("not root", setting("kernel/msgmni", "1"))
'''


def test_ipc_settings_are_written_in_the_sandboxs_namespace():
    """The sandbox's root sets its IPC namespace's limits through /proc/sys
    (kernel.msg*, kernel.sem, fs.mqueue.*), and they hold there as in a new
    namespace natively (unshare --ipc); a non-root user may not; the host's
    stay as they were.  kernel.shmmax alone stays fixed (EACCES): the cap
    that keeps segments clear of the staging area."""
    host = {n: open(f"/proc/sys/kernel/{n}").read() for n in ("msgmax", "msgmnb", "sem")}
    native = subprocess.run(["unshare", "--ipc", "python3", "-c", IPC_SETTINGS], capture_output=True)
    boxed = run_sentry(["python3", "-c", IPC_SETTINGS])
    assert native.returncode == 0, native.stderr
    assert boxed.stdout == native.stdout, boxed.stderr
    assert b"over msgmax -1 EINVAL" in boxed.stdout and b"not root EACCES" in boxed.stdout
    assert {n: open(f"/proc/sys/kernel/{n}").read() for n in host} == host
    fixed = run_sentry(["/bin/sh", "-c", "echo 4096 > /proc/sys/kernel/shmmax; cat /proc/sys/kernel/shmmax"])
    assert b"Permission denied" in fixed.stderr and fixed.stdout == str(1 << 40).encode() + b"\n"


RACE_SETTINGS = r'''
import os, random, sys, threading
SETTING = sys.argv[1]
stop = False
junk = [os.open("/etc/hostname", os.O_RDONLY), os.open("/", os.O_RDONLY)]
def swap():
    while not stop:
        for n in range(3, 9):
            try:
                os.dup2(random.choice(junk), n)
            except OSError:
                pass
seen, odd = set(), []
def write(k):
    for i in range(150):
        value = str(1000 + k * 1000 + i)
        try:
            fd = os.open(SETTING, os.O_RDWR)
        except OSError as e:
            odd.append(("open", e.errno)); continue
        try:
            st = os.fstat(fd)
            os.write(fd, value.encode())
            seen.add(value)
        except OSError as e:
            pass            # the swapper closed or replaced the number first
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
swappers = [threading.Thread(target=swap) for _ in range(2)]
writers = [threading.Thread(target=write, args=(k,)) for k in range(3)]
for t in swappers + writers:
    t.start()
for t in writers:
    t.join()
stop = True
for t in swappers:
    t.join()
final = open(SETTING).read().strip()
print(len(seen) > 0, final in seen, odd)
'''


@pytest.mark.parametrize("setting", ["/proc/sys/kernel/msgmni", "/proc/sys/net/core/somaxconn"])
def test_settings_racing_fd_swaps_reach_only_the_sandbox(setting):
    """Threads open and write a setting of the sandbox's own namespaces (IPC,
    network) while others dup2 files over the low fd numbers: every open
    lands on the sandbox's namespace's file (handed over in one step), the
    host's setting never changes."""
    before = open(setting).read()
    r = run_sentry(["python3", "-c", RACE_SETTINGS, setting], timeout=120)
    assert r.stdout == b"True True []\n", r.stderr
    assert open(setting).read() == before


RACE_REOPEN = r'''
import os, threading
ro = os.open("/ro/f", os.O_RDONLY)
ro_ino = os.fstat(ro).st_ino
m = os.memfd_create("w")
N = 50
os.dup2(m, N)
stop = False
def flip():
    while not stop:
        os.dup2(ro, N)
        os.dup2(m, N)
t = threading.Thread(target=flip)
t.start()
gained = writable = 0
for _ in range(3000):
    for how in (os.O_RDWR, os.O_WRONLY):
        try:
            fd = os.open(f"/proc/self/fd/{N}", how)
        except OSError:
            continue
        try:
            os.write(fd, b"x")
            writable += 1
            if os.fstat(fd).st_ino == ro_ino:
                gained += 1
        except OSError:
            pass
        os.close(fd)
stop = True
t.join()
print("gained", gained, "writable", writable > 0)
'''


def test_a_racing_dup2_never_makes_a_reopen_writable(tmp_path):
    """While a thread moves a read-only file and a read-write memfd in turn
    onto one fd number, reopening that number for writing never gives a
    writable fd to the read-only file."""
    (tmp_path / "f").write_text("kept\n")
    r = run_sentry(["python3", "-c", RACE_REOPEN],
                   extra=["--mount", f"type=bind,src={tmp_path},dst=/ro,ro"], timeout=300)
    assert r.stdout == b"gained 0 writable True\n", r.stderr
    assert (tmp_path / "f").read_text() == "kept\n"
