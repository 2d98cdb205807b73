"""Host objects a guest holds or can name without a path: System V IPC ids,
files handed over on stdin/stdout, locks, ioctls, pidfds.  The guest may use
what it was given as the host kernel lets the guest itself, never with the
Sentry's privileges, and never reaches a host object by an id it guessed."""
import ctypes
import os

import pytest

from conftest import copy_root, install, run_sentry

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_PRIVATE, IPC_RMID, SETVAL, GETVAL, IPC_NOWAIT = 0, 0, 16, 12, 0o4000


@pytest.fixture
def jail(tmp_path, busybox_root, cbin):
    """A busybox --rootfs with this file's C programs in /bin."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    for name in ("hostobj_sysv",):
        install(cbin(name), root)
    return root


# ---- System V IPC: the host's ids are never reachable ------------------------------

class _Msg(ctypes.Structure):
    _fields_ = [("type", ctypes.c_long), ("text", ctypes.c_char * 64)]


@pytest.fixture
def host_ipc():
    """A host shared memory segment, semaphore set and message queue, each
    holding a token; yields their ids and a function telling whether any
    changed."""
    shm = libc.shmget(IPC_PRIVATE, 4096, 0o666)
    sem = libc.semget(IPC_PRIVATE, 1, 0o666)
    msq = libc.msgget(IPC_PRIVATE, 0o666)
    assert min(shm, sem, msq) >= 0, os.strerror(ctypes.get_errno())
    addr = libc.shmat(shm, None, 0)
    ctypes.memmove(addr, b"HOST TOKEN\0", 11)
    assert libc.semctl(sem, 0, SETVAL, ctypes.c_int(7)) == 0
    msg = _Msg(1, b"HOST TOKEN")
    assert libc.msgsnd(msq, ctypes.byref(msg), 16, IPC_NOWAIT) == 0

    def unchanged():
        out = _Msg()
        got = libc.msgrcv(msq, ctypes.byref(out), 64, 0, IPC_NOWAIT)
        ok = (ctypes.string_at(addr, 11) == b"HOST TOKEN\0" and libc.semctl(sem, 0, GETVAL) == 7
              and got == 16 and out.text == b"HOST TOKEN"
              and libc.msgrcv(msq, ctypes.byref(out), 64, 0, IPC_NOWAIT) == -1)
        if got == 16:
            libc.msgsnd(msq, ctypes.byref(msg), 16, IPC_NOWAIT)
        return ok
    try:
        yield (shm, sem, msq), unchanged
    finally:
        libc.shmdt(ctypes.c_void_p(addr))
        libc.shmctl(shm, IPC_RMID, None)
        libc.semctl(sem, 0, IPC_RMID)
        libc.msgctl(msq, IPC_RMID, None)


def test_host_sysv_ipc_is_unreachable(jail, host_ipc):
    """A guest scanning ids with shmat, shmctl, semctl, semop, msgctl,
    msgrcv and msgsnd reaches none of the host's objects: the sandbox has no
    System V IPC (ENOSYS, as a kernel built without it), shmat included."""
    ids, unchanged = host_ipc
    r = run_sentry(["/bin/hostobj_sysv", "64"] + [str(i) for i in ids], jail)
    out = r.stdout.decode()
    assert "TOKEN" not in out and "value" not in out, out
    for name in ("shmat", "shmat rw", "shmctl", "semctl", "semop", "msgctl", "msgrcv", "msgsnd"):
        assert f"{name}: reached 0, ENOSYS" in out, out + r.stderr.decode()
    assert "shmget: ENOSYS" in out
    assert unchanged()
