"""System V IPC is the sandbox's own: a private IPC namespace (made by the
namespace helper, sentry/vfs/mountns.py; syscalls/ipc.py).  Shared memory,
semaphores and message queues work between the sandbox's processes as on
Linux, untrapped; keys and ids name nothing of the host's or of another
sandbox's; `ipcs` lists the sandbox's objects only."""
import ctypes
import os
import subprocess

from conftest import install, run_native, run_sentry
from sentry.platform import staging

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT, IPC_RMID = 0o1000, 0
KEY = 0x5E47


def _ipc_root(busybox_root, cbin, tmp_path):
    root = str(tmp_path / "root")
    subprocess.run(["cp", "-a", busybox_root, root], check=True)
    install(cbin("sysv_ipc"), root)
    return root


def test_sysv_ipc_between_processes_as_natively(busybox_root, cbin, tmp_path):
    """The same transcript as natively in a fresh IPC namespace (unshare
    --ipc), while the host holds objects under the same key."""
    root = _ipc_root(busybox_root, cbin, tmp_path)
    host = libc.shmget(KEY, 4096, IPC_CREAT | 0o600)
    assert host >= 0, os.strerror(ctypes.get_errno())
    try:
        native = run_native(["unshare", "--ipc", "chroot", root, "/bin/sysv_ipc", hex(KEY)])
        boxed = run_sentry(["/bin/sysv_ipc", hex(KEY)], root)
        assert native.returncode == 0, native.stdout + native.stderr
        assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr.decode()
        assert boxed.returncode == 0
    finally:
        libc.shmctl(host, IPC_RMID, None)


