"""Host objects a guest holds or can name without a path: System V IPC ids,
files handed over on stdin/stdout, locks, ioctls, pidfds.  The guest may use
what it was given as the host kernel lets the guest itself, never with the
Sentry's privileges, and never reaches a host object by an id it guessed."""
import ctypes
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import SENTRY, copy_root, install, run_native, run_sentry
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_PRIVATE, IPC_RMID, SETVAL, GETVAL, IPC_NOWAIT = 0, 0, 16, 12, 0o4000


@pytest.fixture
def jail(tmp_path, busybox_root, cbin):
    """A busybox --rootfs with this file's C programs in /bin."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    for name in ("hostobj_sysv", "hostobj_attrs", "hostobj_ioctl"):
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
    msgrcv and msgsnd reaches none of the host's objects, their own ids
    included: the sandbox's IPC namespace is its own, where no id names an
    object yet (EINVAL); tests/test_sysv_ipc.py has the rest."""
    ids, unchanged = host_ipc
    r = run_sentry(["/bin/hostobj_sysv", "64"] + [str(i) for i in ids], jail)
    out = r.stdout.decode()
    assert "TOKEN" not in out and "value" not in out, out
    for name in ("shmat", "shmat rw", "shmctl", "semctl", "semop", "msgctl", "msgrcv", "msgsnd"):
        assert f"{name}: reached 0, EINVAL" in out, out + r.stderr.decode()
    assert "shmget: ok" in out
    assert unchanged()


# ---- attributes of host files the guest was handed -----------------------------------

def _snapshot(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns,
            sorted((n, os.getxattr(path, n)) for n in os.listxattr(path)))


@pytest.fixture
def public(cbin):
    """A directory every user may search, holding a host file (user.keep set)
    and a busybox rootfs with the test programs, for sentry run as root or
    as nobody."""
    top = tempfile.mkdtemp(prefix="sentry-test-", dir="/var/tmp")
    os.chmod(top, 0o755)
    try:
        host = os.path.join(top, "host.txt")
        with open(host, "w") as f:
            f.write("host data\n")
        os.chmod(host, 0o644)
        os.setxattr(host, "user.keep", b"1")
        root = os.path.join(top, "root")
        subprocess.run(["cp", "-a", os.path.dirname(cbin("hostobj_attrs")), top + "/bin"], check=True)
        for p in (top + "/bin",) + tuple(os.path.join(top, "bin", n) for n in os.listdir(top + "/bin")):
            os.chmod(p, 0o755)
        yield top, host, root
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _rootfs(busybox_root, root, top):
    copy_root(busybox_root, root)
    shutil.copy2(top + "/bin/hostobj_attrs", root + "/bin/hostobj_attrs")
    return ["--rootfs", root], "/bin/hostobj_attrs"


def _no_change(transcript):
    return [line for line in transcript.splitlines() if line.endswith("= 0")]


def _sentry(who, as_nobody):
    """(command prefix, keyword arguments) to run sentry as `who`."""
    if who == "root":
        return SENTRY, {}
    return as_nobody.command, {"env": as_nobody.env, "cwd": "/"}


def _attrs_run(cmd, kw, args, prog, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, fd=0):
    r = subprocess.run(cmd + args + ["--", prog, str(fd)], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                       timeout=120, **kw)
    out = r.stderr.decode()
    assert "fchmod(fd, 0777)" in out, out
    assert not _no_change(out), out
    return out.split("fchmod(fd, 0777) = -1 ")[1].split()[0], out


@pytest.mark.parametrize("who", ["root", "nobody"])
@pytest.mark.parametrize("stream", ["stdin", "stdout"])
def test_handed_host_files_keep_their_attributes(public, busybox_root, as_nobody, who, stream):
    """A host file outside the --rootfs given as stdin (`< file`) or stdout
    (`>> file`): fchmod, fchown, fchownat and fchmodat2 with AT_EMPTY_PATH,
    fsetxattr, fremovexattr, futimens, futimesat and FS_IOC_SETFLAGS on it are
    refused with EPERM -- the Sentry never does them with its own privileges,
    and the guest may not either -- and the file is as it was.  As nobody,
    the file is nobody's own (the Sentry could change it)."""
    top, host, root = public
    if who == "nobody":
        os.chown(host, 65534, 65534)
    args, prog = _rootfs(busybox_root, root, top)
    before = _snapshot(host)
    cmd, kw = _sentry(who, as_nobody)
    with open(host, "rb" if stream == "stdin" else "ab") as f:
        io = {"stdin": f} if stream == "stdin" else {"stdout": f, "fd": 1}
        first, out = _attrs_run(cmd, kw, args, prog, **io)
    assert _snapshot(host) == before, out
    assert first == "EPERM", out


