"""A call that names a file it cannot be given by path (a unix connect or
datagram send, chdir) names it through a hidden fd the Sentry checked
(syscalls/pin.py).  A racing thread that dup2s a host object over the guest's
fd numbers must never get the call to reach it."""
import os
import socket
import threading

from conftest import run_sentry

RACE = """
import fcntl, os, socket, sys, threading
host_sock, host_dir = sys.argv[1], sys.argv[2]
stop = False
def high(fd):
    # the guest's own fds live far above the numbers the racing threads hit
    h = fcntl.fcntl(fd, fcntl.F_DUPFD, 600); os.close(fd); return h
def sock(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind); return socket.socket(fileno=high(s.detach()))
hostfds = [high(os.open(host_sock, os.O_PATH)), high(os.open(host_dir, os.O_PATH | os.O_DIRECTORY))]
def swap():
    # the fd numbers the Sentry's injected openat2 would return: a host
    # object replaces whatever is there, then the number is free again
    while not stop:
        for n in range(3, 7):
            for h in hostfds:
                try: os.dup2(h, n); os.close(n)
                except OSError: pass
os.mkdir("/tmp/own")
own = sock(); own.bind("/tmp/own/s"); own.listen(4096); own.settimeout(5)
dg = sock(socket.SOCK_DGRAM); dg.bind("/tmp/own/d"); dg.setblocking(False)
ts = [threading.Thread(target=swap) for _ in range(2)]
[t.start() for t in ts]
results = {}
def note(what):
    results[what] = results.get(what, 0) + 1
for i in range(ROUNDS):
    c = sock()
    try:
        c.connect("/tmp/own/s"); note("connected")
        a, _ = own.accept(); os.close(high(a.detach()))
    except socket.timeout:
        note("CONNECTED ELSEWHERE")
    except OSError as e:
        note(os.strerror(e.errno))
    c.close()
    d = sock(socket.SOCK_DGRAM)
    try:
        d.sendto(b"x", "/tmp/own/d") if i % 2 else d.sendmsg([b"x"], [], 0, "/tmp/own/d"); note("sent")
        dg.recv(10)
    except OSError as e:
        note(os.strerror(e.errno))
    d.close()
    try:
        os.chdir("/tmp/own"); note("chdir")
        here = os.stat(".")
        if (here.st_dev, here.st_ino) != (os.stat("/tmp/own").st_dev, os.stat("/tmp/own").st_ino):
            note("WRONG CWD")
        os.chdir("/")
    except OSError as e:
        note("chdir " + os.strerror(e.errno))
stop = True
[t.join() for t in ts]
for k in sorted(results):
    print(k, results[k])
"""


def test_racing_dup2_never_redirects_a_pinned_name(outside_tmp):
    """The confirmed escape: connect to a unix path named
    /proc/thread-self/fd/N of an O_PATH fd N in the guest's own table; a
    thread dup2'd an O_PATH fd of a host socket onto N, and a host listener
    accepted about two thirds of 300 connects.  Now N is moved to a hidden
    slot and checked first: nothing reaches the host, while the guest's own
    sockets and directories work."""
    host_path = os.path.join(outside_tmp, "pin-host.sock")
    host_dgram = os.path.join(outside_tmp, "pin-host.dgram")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(host_path)
    listener.listen(512)
    listener.settimeout(0.2)
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(host_dgram)
    dgram.setblocking(False)
    accepted = []
    stop = False

    def accept_all():
        while not stop:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept_all)
    t.start()
    try:
        r = run_sentry(["python3", "-c", RACE.replace("ROUNDS", "300"), host_path, outside_tmp], timeout=300)
        out = r.stdout.decode()
        counts = dict(line.rsplit(" ", 1) for line in out.splitlines())
        assert int(counts.get("connected", 0)) > 250, out + r.stderr.decode()[-3000:]
        assert int(counts.get("sent", 0)) > 250, out
        assert int(counts.get("chdir", 0)) > 250, out
        assert "WRONG CWD" not in counts and "CONNECTED ELSEWHERE" not in counts, out
    finally:
        stop = True
        t.join()
        listener.close()
        os.unlink(host_path)
    assert accepted == []
    try:
        got = dgram.recv(10)
    except BlockingIOError:
        got = None
    dgram.close()
    os.unlink(host_dgram)
    assert got is None


def test_pin_slots_are_shared_fairly_by_many_threads(outside_tmp):
    """More threads connect at once than there are pin slots: each waits its
    turn, none fails."""
    code = """
import os, socket, threading
os.mkdir("/tmp/own")
own = socket.socket(socket.AF_UNIX); own.bind("/tmp/own/s"); own.listen(4096)
ok = []
def client():
    for _ in range(20):
        c = socket.socket(socket.AF_UNIX); c.connect("/tmp/own/s"); ok.append(1); c.close()
ts = [threading.Thread(target=client) for _ in range(12)]
[t.start() for t in ts]; [t.join() for t in ts]
print(len(ok))
"""
    r = run_sentry(["python3", "-c", code], timeout=120)
    assert r.stdout == b"240\n", r.stderr.decode()[-2000:]
