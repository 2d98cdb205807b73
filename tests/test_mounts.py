"""--mount: bind mounts of host directories and private tmpfs directories."""
import os
import subprocess

import pytest

from conftest import copy_root, run_sentry


@pytest.fixture
def root(tmp_path, busybox_root):
    r = str(tmp_path / "root")
    copy_root(busybox_root, r)
    return r


def test_bind_tmpfs_and_readonly(tmp_path, root):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("data\n")
    (tmp_path / "beside-src").write_text("HOSTSECRET\n")
    r = run_sentry(["/bin/sh", "-c",
                    "cat /data/f; echo new > /data/g; echo s > /scratch/s && cat /scratch/s; "
                    "echo x > /ro/h; cat /data/../beside-src /data/../../beside-src; ls /ro; "
                    "grep -c sentry /proc/mounts"], root,
                   extra=["--mount", f"type=bind,src={src},dst=/data",
                          "--mount", "type=tmpfs,dst=/scratch",
                          "--mount", f"type=bind,src={src},dst=/ro,ro"])
    out = r.stdout.decode().splitlines()
    assert out[:2] == ["data", "s"]
    assert out[2:4] == ["f", "g"]
    assert b"HOSTSECRET" not in r.stdout + r.stderr
    assert r.stderr.count(b"Read-only file system") == 1
    assert r.stderr.count(b"No such file") == 2
    assert (src / "g").read_text() == "new\n"           # the bind is the host directory
    assert int(out[4]) >= 7


def test_tmpfs_size_limit_holds(root):
    """size= is a real tmpfs's: writing past it is ENOSPC inside, df shows
    it, and the space comes back when the file goes."""
    r = run_sentry(["/bin/sh", "-c",
                    "dd if=/dev/zero of=/x/f bs=64k count=40; echo dd=$?; "
                    "ls -l /x/f | awk '{print $5}'; df -k /x | awk 'NR==2 {print $2}'; "
                    "rm /x/f; head -c 500000 /dev/zero > /x/g && echo refilled; cd /x && pwd"],
                   root, extra=["--mount", "type=tmpfs,dst=/x,size=1m"])
    assert r.stdout.decode().split() == ["dd=1", "1048576", "1024", "refilled", "/x"], r.stderr
    assert b"No space left on device" in r.stderr


def test_tmpfs_size_as_the_cwd():
    r = run_sentry(["/bin/sh", "-c", "pwd; touch a; realpath a; readlink /proc/self/cwd"],
                   extra=["--cwd", "/x", "--mount", "type=tmpfs,dst=/x,size=10%"])
    assert r.stdout == b"/x\n/x/a\n/x\n", r.stderr


def test_mount_over_a_default_mount(tmp_path):
    src = tmp_path / "mytmp"
    src.mkdir()
    r = run_sentry(["/bin/sh", "-c", "echo kept > /tmp/k"], extra=["--mount", f"type=bind,src={src},dst=/tmp"])
    assert r.returncode == 0 and (src / "k").read_text() == "kept\n"


SOCKET_PROBE = """
import os, socket
try:
    socket.socket(socket.AF_UNIX).connect("/x/stream.sock"); print("connect: connected")
except OSError as e:
    print("connect:", os.strerror(e.errno))
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"hi", "/x/dgram.sock"); print("sendto: sent")
except OSError as e:
    print("sendto:", os.strerror(e.errno))
"""


def test_unix_sockets_in_a_bind_mount_are_opt_in(outside_tmp):
    """A socket in a bind mount is a host service's, which would take the
    guest for sentry's host uid (SO_PEERCRED): a connect or a datagram to it
    is refused unless the mount says `sockets`."""
    import socket
    import tempfile
    d = tempfile.mkdtemp(dir=outside_tmp)
    stream, dgram = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        stream.bind(os.path.join(d, "stream.sock"))
        stream.listen(8)
        dgram.bind(os.path.join(d, "dgram.sock"))
        stream.setblocking(False)
        dgram.setblocking(False)
        off = run_sentry(["python3", "-c", SOCKET_PROBE], extra=["--mount", f"type=bind,src={d},dst=/x"])
        assert off.stdout.decode().splitlines() == ["connect: Connection refused", "sendto: Connection refused"], \
            off.stderr
        with pytest.raises(BlockingIOError):
            stream.accept()
        with pytest.raises(BlockingIOError):
            dgram.recv(10)
        on = run_sentry(["python3", "-c", SOCKET_PROBE], extra=["--mount", f"type=bind,src={d},dst=/x,sockets"])
        assert on.stdout.decode().splitlines() == ["connect: connected", "sendto: sent"], on.stderr
        assert dgram.recv(10) == b"hi"
        stream.accept()[0].close()
    finally:
        stream.close()
        dgram.close()