@pytest.mark.parametrize("who", ["root", "nobody"])
def test_handed_host_objects_on_the_default_root(public, as_nobody, who):
    """On the default root, a host file handed over is a file of the
    read-only lower layer (EROFS), and a host pipe is outside every mount
    (EPERM): neither changes."""
    top, host, _ = public
    if who == "nobody":
        os.chown(host, 65534, 65534)
    cmd, kw = _sentry(who, as_nobody)
    before = _snapshot(host)
    with open(host, "rb") as f:
        first, out = _attrs_run(cmd, kw, [], top + "/bin/hostobj_attrs", stdin=f)
    assert first == "EROFS" and _snapshot(host) == before, out
    r, w = os.pipe()
    if who == "nobody":
        os.fchown(r, 65534, 65534)
    pipe_before = os.fstat(r)
    try:
        first, out = _attrs_run(cmd, kw, [], top + "/bin/hostobj_attrs", stdin=r)
        after = os.fstat(r)
    finally:
        os.close(r)
        os.close(w)
    assert first == "EPERM", out
    assert (after.st_mode, after.st_uid, after.st_gid) == \
        (pipe_before.st_mode, pipe_before.st_uid, pipe_before.st_gid), out


def test_inherited_host_terminal_keeps_its_attributes(public, busybox_root):
    """A pty of the host's devpts as stdin (the terminal sentry was run
    from): its mode and owner stay the host's."""
    top, _, root = public
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        before = os.stat(name)
        args, prog = _rootfs(busybox_root, root, top)
        first, out = _attrs_run(SENTRY, {}, args, prog, stdin=slave)
        after = os.stat(name)
    finally:
        os.close(slave)
        os.close(master)
    assert first == "EPERM", out
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid), out


def test_fd_attribute_calls_racing_an_fd_swap(public, busybox_root):
    """One thread swaps a host file (stdin) and a sandbox file at one fd
    number while another changes attributes through that number: the
    sandbox file changes, the host file never does."""
    top, host, root = public
    args, prog = _rootfs(busybox_root, root, top)
    with open(root + "/tmp/own", "w") as f:
        f.write("own\n")
    before = _snapshot(host)
    with open(host, "rb") as f:
        r = subprocess.run(SENTRY + args + ["--", prog, "race", "0", "/tmp/own"], stdin=f,
                           capture_output=True, timeout=120)
    out = r.stderr.decode()
    assert "race: ok some, refused some" in out, out
    assert _snapshot(host) == before, out
    assert stat.S_IMODE(os.stat(root + "/tmp/own").st_mode) == 0o777


# ---- ioctl: an allow list ------------------------------------------------------------

def _outside(cbin, outside_tmp, name):
    """A test program where the default root shows it (its /tmp is private)."""
    path = os.path.join(outside_tmp, name)
    if not os.path.exists(path):
        shutil.copy2(cbin(name), path)
    return path


FS_IOC_GETVERSION = 0x80087601


def _generation(path):
    import fcntl
    with open(path, "rb") as f:
        return fcntl.ioctl(f.fileno(), FS_IOC_GETVERSION, bytes(8))


