"""Unix sockets bound by path report the name the guest gave, exactly as on
Linux -- getsockname, getpeername, accept, recvfrom, recvmsg -- and never a
host path (differential: one program natively and in sentry, default root)."""
import os
import shutil
import subprocess

from conftest import run_sentry

PROGRAM = r"""
import os, socket, sys
d = sys.argv[1]
os.makedirs(d + "/sub")
os.symlink(d + "/sub", d + "/link")
os.chdir(d)

def show(what, value):
    print(what, repr(value))

def stream(name, client_name=None):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(name)
    srv.listen()
    show(name + " listener", srv.getsockname())
    cl = socket.socket(socket.AF_UNIX)
    if client_name:
        cl.bind(client_name)
        show(name + " client", cl.getsockname())
    cl.connect(name)
    show(name + " client's peer", cl.getpeername())
    conn, addr = srv.accept()
    show(name + " accept", addr)
    show(name + " accepted's name", conn.getsockname())
    show(name + " accepted's peer", conn.getpeername())
    for s in (srv, cl, conn):
        s.close()

stream("rel.sock")
stream(d + "/abs.sock", client_name="client.sock")
stream("./dot.sock")
stream("sub/in-sub.sock")
stream("../" + os.path.basename(d) + "/up.sock")
stream(d + "/link/via-link.sock")
stream(d + "//sub///slashes.sock")

rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
rx.bind(d + "/dgram.sock")
tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
tx.bind("sub/sender.sock")
tx.connect(d + "/dgram.sock")
tx.send(b"one")
tx.send(b"two")
show("recvfrom", rx.recvfrom(10))
msg = rx.recvmsg(10)
show("recvmsg", (msg[0], msg[3]))
show("sender's peer", tx.getpeername())

seq = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
seq.bind(d + "/sub/seq.sock")
show("seqpacket", seq.getsockname())
try:
    socket.socket(socket.AF_UNIX).bind("rel.sock")
except OSError as e:
    show("bind taken", e.errno)
show("files", sorted(os.listdir(d)) + sorted(os.listdir(d + "/sub")))
"""


def test_unix_socket_names_as_natively():
    # the same path natively (the host's /tmp) and in sentry (its private /tmp)
    d = f"/tmp/sentry-unix-names-{os.getpid()}"
    shutil.rmtree(d, ignore_errors=True)
    try:
        native = subprocess.run(["python3", "-c", PROGRAM, d], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(["python3", "-c", PROGRAM, d])
    assert boxed.stderr == b""
    assert boxed.stdout.decode() == native.stdout.decode()
    assert "'%s/abs.sock'" % d in boxed.stdout.decode()


def test_no_host_path_in_socket_names(tmp_path):
    """On a bind mount, a sized tmpfs (mounted in the private namespace) and
    /dev/shm: the names are the sandbox's, the files where they belong."""
    data = tmp_path / "data"
    data.mkdir()
    r = run_sentry(["python3", "-c", "import os, socket\n"
                    "for p in ('/data/s.sock', '/x/t.sock', '/dev/shm/u.sock'):\n"
                    "    s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen()\n"
                    "    c = socket.socket(socket.AF_UNIX); c.connect(p)\n"
                    "    print(s.getsockname(), c.getpeername(), s.accept()[0].getsockname())\n"
                    "print(os.listdir('/x'))"],
                   extra=["--mount", f"type=bind,src={data},dst=/data,sockets", "--mount", "type=tmpfs,dst=/x,size=1m"])
    assert r.stdout.decode().splitlines() == [
        "/data/s.sock /data/s.sock /data/s.sock", "/x/t.sock /x/t.sock /x/t.sock",
        "/dev/shm/u.sock /dev/shm/u.sock /dev/shm/u.sock", "['t.sock']"], r.stderr
    assert os.listdir(data) == ["s.sock"]


RACE = r"""
import os, socket, sys, threading, time
outside = sys.argv[1]                # a host directory: read-only in the sandbox
os.makedirs("/tmp/real")
os.symlink(outside, "/tmp/link")
stop = time.time() + 1.5
def swap():
    while time.time() < stop:
        os.rename("/tmp/link", "/tmp/d")          # /tmp/d: the symlink out
        os.rename("/tmp/d", "/tmp/link")
        os.rename("/tmp/real", "/tmp/d")          # /tmp/d: the real directory
        os.rename("/tmp/d", "/tmp/real")
threading.Thread(target=swap).start()
bound = refused = 0
i = 0
while time.time() < stop:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind("/tmp/d/s%d.sock" % i)
        bound += 1
    except OSError:
        refused += 1
    s.close()
    i += 1
print("bound", bound > 0, "refused", refused > 0)
"""


def test_bind_racing_a_symlink_swap_stays_inside(tmp_path):
    """The helper reopens the parent by path in its namespace: a directory
    swapped for a symlink meanwhile is refused, never followed out."""
    outside = tmp_path / "outside"
    outside.mkdir()
    r = run_sentry(["python3", "-c", RACE, str(outside)])
    assert r.stdout == b"bound True refused True\n", r.stderr
    assert os.listdir(outside) == []
