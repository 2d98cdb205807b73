"""Network namespaces a guest makes (sentry/kernel/netns.py; README, Network):
`unshare -n`, unshare(CLONE_NEWNET) and clone(CLONE_NEWNET) inside the
sandbox give a new, empty namespace as Linux does -- lo down, no route,
its own ports, abstract names, /proc/net, rtnetlink and /proc/<pid>/ns/net
-- compared with the same programs natively in `unshare -rn`."""
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import run_sentry, skip_or_fail
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))


def _script(name):
    with open(os.path.join(HERE, "py", name)) as f:
        return f.read()


def _native(args):
    r = subprocess.run(["unshare", "-rn", *args], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


@pytest.mark.parametrize("flags", ["-n", "-rn"])
def test_a_new_network_namespace_as_natively(flags):
    """`unshare -n` (root of the sandbox) and `unshare -rn` (a user namespace
    of the guest's own, which then owns the network namespace) inside, against
    `unshare -rn` natively: `ip link/addr/route`, /proc/net, if_nameindex,
    connects with lo down (ENETUNREACH, EADDRNOTAVAIL), `ip link set lo up`,
    the outside unreachable (no route: ENETUNREACH, never the sandbox's eth0
    or its outbound policy), a server on port 80 with IPv4 and IPv6 clients,
    `ss`, `netstat`, UDP, lo down again: the same lines."""
    script = _script("netns_view.py")
    native = _native(["python3", "-c", script])
    boxed = run_sentry(["unshare", flags, "python3", "-c", script], timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native
    assert "down ('127.0.0.1', 9) tcp ENETUNREACH" in native and "accepted ::1" in native


def test_a_new_network_namespace_unprivileged(as_nobody):  # noqa: F811
    """The same, sentry run by an unprivileged user (the namespace helper in
    a user namespace of its own makes the new one)."""
    script = _script("netns_view.py")
    native = _native(["python3", "-c", script])
    boxed = as_nobody(["--", "unshare", "-rn", "python3", "-c", script])
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native


@pytest.mark.parametrize("mode", ["sandbox", "none"])
def test_namespaces_are_isolated_from_each_other(mode):
    """A parent's server on 127.0.0.1 and its abstract name are out of reach of
    a child in a new network namespace, which binds the same port for its
    own server, unreached by the parent; /proc/<pid>/ns/net tells them apart;
    a child of clone(CLONE_NEWNET) starts with lo down.  As natively, in a
    namespace of the test's own."""
    script = _script("netns_isolation.py")
    native = _native(["python3", "-c", script])
    boxed = run_sentry(["python3", "-c", script], extra=[f"--network={mode}"], timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native
    assert "child to the parent's port ECONNREFUSED" in native


HOST_SERVER = """
import socket, sys
s = socket.socket(); s.settimeout(5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1]))); print("reached")
except OSError as e:
    print("errno", e.errno)
"""


def test_host_loopback_unreachable_from_a_nested_namespace():
    """A host server on 127.0.0.1 stays out of reach from a namespace a guest
    made, lo up or not (sandbox mode: its outbound machinery is not that
    namespace's either)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0)
    try:
        port = str(srv.getsockname()[1])
        r = run_sentry(["unshare", "-n", "sh", "-c", 'python3 -c "$0" "$1"; ip link set lo up; python3 -c "$0" "$1"',
                        HOST_SERVER, port], timeout=120)
        assert r.stdout.decode().split("\n")[:2] == ["errno 101", "errno 111"], r.stderr.decode()
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()


COOKIES = r"""
import os, random, socket, threading
SO_NETNS_COOKIE = 71
def cookie(s):
    return s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
parent = cookie(socket.socket())
r, w = os.pipe()
w = os.dup2(w, 200)                    # above the numbers the swapper takes
if os.fork() == 0:
    os.unshare(os.CLONE_NEWNET) if hasattr(os, "unshare") else __import__("ctypes").CDLL(None).unshare(0x40000000)
    mine = cookie(socket.socket())
    seen, stop = set(), []
    def make():
        while not stop:
            for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, socket.AF_NETLINK):
                s = socket.socket(fam, socket.SOCK_RAW if fam == socket.AF_NETLINK else socket.SOCK_STREAM)
                try:
                    seen.add(cookie(s))
                except OSError:
                    pass               # its number swapped meanwhile
                s.close()
    def swap():
        while not stop:
            a = socket.socket(socket.AF_INET)
            try:
                os.dup2(a.fileno(), random.randrange(3, 64))
            except OSError:
                pass
            a.close()
    ts = [threading.Thread(target=f) for f in (make, make, swap)]
    for t in ts: t.start()
    import time; time.sleep(3)
    stop.append(1)
    for t in ts: t.join()
    os.write(w, b"%d %d %d" % (mine != parent, seen == {mine}, len(seen)))
    os._exit(0)
os.close(w)
print(os.read(r, 64).decode())
"""


def test_sockets_made_in_a_nested_namespace_under_racing_threads():
    """Threads of a process in a namespace it made create sockets of every
    family it may while another dup2s sockets over random numbers: every socket is
    of that namespace (SO_NETNS_COOKIE), never the sandbox's."""
    r = run_sentry(["python3", "-c", COOKIES], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["1", "1", "1"], r.stderr.decode()


def test_a_racing_connect_in_a_nested_namespace(cbin, outside_tmp):
    """tests/c/connect_flip_race.c in `unshare -n`: a thread flips connect's
    name between the namespace's loopback and a unix path a host process
    listens on, another swaps the fd between an internet and a unix socket:
    the host's socket is never reached, and both outcomes happen."""
    prog = os.path.join(outside_tmp, "connect_flip_race")
    shutil.copy(cbin("connect_flip_race"), prog)
    path = os.path.join(outside_tmp, "netns-host.sock")     # the directory is the session's
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(64)
    srv.settimeout(0)
    try:
        seen = set()
        for _ in range(3):
            r = run_sentry(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$1" 1000 threads',
                            prog, path], timeout=300)
            m = re.fullmatch(rb"rounds 1000 reached ([01]) refused ([01]) other 0\n", r.stdout)
            assert m, (r.stdout, r.stderr)
            seen |= {"reached"} if m.group(1) == b"1" else set()
            seen |= {"refused"} if m.group(2) == b"1" else set()
            if seen == {"reached", "refused"}:
                break
        assert seen == {"reached", "refused"}, (seen, r.stderr)
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()
        os.unlink(path)


def test_host_mode_offers_no_network_namespace():
    """--network=host has no namespace of the sandbox's to make others beside:
    as a Linux whose limit is 0 (ENOSPC for root)."""
    r = run_sentry(["sh", "-c", "cat /proc/sys/user/max_net_namespaces; unshare -n true"],
                   extra=["--network=host"])
    assert r.stdout.decode().split()[0] == "0"
    assert r.returncode != 0 and b"No space left on device" in r.stderr


def test_clone3_with_a_new_network_namespace(cbin, outside_tmp):
    """clone3(CLONE_NEWNET), whose flags are in memory (copied and checked in
    the staging area): the child's namespace is new and empty, as natively."""
    prog = os.path.join(outside_tmp, "netns_clone3")
    shutil.copy(cbin("netns_clone3"), prog)
    native = subprocess.run([prog], capture_output=True, timeout=60)
    boxed = run_sentry([prog])
    assert boxed.stdout == native.stdout == b"child differs 1 connect -1 Network is unreachable\n", boxed.stderr


SOCKSTAT = r"""
import socket, subprocess, time
held = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((host, 0))
    held.append(u)
held.append(socket.socket(socket.AF_UNIX))
time.sleep(0.3)                 # sockets closed before (ip's netlink ones) are freed by then
counts = {}
for name in ("sockstat", "sockstat6"):
    for line in open(f"/proc/net/{name}"):
        proto, _, rest = line.partition(":")
        w = rest.split()
        counts.update({f"{proto}.{k}": v for k, v in zip(w[::2], w[1::2]) if k in ("used", "inuse")})
print(sorted(counts.items()))
total = subprocess.run(["ss", "-s"], capture_output=True, text=True).stdout.split("\n")[0]
print(total, [l.split()[:4] for l in subprocess.run(["ss", "-s"], capture_output=True, text=True).stdout.splitlines()
              if l.split()[:1] in (["RAW"], ["UDP"], ["TCP"])])
"""


def test_sockstat_counts_the_guests_sockets_only():
    """/proc/net/sockstat and sockstat6, and so `ss -s`, count the guest's
    sockets only, not the Sentry's of the sandbox's namespace (the UDP
    relays' pool, the raw ICMP sockets, the helper's netlink socket): as in a
    fresh namespace natively with the same sockets."""
    native = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && python3 -c "$0"', SOCKSTAT],
                            capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(["python3", "-c", SOCKSTAT], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()
    assert "('sockets.used', '7')" in native.stdout


def test_socketpair_in_a_nested_namespace():
    """socketpair(2) there (made by the helper in the namespace, each end
    handed over in turn): lowest numbers, flags, data, EFAULT with nothing
    left behind, EOPNOTSUPP for AF_INET, and threads making pairs at once,
    as natively.  (Its abstract names are the namespace's:
    test_namespaces_are_isolated_from_each_other.)"""
    script = _script("netns_socketpair.py")
    native = _native(["python3", "-c", script])
    boxed = run_sentry(["unshare", "-n", "python3", "-c", script], timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native
    assert "threads 160 True True" in native


LOOPBACK_ADDRESSES = """
ip addr add 127.0.0.1/8 dev lo && echo added
ip link set lo up && echo up
ip -br addr
ip addr add 127.0.0.2/8 dev lo && echo added2
ip -4 -o addr show dev lo | awk '{print $4}'
python3 -c "
import socket; s = socket.socket(); s.bind(('127.0.0.2', 0)); s.listen()
socket.create_connection(s.getsockname()); print('connected to 127.0.0.2')"
"""


def test_loopback_addresses_on_a_nested_lo_as_natively():
    """A namespace's root puts loopback addresses on its lo by rtnetlink
    (`ip addr add 127.0.0.1/8 dev lo`, what bubblewrap's --unshare-net does
    before bringing lo up), as natively: the helper adds them there
    (sentry/net/links.py address_change)."""
    native = _native(["sh", "-c", LOOPBACK_ADDRESSES])
    boxed = run_sentry(["unshare", "-rn", "sh", "-c", LOOPBACK_ADDRESSES], timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native
    assert "127.0.0.2/8" in native and "connected to 127.0.0.2" in native


def test_only_loopback_addresses_and_only_in_a_namespace_of_the_guests():
    """What is not offered stays the kernel's EPERM: another address on a
    nested lo (Linux would allow it: a gap), a label, and any address in the
    sandbox's own namespace, whose addresses are sentry's."""
    script = ("unshare -rn sh -c 'ip addr add 10.1.1.1/24 dev lo; ip addr add 127.0.0.3/8 dev lo label lo:1';"
              "ip addr add 127.0.0.2/8 dev lo; ip -4 -o addr show dev lo | awk '{print $4}'")
    boxed = run_sentry(["sh", "-c", script], timeout=120)
    out, err = boxed.stdout.decode(), boxed.stderr.decode()
    assert err.count("RTNETLINK answers: Operation not permitted") == 3, err
    assert "127.0.0.1/8" in out.split() and "127.0.0.2/8" not in out.split()


def test_a_racing_address_change_never_puts_another_address_on_lo():
    """A thread flips the request between a loopback address and 10.9.9.9
    while another sends it: the Sentry checks the bytes it read and the
    helper adds what it was told, so lo gains the loopback address and never
    the other (natively the other would be added)."""
    boxed = run_sentry(["unshare", "-rn", "python3", "-c", _script("netns_addr_race.py")], timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode().strip() == "['127.0.0.9/8']"


def test_bubblewrap_unshare_net_as_natively():
    """bwrap --unshare-net: a new namespace whose lo it sets up (an address,
    then up) and a server there reached, the same lines as natively."""
    if shutil.which("bwrap") is None:
        skip_or_fail("bwrap", "bubblewrap is not installed (scripts/setup installs it)")
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "sh", "-c",
           "ip -br addr; python3 -c \"import socket; s = socket.socket(); s.bind(('127.0.0.1', 80)); "
           "s.listen(); socket.create_connection(('127.0.0.1', 80)); print('lo works')\""]
    native = subprocess.run(cmd, capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr.decode()
    boxed = run_sentry(cmd, timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode() == native.stdout.decode()
    assert "lo works" in native.stdout.decode()


PROC_PID_NET = """
set -e
test "$(cat /proc/self/net/dev)" = "$(cat /proc/net/dev)" && echo self-same
unshare -rn sh -c 'grep -c : /proc/$$/net/dev; grep -c eth0 /proc/$PPID/net/dev || true' &
wait
"""


def test_proc_pid_net_is_that_processs_namespace():
    """/proc/<pid>/net shows the network namespace of process <pid>, as
    Linux's does (/proc/net is the caller's): a process in a namespace of
    its own sees only its lo there, and its parent's file still shows the
    sandbox's eth0."""
    boxed = run_sentry(["sh", "-c", PROC_PID_NET], timeout=120)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert boxed.stdout.decode().split() == ["self-same", "1", "1"]