def test_ioctl_is_an_allow_list(outside_tmp, cbin):
    """File queries, FIONREAD, FIOCLEX, terminal and pty requests work as on
    Linux; an unknown request is ENOTTY (on a bad or hidden fd EBADF first).
    FS_IOC_SETVERSION on an O_RDONLY fd of a host file (the default root's
    lower layer) changed the host inode's generation: it is not offered
    (ENOTTY, high bits or not), nor are FITHAW or TIOCSIG; FS_IOC_SETFLAGS
    is the Sentry's, refused on the lower layer (EROFS).  Each refused
    request is logged once."""
    prog = _outside(cbin, outside_tmp, "hostobj_ioctl")
    native = run_native([prog, "/etc/passwd"])
    boxed = run_sentry([prog, "/etc/passwd"])
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr.decode()
    assert "ioctl(fd, 0x1234ABCD, 0) = -1 ENOTTY" in boxed.stdout.decode()
    host = os.path.join(outside_tmp, "generation.txt")
    with open(host, "w") as f:
        f.write("host\n")
    before = _generation(host)
    r = run_sentry([prog, host, "setters"])
    out = r.stdout.decode()
    assert _generation(host) == before, out
    for line in ("ioctl(fd, FS_IOC_SETVERSION, &v) = -1 ENOTTY",
                 "syscall(SYS_ioctl, fd, 0xFFFFFFFF00000000UL | FS_IOC_SETVERSION, &v) = -1 ENOTTY",
                 "ioctl(fd, FS_IOC32_SETVERSION, &v) = -1 ENOTTY", "ioctl(fd, FS_IOC_SETFLAGS, &i) = -1 EROFS",
                 "ioctl(fd, _IO('X', 119), 0) = -1 ENOTTY", "ioctl(m, TIOCSIG, SIGINT) = -1 ENOTTY"):
        assert line in out, out
    log = r.stderr.decode()
    assert log.count("0x40087602") == 1 and log.count("0x1234abcd") == 1, log


# ---- pidfds: a host process's is never signalled ----------------------------------------

@pytest.fixture
def pidfd_service(outside_tmp):
    """A host process, and a host service on a unix socket that sends every
    client a pidfd of it (as a service might, over SCM_RIGHTS)."""
    import socket
    import threading
    victim = subprocess.Popen(["sleep", "120"])
    d = tempfile.mkdtemp(dir=outside_tmp)
    os.chmod(d, 0o755)
    path = os.path.join(d, "pidfd.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(8)
    srv.settimeout(0.2)
    stop = []

    def serve():
        pidfd = os.pidfd_open(victim.pid)
        while not stop:
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                socket.send_fds(c, [b"x"], [pidfd])
        os.close(pidfd)
    t = threading.Thread(target=serve)
    t.start()
    try:
        yield victim, d
    finally:
        stop.append(1)
        t.join()
        srv.close()
        victim.kill()
        victim.wait()


def test_a_host_processs_pidfd_signals_nothing(pidfd_service, outside_tmp, cbin):
    """A pidfd of a host process, received from a host service through a
    bind mount, cannot signal it (ESRCH), whatever the flags or siginfo,
    while the guest's own pidfds work; SO_PASSPIDFD, which would hand the
    guest its peers' pidfds (SCM_PIDFD), is refused (ENOPROTOOPT), high bits
    or not."""
    victim, d = pidfd_service
    prog = _outside(cbin, outside_tmp, "hostobj_pidfd")
    r = run_sentry([prog, "/x/pidfd.sock"], extra=["--mount", f"type=bind,src={d},dst=/x,sockets"])
    out = r.stdout.decode()
    assert victim.poll() is None, out
    assert out.splitlines() == [
        "setsockopt(s, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof one) = -1 ENOPROTOOPT",
        "syscall(SYS_setsockopt, s, 0x100000000UL | SOL_SOCKET, 0x700000000UL | SO_PASSPIDFD, &one, sizeof one) = -1 ENOPROTOOPT",
        "pidfd_send_signal(host, 0, NULL, 0) = -1 ESRCH",
        "pidfd_send_signal(host, SIGTERM, NULL, 0) = -1 ESRCH",
        "pidfd_send_signal(host, SIGTERM, &info, 0) = -1 ESRCH",
        "pidfd_send_signal(host, SIGTERM, NULL, PIDFD_SIGNAL_PROCESS_GROUP) = -1 ESRCH",
        "pidfd_send_signal(host, SIGTERM, NULL, 3) = -1 EINVAL",
        "pidfd_send_signal(0, SIGTERM, NULL, 0) = -1 EBADF",
        "pidfd_send_signal(own, 0, NULL, 0) = 0",
        "pidfd_send_signal(own, SIGUSR1, &info, 0) = -1 EINVAL",
        "pidfd_send_signal(own, SIGUSR1, &usr1, 0) = 0",
        "pidfd_send_signal(own, SIGTERM, NULL, PIDFD_SIGNAL_PROCESS_GROUP) = 0",
        "pidfd_send_signal(own, SIGKILL, NULL, 0) = 0",
        "child: killed by KILL"], out + r.stderr.decode()


def test_pidfd_signals_racing_an_fd_swap(pidfd_service, outside_tmp, cbin):
    """A thread swaps the host process's pidfd and a child's at one fd
    number while SIGTERM is sent through that number: the child gets them,
    the host process never does."""
    victim, d = pidfd_service
    prog = _outside(cbin, outside_tmp, "hostobj_pidfd")
    r = run_sentry([prog, "race", "/x/pidfd.sock"], extra=["--mount", f"type=bind,src={d},dst=/x,sockets"])
    assert victim.poll() is None, r.stdout.decode() + r.stderr.decode()
    assert "race: ok some, refused some" in r.stdout.decode(), r.stdout.decode() + r.stderr.decode()


# ---- locks: a guest's never reach a host inode ----------------------------------------

F_OFD_SETLK, F_WRLCK = 37, 1


def _host_can_lock(path):
    """Whether a host process can take each kind of lock on `path` at once:
    flock -n (flock(1)), a POSIX write lock, an OFD write lock."""
    import fcntl
    import struct
    ok = [subprocess.run(["flock", "-n", path, "true"]).returncode == 0]
    for take in (lambda f: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB),
                 lambda f: fcntl.fcntl(f, F_OFD_SETLK, struct.pack("hhqqi4x", F_WRLCK, 0, 0, 0, 0))):
        with open(path, "r+b") as f:         # closed: the lock goes with it
            try:
                take(f)
                ok.append(True)
            except OSError:
                ok.append(False)
    return ok