def test_sandboxes_and_the_host_do_not_share_ipc_objects(busybox_root, cbin, tmp_path):
    """Two sandboxes make an object under one key at once; neither sees the
    other's, the host sees neither, and ipcs inside lists only its own."""
    root = _ipc_root(busybox_root, cbin, tmp_path)
    script = ("ipcmk -M 4096 >/dev/null 2>&1 || true; "
              "python3 -c 'import ctypes; l = ctypes.CDLL(None); print(l.shmget(0x5E48, 4096, 0o1600) >= 0)' "
              "2>/dev/null; ipcs -m | grep -c '^0x'; sleep 1; ipcs -m | grep -c '^0x'")
    before = subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout
    procs = [subprocess.Popen(["python3", "-m", "sentry", "run", "--", "/bin/sh", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    for out, err in outs:
        lines = out.decode().split()
        # its own segments only: ipcmk's and the one under the shared key
        assert lines[-2:] == ["2", "2"], (out, err)
    after = subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout
    assert "0x00005e48" not in after and after.count("\n0x") == before.count("\n0x")


def test_shmat_never_replaces_the_staging_area(busybox_root, cbin, tmp_path):
    """shmat(SHM_REMAP) replaces what is mapped at its address: at or just
    below the Sentry's read-only staging area it is refused (EINVAL), and
    without SHM_REMAP the kernel refuses a range in use.  Meanwhile rewritten
    calls (which read the staging area) still see what the Sentry put there."""
    root = _ipc_root(busybox_root, cbin, tmp_path)
    r = run_sentry(["/bin/sysv_ipc", "0", hex(staging.BASE)], root)
    out = r.stdout.decode()
    assert out.count("= -1 EINVAL") == 6 and "IPC_RMID, 0) = 0" in out, out + r.stderr.decode()
    assert "0600) >= 0 = 1" in out


def test_shmat_racing_a_rewritten_call(outside_tmp):
    """Threads trying shmat(SHM_REMAP) over the staging area while another
    thread's opens are rewritten through it: every open still reaches the
    file it named, and no attach succeeds."""
    target = os.path.join(outside_tmp, "target")
    with open(target, "w") as f:
        f.write("the right file\n")
    code = f"""
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shm = libc.shmget(0, 1 << 16, 0o600)
base, stop, attached = {staging.BASE}, [], []
def remap():
    while not stop:
        for at in (base, base - 4096, base + 4096):
            p = libc.shmat(shm, ctypes.c_void_p(at), 0o40000)
            if p not in (None, 2**64 - 1):
                attached.append(hex(p))
ts = [threading.Thread(target=remap, daemon=True) for _ in range(2)]
[t.start() for t in ts]
good = 0
for i in range(400):
    with open("{target}") as f:
        good += f.read() == "the right file\\n"
stop.append(1)
[t.join() for t in ts]
print(good, len(attached))
"""
    r = run_sentry(["python3", "-c", code])
    assert r.stdout.split() == [b"400", b"0"], r.stdout + r.stderr


PIDS = r'''
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(128)
q = libc.msgget(0, 0o600)
msg = struct.pack("<q", 1) + b"hi"
libc.msgsnd(q, msg, 2, 0)
libc.msgctl(q, 2, buf)
print("msg_lspid is mine:", struct.unpack_from("<i", buf.raw, 96)[0] == os.getpid())
s = libc.shmget(0, 4096, 0o600)
libc.shmctl(s, 2, buf)
print("shm_cpid is mine:", struct.unpack_from("<i", buf.raw, 80)[0] == os.getpid())
m = libc.semget(0, 1, 0o600)
op = struct.pack("<HhH", 0, 1, 0)
libc.semop(m, op, 1)
print("sem GETPID is mine:", libc.semctl(m, 0, 11) == os.getpid())
'''


def test_ipc_objects_name_processes_by_virtual_pid():
    """IPC_STAT's pid fields and semctl(GETPID) show the sandbox's pids, not
    the host's (LTP msgsnd01, msgrcv01, semctl01)."""
    r = run_sentry(["python3", "-c", PIDS])
    assert r.stdout.decode().split("\n")[:3] == [
        "msg_lspid is mine: True", "shm_cpid is mine: True", "sem GETPID is mine: True"], r.stderr


PROC_SYSVIPC = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
key = 0x5E4A
shm = libc.shmget(key, 4096, 0o1600)
assert libc.shmat(shm, None, 0) != 2**64 - 1
msq = libc.msgget(key, 0o1600)
msg = ctypes.create_string_buffer(b"\1\0\0\0\0\0\0\0hello", 13)
assert libc.msgsnd(msq, msg, 5, 0) == 0
sem = libc.semget(key, 3, 0o1600)
me = os.getpid()
for name, pids in (("shm", (4, 5)), ("msg", (5,)), ("sem", ())):
    lines = open("/proc/sysvipc/" + name).read().splitlines()
    print(name, lines[0])
    rows = [l.split() for l in lines[1:]]
    print(name, "rows", len(rows), "mine", [int(r[0]) for r in rows] == [key],
          "pids", [int(rows[0][i]) == me for i in pids], "uid", rows[0][{"shm": 7, "msg": 7, "sem": 4}[name]])
libc.shmctl(shm, 0, None); libc.msgctl(msq, 0, None); libc.semctl(sem, 0, 0)
'''


def test_proc_sysvipc_lists_the_sandboxs_objects_by_virtual_pid():
    """/proc/sysvipc/{shm,msg,sem} (what ipcs reads) list the sandbox's
    objects alone, in the kernel's own format, their pid columns naming the
    sandbox's processes: the same as natively in a fresh IPC namespace,
    while the host holds an object under the same key."""
    host = libc.shmget(0x5E4A, 4096, IPC_CREAT | 0o600)
    assert host >= 0, os.strerror(ctypes.get_errno())
    try:
        native = run_native(["unshare", "--ipc", "python3", "-c", PROC_SYSVIPC])
        boxed = run_sentry(["python3", "-c", PROC_SYSVIPC])
        assert native.returncode == 0, native.stderr
        assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr.decode()
        assert "rows 1 mine True pids [True, True]" in boxed.stdout.decode()
    finally:
        libc.shmctl(host, IPC_RMID, None)


def test_sysvipc_tables_keep_the_kernels_format():
    """Rewriting a table with every pid unchanged gives the kernel's bytes
    back, objects of each kind listed (in a fresh IPC namespace)."""
    script = PROC_SYSVIPC.split("me = os.getpid()")[0] + (
        "import sys; sys.path.insert(0, %r)\n"
        "from sentry.fsimpl import sysvipc\n"
        "from sentry.kernel.idmap import IdMap\n"
        "for name in ('msg', 'sem', 'shm'):\n"
        "    text = open('/proc/sysvipc/' + name, 'rb').read()\n"
        "    assert text.count(b'\\n') == 2, text\n"
        "    assert sysvipc.translated(name, text, lambda pid: pid, IdMap()) == text, (name, text)\n"
        "print('same')\n") % os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = run_native(["unshare", "--ipc", "python3", "-c", script])
    assert r.stdout == b"same\n", r.stderr
