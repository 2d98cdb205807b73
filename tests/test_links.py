"""The link changes a guest root makes on the sandbox's own interfaces --
`ip link set lo up|down|mtu N`, by rtnetlink (iproute2) or by ioctl
(busybox, ifconfig) -- carried out as Linux carries them out for root in a
network namespace of its own (sentry/net/links.py; docs/design.md,
Network).  Natively: root in `unshare -rn`, with lo up as the sandbox
starts it."""
import os
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from conftest import run_sentry, veth_namespace
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))


def _native(script, timeout=60):
    return subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up && " + script],
                          capture_output=True, timeout=timeout)


def _boxed(script, extra=(), timeout=60):
    return run_sentry(["sh", "-c", script], extra=["--dns", "none", *extra], timeout=timeout)


def _same(script, boxed_extra=()):
    native, boxed = _native(script), _boxed(script, boxed_extra)
    assert native.returncode == 0, native.stderr.decode()
    assert (boxed.stdout.decode(), boxed.stderr.decode(), boxed.returncode) == \
        (native.stdout.decode(), native.stderr.decode(), native.returncode)
    return boxed.stdout.decode()


IP = """
ip link set lo down; echo $?; ip link show lo
ip link set lo mtu 1400; echo $?; ip link show lo
ip link set dev lo up mtu 9000; echo $?; ip -o link show lo
busybox ip link set lo mtu 1500; echo $?; busybox ip link set lo down; echo $?; ip link show lo
ifconfig lo mtu 1280 up; echo $?; ifconfig lo | head -1
ip link set lo mtu 65536; echo $?; ip link show lo
"""


def test_ip_link_set_as_natively():
    out = _same(IP)
    assert "mtu 9000" in out and "<LOOPBACK> mtu 1500" in out and "flags=73<UP,LOOPBACK,RUNNING>  mtu 1280" in out


# While lo is down a connection to 127.0.0.1 gets nowhere (it times out,
# as natively once lo has been up: its routes stay); up again, it connects.
UP_DOWN = """
import socket, subprocess
srv = socket.create_server(("127.0.0.1", 0)); port = srv.getsockname()[1]
def probe():
    c = socket.socket(); c.settimeout(1)
    try:
        c.connect(("127.0.0.1", port)); return "connected"
    except OSError as e:
        return type(e).__name__
    finally:
        c.close()
print("up", probe())
print(subprocess.run(["ip", "link", "set", "lo", "down"]).returncode, probe())
print(subprocess.run(["ip", "link", "set", "lo", "up"]).returncode, probe())
"""


def test_lo_really_goes_down_and_up():
    out = _same(f"python3 -c '{UP_DOWN}'")
    assert out.split("\n") == ["up connected", "0 TimeoutError", "0 connected", ""]


def _cases(which, outside_tmp):
    prog = shutil.copy(os.path.join(HERE, "py", "netlink_cases.py"), outside_tmp)
    return f"python3 {prog} {which}"


def test_crafted_requests_as_natively(outside_tmp):
    """One send call each: several messages in one buffer, a no-op before
    the change, by name, split over iovecs, a truncated message after it,
    sendto and sendmmsg, no ack asked, an unbound socket: the acks (error,
    echoed type and seq) and lo's state as natively."""
    out = _same(_cases("allowed", outside_tmp))
    assert len(out.splitlines()) == 9 and out.splitlines()[-1].endswith("mtu=65536 up")


def test_requests_not_offered_keep_the_kernels_eperm(outside_tmp):
    """What the sandbox does not carry out (natively root gets each done, or
    another error) is the kernel's EPERM, and lo stays as it was: other
    attributes, bytes the kernel would warn about, other flags, a rename, an
    interface not the sandbox's, a buffer with another request, NLM_F_EXCL,
    a destination other than the kernel, none named (only a send that names
    the kernel is looked at: no other send pays for the look)."""
    r = _boxed(_cases("refused", outside_tmp))
    got = [line.split(" ", 2) for line in r.stdout.decode().splitlines()]
    assert [g[0] for g in got] == ["leftover", "txqlen", "noarp", "rename", "no-such-index", "with-newaddr",
                                   "excl", "to-a-port", "no-address"], r.stderr.decode()
    for label, sent, rest in got:
        assert rest.endswith("mtu=65536 up"), (label, rest)
        if label == "to-a-port":
            assert sent == "errno" and rest.startswith("1 []")       # sendmsg's own EPERM
        else:
            acks = eval(rest[:rest.index("]") + 1])
            assert acks and all(a[1] == -1 for a in acks), (label, acks)


