"""A call that names a file it cannot be given by path (a unix connect or
datagram send, chdir) names it through a hidden fd the Sentry checked
(syscalls/pin.py).  Racing threads that dup2 host objects over the guest's
fd numbers must never get such a call to reach them; the guest's own calls
keep working meanwhile.  And every call given one of the Sentry's hidden fd
numbers fails as for a closed fd."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from conftest import run_native, run_sentry


class HostServer:
    """A stream listener and a datagram socket on the host, counting what
    reaches them."""

    def __init__(self, d):
        self.stream_path, self.dgram_path = os.path.join(d, "host.sock"), os.path.join(d, "host.dgram")
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(self.stream_path)
        self.listener.listen(512)
        self.dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dgram.bind(self.dgram_path)
        for s in (self.listener, self.dgram):
            s.settimeout(0.1)
        os.chmod(self.stream_path, 0o777)
        os.chmod(self.dgram_path, 0o777)
        self.accepted = self.received = 0
        self.stop = False
        self.threads = [threading.Thread(target=self._accept), threading.Thread(target=self._receive)]
        for t in self.threads:
            t.start()

    def _accept(self):
        while not self.stop:
            try:
                self.listener.accept()[0].close()
                self.accepted += 1
            except OSError:
                pass

    def _receive(self):
        while not self.stop:
            try:
                self.dgram.recv(16)
                self.received += 1
            except OSError:
                pass

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join()
        self.listener.close()
        self.dgram.close()


def test_racing_dup2_never_redirects_a_pinned_name(outside_tmp, cbin):
    """The confirmed escape: connect to a unix path became a connect to
    /proc/thread-self/fd/N of an O_PATH fd N in the guest's own table; a
    thread dup2'd an O_PATH fd of a host socket onto N, and a host listener
    accepted about two thirds of 300 connects.  Now the file is held by the
    fd holder, whose table no guest call can change: nothing reaches the
    host, and every one of the guest's own calls works while threads race."""
    d = tempfile.mkdtemp(dir=outside_tmp)
    prog = os.path.join(d, "pin_race")
    shutil.copy(cbin("pin_race"), prog)
    host = HostServer(d)
    try:
        r = run_sentry([prog, host.stream_path, host.dgram_path, d, "600"], timeout=300)
    finally:
        host.close()
    out = r.stdout.decode()
    report = out + r.stderr.decode()
    assert r.returncode == 0, report
    counts = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}
    assert (host.accepted, host.received) == (0, 0), report
    assert counts == {"connected": 600, "sent": 600, "chdir": 600}, report


HOLDER_PROBE = r"""
import errno, os, signal, socket, sys, time
want = sys.argv[1]
while not os.path.exists(want):
    time.sleep(0.05)
pid = int(open(want).read())
reached = []
for n in range(0, 64):
    name = f"/proc/{pid}/fd/{n}"
    for what, act in (("open", lambda: os.close(os.open(name, os.O_PATH))),
                      ("readlink", lambda: os.readlink(name)),
                      ("chdir", lambda: os.chdir(name)),
                      ("connect", lambda: socket.socket(socket.AF_UNIX).connect(name))):
        try:
            act()
            reached.append(f"{what} {name}")
        except OSError:
            pass
for what, act in (("kill", lambda: os.kill(pid, 0)), ("pidfd", lambda: os.pidfd_open(pid)),
                  ("stat", lambda: os.stat(f"/proc/{pid}"))):
    try:
        act()
        reached.append(what)
    except OSError:
        pass
print("REACHED", reached)
"""


def test_the_fd_holder_is_out_of_the_guests_reach(outside_tmp):
    """The holder's fds are magic links any process of its ids may follow;
    a guest that knows the holder's host pid still reaches none of them (it
    has no name for the holder: its pids and /proc are the sandbox's)."""
    d = tempfile.mkdtemp(dir=outside_tmp)
    pidfile = os.path.join(d, "holder")
    p = subprocess.Popen([sys.executable, "-m", "sentry", "--debug", "run", "--",
                          "python3", "-c", HOLDER_PROBE, pidfile],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in p.stderr:
            m = re.search(rb"the fd holder is host (\d+)", line)
            if m:
                with open(pidfile + ".tmp", "w") as f:
                    f.write(m.group(1).decode())
                os.rename(pidfile + ".tmp", pidfile)
                break
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip() == "REACHED []"


def test_the_sentrys_fd_numbers_look_closed(outside_tmp, cbin):
    """statx(1000, "", AT_EMPTY_PATH), readlinkat(1000, ""), and every other
    call given one of the Sentry's hidden fds, with the empty path or none:
    EBADF as natively, where those numbers are closed."""
    prog = os.path.join(tempfile.mkdtemp(dir=outside_tmp), "hidden_fds")
    shutil.copy(cbin("hidden_fds"), prog)
    native, boxed = run_native([prog]), run_sentry([prog])
    assert boxed.returncode == native.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native.stdout.decode()
    assert "Bad file descriptor" in native.stdout.decode()