@pytest.mark.parametrize("spec, message", [
    ("type=bind,src=/nonexistent-dir,dst=/x", "no such file or directory"),
    ("type=bind,src=/dev/null,dst=/x", "only directories and regular files"),
    ("type=bind,src=/etc,dst=relative", "absolute path"),
    ("type=bind,src=/etc,dst=/", "absolute path"),
    ("type=nfs,dst=/x", "type must be one of"),
    ("type=bind,src=/etc,dst=/x,rw,bogus", "unknown option"),
    ("type=tmpfs,dst=/x,size=1q", "size must be a number"),
    ("type=tmpfs,dst=/x,size", "size must be a number"),
    ("type=bind,src=/etc,dst=/x,size=1m", "unknown option"),
    ("type=bind,dst=/x", "src is missing"),
    ("type=bind,src=/etc,dst=/x,sockets=yes", "sockets takes no value"),
    ("type=tmpfs,dst=/x,sockets", "unknown option"),
    ("dst=/x", "type must be one of"),
])
def test_bad_mounts_are_refused_before_anything_starts(spec, message):
    r = run_sentry(["/bin/sh", "-c", "echo started"], extra=["--mount", spec])
    assert r.returncode == 125 and r.stdout == b""
    assert message in r.stderr.decode() and r.stderr.decode().count("\n") == 1


FILE_BINDS = ("cat /etc/hosts; echo '5.6.7.8 bar' >> /etc/hosts; cat /etc/hosts; "
              "stat -c '%s %h %i %F %a' /etc/hosts /etc/ro; ls /etc; grep -c . /etc/hosts; "
              "rm /etc/hosts; mv /etc/hosts /etc/h2; echo x > /etc/tmpf; mv /etc/tmpf /etc/hosts; "
              "mv /etc/hosts /tmp/h; ln /etc/hosts /etc/hl; cat /etc/hosts/x; ls /etc/hosts/; "
              "cat /etc/ro; echo y > /etc/ro; touch /etc/ro; rm /etc/ro; chmod 600 /etc/hosts; "
              "stat -c %a /etc/hosts; cat /etc/hosts")


def test_bind_of_a_single_file_as_natively(tmp_path, busybox_root):
    """A bind of a single file (rw and ro), natively (a private mount
    namespace, mount --bind, chroot) and in sentry (--mount): the same
    output, errors (EBUSY for removing, renaming or replacing the mount
    point, ENOTDIR below it, EXDEV for a hard link out of it, EROFS) and
    the same host files after; the file is the host's own (its inode)."""
    outs = []
    for how in ("native", "sentry"):
        top = tmp_path / how
        top.mkdir()
        root = str(top / "root")
        copy_root(busybox_root, root)
        for name in ("hosts", "ro"):                # the mount points, as runc makes them
            open(os.path.join(root, "etc", name), "w").close()
        (top / "hosts").write_text("1.2.3.4 foo\n")
        (top / "ro").write_text("read only\n")
        os.chmod(top / "hosts", 0o644)
        if how == "native":
            r = subprocess.run(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 f"mount --bind {top}/hosts {root}/etc/hosts && mount --bind {top}/ro {root}/etc/ro && "
                 f"mount -o remount,bind,ro {root}/etc/ro && exec chroot {root} /bin/sh -c \"$0\"", FILE_BINDS],
                capture_output=True, timeout=60)
        else:
            r = run_sentry(["/bin/sh", "-c", FILE_BINDS], root,
                           extra=["--mount", f"type=bind,src={top}/hosts,dst=/etc/hosts",
                                  "--mount", f"type=bind,src={top}/ro,dst=/etc/ro,ro"])
        out = r.stdout.decode()
        for name in ("hosts", "ro"):
            out = out.replace(f" {os.stat(top / name).st_ino} ", f" INO-{name} ")
        outs.append((r.returncode, out, r.stderr.decode(),
                     (top / "hosts").read_text(), oct(os.stat(top / "hosts").st_mode)))
    assert outs[0] == outs[1]
    code, out, err, hosts, mode = outs[1]
    assert hosts == "1.2.3.4 foo\n5.6.7.8 bar\n" and mode == "0o100600" and "INO-hosts" in out and "INO-ro" in out, out
    assert err.count("Device or resource busy") == 5 and "Read-only file system" in err, err