NO_CAP = """
ip link set lo mtu 1400; echo $?; busybox ip link set lo down; echo $?; ifconfig lo mtu 1280; echo $?
ip link show lo
"""


def test_without_cap_net_admin_as_natively():
    """A guest without the emulated CAP_NET_ADMIN gets EPERM, as a process
    without it natively: root that dropped it, and another uid."""
    _same(f"capsh --drop=cap_net_admin -- -c '{NO_CAP}'")
    # natively another user: a user namespace below the one that owns the network namespace
    native = subprocess.run(["unshare", "-rn", "sh", "-c", 'ip link set lo up; unshare -U sh -c "$0"', NO_CAP],
                            capture_output=True)
    boxed = _boxed(NO_CAP, ["--uid", "1000"])
    assert (boxed.stdout, boxed.stderr) == (native.stdout, native.stderr)
    assert b"RTNETLINK answers: Operation not permitted" in boxed.stderr


def test_unprivileged_sentry(as_nobody):  # noqa: F811
    """Unprivileged, the namespace helper owns the namespace through a user
    namespace of its own: it makes the change all the same."""
    r = as_nobody(["--", "sh", "-c", "ip link set lo mtu 1400 && busybox ip link set lo down && ip -o link show lo"])
    assert r.returncode == 0 and b"<LOOPBACK> mtu 1400" in r.stdout, r.stderr.decode()


# ---- the race: fds and the request swapped under the senders --------------

RECORD = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8083)); s.listen(8)
print('ready', flush=True)
def keep(c):
    got = b''
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    print(got.hex(), flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=keep, args=(c,)).start()
"""


@pytest.fixture(scope="module")
def recorder():
    """A 'remote' host in a network namespace of the tests' own, behind a
    veth pair: a server on .2:8083 prints, per connection, every byte it got."""
    pid = os.getpid()
    ns, net, host_if = f"snlk{pid}", f"10.234.{pid % 250}", f"slh{pid}"
    with veth_namespace(ns, host_if, f"sln{pid}", net, "the link race"):
        srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-u", "-c", RECORD, f"{net}.2"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline() == "ready\n"
        try:
            yield net, host_if, srv
        finally:
            srv.kill()
            srv.wait()


def _host_link(name):
    with open(f"/sys/class/net/{name}/mtu") as f, open(f"/sys/class/net/{name}/flags") as g:
        return int(f.read()), int(g.read(), 16)


REQUEST = struct.Struct("=IHHIIBBHiIIHHI")       # nlmsghdr, ifinfomsg, IFLA_MTU


def test_swapped_fds_and_buffers_change_only_the_sandboxs_lo(recorder, cbin, outside_tmp):
    net, host_if, srv = recorder
    prog = shutil.copy(cbin("link_race"), outside_tmp)
    index = socket.if_nametoindex(host_if)
    before = {name: _host_link(name) for name in ("lo", host_if)}
    r = run_sentry([prog, f"{net}.2", "8083", str(index), "4000"], timeout=300)
    out = r.stdout.decode().splitlines()
    assert len(out) == 3 and out[2] == "rounds 4000", (r.stdout, r.stderr.decode())
    mtu = out[0].split()
    assert mtu[:2] == ["lo", "mtu"] and int(mtu[2]) in range(1280, 1360, 10) and mtu[3] == "up", out
    assert out[1] == "acks some some", out           # both route sockets got the sandbox's answers
    # the host's own interfaces, lo and the one whose index the request named, are as they were
    assert {name: _host_link(name) for name in ("lo", host_if)} == before
    # H's peer got the guest's own requests (sent while X was H) and nothing else
    line = srv.stdout.readline().strip()
    got = bytes.fromhex(line)
    assert len(got) % REQUEST.size == 0
    for off in range(0, len(got), REQUEST.size):
        length, kind, flags, seq, pid, family, _, _, idx, ifflags, change, alen, atype, m = \
            REQUEST.unpack_from(got, off)
        assert (length, kind, flags, seq, idx in (1, index), ifflags, change, atype, m in range(1280, 1360, 10)) == \
            (REQUEST.size, 16, 5, 1, True, 1, 1, 4, True), got[off:off + REQUEST.size].hex()