def _locks_run(cmd, stdin=subprocess.DEVNULL, probe=None):
    """Run tests/c/hostobj_locks; at its "held" line, probe(); returns
    (transcript, the probe's answer, stderr)."""
    p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines, probed = [], None
    for line in p.stdout:
        lines.append(line.decode())
        if line == b"held\n" and probe is not None:
            probed = probe()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    return "".join(lines), probed, err


def test_guest_locks_on_host_files_stay_in_the_sandbox(outside_tmp, cbin):
    """On the default root a guest's flock, POSIX and OFD locks on a file of
    the read-only lower layer (the host's own inode) are the sandbox's: the
    host can still lock the file while the guest holds them, and guest
    processes exclude, wait for and release each other as on Linux.  On a
    file of its own (/tmp) they are the kernel's, with the same transcript."""
    prog = _outside(cbin, outside_tmp, "hostobj_locks")
    host = os.path.join(outside_tmp, "locked.txt")
    with open(host, "w") as f:
        f.write("host\n")
    native, _, _ = _locks_run([prog, "path", host])
    assert "held\nflock(fd, LOCK_EX | LOCK_NB) = -1 EAGAIN" in native     # a real transcript
    boxed, probed, err = _locks_run(SENTRY + ["--", prog, "path", host], probe=lambda: _host_can_lock(host))
    assert probed == [True, True, True], boxed + err
    assert boxed == native, err
    own, _, err = _locks_run(SENTRY + ["--", "/bin/sh", "-c", f"echo x > /tmp/own; exec {prog} path /tmp/own"])
    assert own == native, err
    # the same with a second thread (its fd numbers may change under it):
    # record locks through the Sentry's hidden slots, released as natively
    native, _, _ = _locks_run([prog, "threads", host])
    assert native.endswith("getlk [0,+0): unlocked\nclosing\n")
    threads, _, err = _locks_run(SENTRY + ["--", "/bin/sh", "-c", f"echo x > /tmp/t; exec {prog} threads /tmp/t"])
    assert threads == native, err


