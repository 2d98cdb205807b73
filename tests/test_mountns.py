"""The private mount namespace (sentry/vfs/mountns.py) without root: the
helper takes a user namespace of its own, and its devpts, sized tmpfs and unix
binds work as they do for root.  Run as `nobody` with the system's python3."""
import os
import shutil
import sys
import subprocess
import tempfile


from conftest import skip_or_fail

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"

SCRIPT = r"""
import errno, os, socket, struct, fcntl, sys
from sentry.vfs.mountns import MountNamespace
d = sys.argv[1]
for sub in ("pts", "tmpfs", "real", "dev"):
    os.mkdir(os.path.join(d, sub))
ns = MountNamespace(d)
print("uid", os.getuid() != 0)
pts = ns.mount("devpts", d + "/pts", "newinstance,ptmxmode=0666,mode=0620")
m = os.open("ptmx", os.O_RDWR | os.O_NOCTTY, dir_fd=pts)
n = struct.unpack("i", fcntl.ioctl(m, 0x80045430, b"\0" * 4))[0]
print("pty", n, os.readlink(f"/proc/self/fd/{m}") == d + "/pts/ptmx")
tmp = ns.mount("tmpfs", d + "/tmpfs", "size=64k,mode=1777")
f = os.open("f", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=tmp)
os.write(f, b"x" * 65536)
try:
    os.write(f, b"x")
except OSError as e:
    print("full", errno.errorcode[e.errno])
s = socket.socket(socket.AF_UNIX)
parent = os.open(d + "/real", os.O_PATH)
ns.bind_unix(s.fileno(), parent, b"/some/where/s.sock", 0o022)
print("bound", s.getsockname(), os.listdir(d + "/real"))
dev = ns.make_dev(d + "/dev", ["null", "zero"], {"fd": "/proc/self/fd"}, ["pts"])
print("dev", sorted(os.listdir(os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dev))))
null = os.open("null", os.O_WRONLY, dir_fd=dev)
print("null", os.write(null, b"x"), os.stat(null).st_rdev == os.stat("/dev/null").st_rdev)
try:
    os.open("new", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=dev)
except OSError as e:
    print("create", errno.errorcode[e.errno])
"""


def test_mount_namespace_without_root():
    if os.geteuid() != 0:
        skip_or_fail("unprivileged", "needs root to run the check as another user")
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PYTHON, "-c",
                            "import sentry._native"], env={"PYTHONPATH": TREE}, capture_output=True)
    if probe.returncode != 0:
        skip_or_fail("unprivileged", f"{PYTHON} cannot load sentry's native module as nobody: "
                     f"{probe.stderr.decode()[-200:]}")
    d = tempfile.mkdtemp(dir="/var/tmp", prefix="sentry-mountns-")
    os.chown(d, 65534, 65534)
    try:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PYTHON, "-c",
                            SCRIPT, d], env={"PYTHONPATH": TREE}, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert r.stdout.decode().splitlines() == [
        "uid True", "pty 0 True", "full ENOSPC", "bound /some/where/s.sock ['s.sock']",
        "dev ['fd', 'null', 'pts', 'zero']", "null 1 True", "create EROFS"], r.stderr.decode()
    with open("/proc/self/mountinfo") as f:
        assert "sentry-mountns-" not in f.read()


# sentry where no mount namespace can be had (unprivileged user namespaces off):
# only --network=host runs there (tests/test_network.py)
WITHOUT = (
    "import sys\n"
    "from sentry.vfs import mountns\n"
    "def refuse(self, workdir, network=False, sysctl=None, meanwhile=None): raise mountns.Unavailable('Operation not permitted (unshare)')\n"
    "mountns.MountNamespace.__init__ = refuse\n"
    "from sentry.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")


def _run_without(*args):
    return subprocess.run([sys.executable, "-c", WITHOUT, "run", "--network=host", *args], capture_output=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": TREE})


def test_without_a_mount_namespace_size_is_refused_in_one_line():
    r = _run_without("--mount", "type=tmpfs,dst=/x,size=1m", "--", "/bin/echo", "started")
    assert r.returncode == 125 and r.stdout == b""
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "size limit needs a private mount namespace" in err


def test_without_a_mount_namespace_the_rest_works():
    r = _run_without("--mount", "type=tmpfs,dst=/x", "--", "python3", "-c",
                     "import os, socket; print(os.path.exists('/dev/pts'), os.path.exists('/dev/ptmx'));"
                     "s = socket.socket(socket.AF_UNIX); s.bind('/x/s.sock'); print(s.getsockname());"
                     "print(open('/dev/zero', 'rb').read(2), os.path.exists('/dev/sda'), os.path.exists('/dev/mem'))")
    assert r.stdout == b"False False\ns.sock\nb'\\x00\\x00' False False\n", r.stderr


def _processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


def test_helper_ends_with_a_killed_sentry():
    import signal
    import time
    from conftest import SENTRY
    marker = f"sentry-helper-test-{os.getpid()}"
    p = subprocess.Popen(SENTRY + ["--hostname", marker, "--", "sleep", "60"])
    try:
        deadline = time.time() + 20
        while len(_processes_with(marker.encode())) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(_processes_with(marker.encode())) >= 2       # the Sentry and its helper
        p.send_signal(signal.SIGKILL)
        p.wait()
        deadline = time.time() + 10
        while _processes_with(marker.encode()) and time.time() < deadline:
            time.sleep(0.05)
        assert _processes_with(marker.encode()) == []
    finally:
        p.kill()
        p.wait()