def test_guest_locks_on_host_files_as_nobody(public, as_nobody, cbin):
    """The same, sentry run by an unprivileged user (the guest in a user
    namespace of its own): the host's file stays lockable."""
    top, host, _ = public
    prog = os.path.join(top, "bin", "hostobj_locks")
    shutil.copy2(cbin("hostobj_locks"), prog)
    os.chmod(prog, 0o755)
    native, _, _ = _locks_run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", prog, "path", host])
    assert "held\nflock(fd, LOCK_EX | LOCK_NB) = -1 EAGAIN" in native
    p = subprocess.Popen(as_nobody.command + ["--", prog, "path", host], env=as_nobody.env, cwd="/",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines, probed = [], None
    for line in p.stdout:
        lines.append(line.decode())
        if line == b"held\n":
            probed = _host_can_lock(host)
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert probed == [True, True, True], "".join(lines) + err
    assert "".join(lines) == native, err


def test_record_locks_on_a_handed_host_file(public, busybox_root, cbin):
    """A host file outside the --rootfs handed over read-write (`<>`): its
    POSIX write locks (split ranges, F_GETLK, a waiting F_SETLKW) and flock
    behave as on Linux between guest processes, and the host can still lock
    it meanwhile.  A file of the rootfs handed over the same way gets the
    kernel's locks (the host sees them)."""
    top, host, root = public
    copy_root(busybox_root, root)
    shutil.copy2(cbin("hostobj_locks"), root + "/bin/hostobj_locks")
    with open(host, "r+b") as f:
        native, _, _ = _locks_run([cbin("hostobj_locks"), "stdin"], stdin=f)
    assert "held\nsetlk(fd, F_SETLK, F_RDLCK, 5, 1) = -1 EAGAIN" in native
    with open(host, "r+b") as f:
        boxed, probed, err = _locks_run(SENTRY + ["--rootfs", root, "--", "/bin/hostobj_locks", "stdin"],
                                        stdin=f, probe=lambda: _host_can_lock(host))
    assert probed == [True, True, True], boxed + err
    assert boxed == native, err
    with open(root + "/tmp/own", "w") as f:
        f.write("own\n")
    with open(root + "/tmp/own", "r+b") as f:
        own, probed, err = _locks_run(SENTRY + ["--rootfs", root, "--", "/bin/hostobj_locks", "stdin"],
                                      stdin=f, probe=lambda: _host_can_lock(root + "/tmp/own"))
    assert own == native, err
    assert probed == [False, False, False]        # the sandbox's own file: real locks


def test_lock_calls_racing_an_fd_swap(outside_tmp, cbin):
    """Threads swap a host file (the lower layer, read-only) and a file of
    the sandbox at one fd number while others flock, F_SETLK and F_OFD_SETLK
    through that number for seconds: meanwhile the host locks the host file
    every time it tries."""
    import threading
    prog = _outside(cbin, outside_tmp, "hostobj_locks")
    host = os.path.join(outside_tmp, "raced.txt")
    with open(host, "w") as f:
        f.write("host\n")
    failures, tries, stop = [], [0], []

    def probe():
        while not stop:
            tries[0] += 1
            got = _host_can_lock(host)
            if not all(got):
                failures.append(got)
    t = threading.Thread(target=probe)
    t.start()
    try:
        r = run_sentry(["/bin/sh", "-c", f"echo x > /tmp/own; exec {prog} race {host} /tmp/own"])
    finally:
        stop.append(1)
        t.join()
    assert "race: locked some" in r.stdout.decode(), r.stdout.decode() + r.stderr.decode()
    assert tries[0] > 10 and not failures, (tries, failures[:3])


def test_record_and_ofd_locks_from_many_threads(cbin, outside_tmp):
    """Threads of one process taking POSIX read locks (through the hidden fd
    slots) and OFD locks on fds of their own, all at once, as LTP fcntl36:
    no call fails and no read is torn, as natively (a slot another thread
    gave back its filler sent EBADF)."""
    prog = os.path.join(outside_tmp, "lock_threads")
    shutil.copy2(cbin("lock_threads"), prog)
    data = os.path.join(outside_tmp, "data")
    assert subprocess.run([prog, data], capture_output=True).stdout == b"failed 0 torn 0\n"
    for _ in range(3):
        r = run_sentry([prog, data])
        assert r.stdout == b"failed 0 torn 0\n", r.stderr
