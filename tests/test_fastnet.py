"""The datagram fast path (native/fastnet.c): sendto and sendmsg to the
sandbox's own addresses, or with no name, answered in C with the checked
name (and header) staged.  Compared with Python (--strace turns the fast
paths off) and natively; counted; raced."""
import re
import subprocess
import sys

import pytest

from conftest import run_sentry

PINGPONG = r'''
import socket, sys
def run(family, host, mapped=False):
    a = socket.socket(family, socket.SOCK_DGRAM); a.bind((host, 0))
    b = socket.socket(family, socket.SOCK_DGRAM); b.bind((host, 0))
    out = []
    for i in range(int(sys.argv[1])):
        a.sendto(b"ping %d" % i, b.getsockname())
        data, peer = b.recvfrom(64)
        b.sendmsg([b"pong ", data[5:]], [], 0, peer)
        data2, _ = a.recvfrom(64)
        out.append(data2)
    b.connect(a.getsockname()); b.sendmsg([b"connected"]); out.append(a.recv(64))
    try:
        b.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"\0\0\0\0")])
    except OSError as e:
        out.append(str(e.errno).encode())
    print(family, out[0], out[-3:], len(out), peer[0] == host or peer[0])
run(socket.AF_INET, "127.0.0.1")
run(socket.AF_INET6, "::1")
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::", 0))
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t.sendto(b"mapped", ("127.0.0.1", s.getsockname()[1])); print(s.recvfrom(64)[0])
s.sendto(b"back", ("::ffff:127.0.0.1", t.getsockname()[1])) if t.getsockname()[1] else None
'''


def test_datagrams_on_the_sandboxs_own_addresses_as_natively():
    native = subprocess.run(["python3", "-c", PINGPONG, "20"], capture_output=True)
    fast = run_sentry(["python3", "-c", PINGPONG, "20"])
    slow = run_sentry(["python3", "-c", PINGPONG, "20"], extra=["--strace=getpid"])   # no fast path
    assert native.returncode == 0 and b"ping 0" not in native.stdout, native.stderr
    assert fast.stdout == native.stdout, fast.stderr
    assert slow.stdout == native.stdout, slow.stderr


def test_a_ping_pong_never_reaches_python():
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run", "--", "python3", "-c", PINGPONG, "500"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    # 500 rounds of a sendto and a sendmsg each way: 2000 sends, all answered in C
    fast = int(re.search(r"'fast_paths': (\d+)", r.stderr.decode()).group(1))
    assert fast >= 2000, r.stderr.decode()[-500:]


def test_a_racing_name_is_sent_as_checked(cbin, outside_tmp):
    """A thread flips sendto's name between the sandbox's loopback and an
    address outside (refused: ENETUNREACH) while another sends: every send
    that succeeded reached the loopback peer -- the kernel sent to the very
    name the check passed, never out of eth0 -- and both outcomes happen."""
    import os, shutil
    prog = os.path.join(outside_tmp, "udp_name_race")
    shutil.copy(cbin("udp_name_race"), prog)
    # 192.0.2.1 is refused by this policy
    r = run_sentry([prog, "1000"], extra=["--net-allow", "198.51.100.0/24"], timeout=300)
    m = re.match(rb"sent (\d+) got (\d+) unreachable (\d+) other (\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    sent, got, unreachable, other = map(int, m.groups())
    assert sent == got and other == 0, r.stdout
    assert sent > 0 and unreachable > 0, r.stdout


CONNECTS = r'''
import ctypes, errno, os, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
def raw_connect(fd, name, length=None):
    buf = ctypes.create_string_buffer(name, len(name))
    r = libc.connect(fd, buf, len(name) if length is None else length)
    return 0 if r == 0 else errno.errorcode[ctypes.get_errno()]
def v4(host, port):
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(host) + bytes(8)
def v6(host, port):
    return struct.pack("<H", socket.AF_INET6) + struct.pack(">H", port) + bytes(4) + socket.inet_pton(socket.AF_INET6, host) + bytes(4)
l4 = socket.socket(); l4.bind(("127.0.0.1", 0)); l4.listen(8); p4 = l4.getsockname()[1]
l6 = socket.socket(socket.AF_INET6); l6.bind(("::", 0)); l6.listen(8); p6 = l6.getsockname()[1]
closed = socket.socket(); closed.bind(("127.0.0.1", 0)); cp = closed.getsockname()[1]
for rounds in range(int(os.environ.get("ROUNDS", "3"))):
    out = []
    s = socket.socket(); out.append(("tcp", raw_connect(s.fileno(), v4("127.0.0.1", p4))))
    out.append(("again", raw_connect(s.fileno(), v4("127.0.0.1", p4))))
    a, peer = l4.accept(); out.append(("peer", peer == s.getsockname(), s.getpeername()[0]))
    a.close(); s.close()
    s = socket.socket(); out.append(("refused", raw_connect(s.fileno(), v4("127.0.0.1", cp)))); s.close()
    s = socket.socket(); out.append(("short", raw_connect(s.fileno(), v4("127.0.0.1", p4), 8))); s.close()
    s = socket.socket(); out.append(("v6 on v4", raw_connect(s.fileno(), v6("::1", p6)))); s.close()
    s = socket.socket(socket.AF_INET6); out.append(("v6", raw_connect(s.fileno(), v6("::1", p6))))
    l6.accept()[0].close(); s.close()
    s = socket.socket(socket.AF_INET6); out.append(("mapped", raw_connect(s.fileno(), v6("::ffff:127.0.0.1", p6))))
    l6.accept()[0].close(); s.close()
    u = socket.socket(socket.AF_UNIX); out.append(("inet on unix", raw_connect(u.fileno(), v4("127.0.0.1", p4)))); u.close()
    r, w = os.pipe(); out.append(("pipe", raw_connect(r, v4("127.0.0.1", p4)))); os.close(r); os.close(w)
    out.append(("badf", raw_connect(999, v4("127.0.0.1", p4))))
    s = socket.socket(); out.append(("efault", libc.connect(s.fileno(), ctypes.c_void_p(8), 16), errno.errorcode[ctypes.get_errno()])); s.close()
    d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); e = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    e.bind(("127.0.0.1", 0)); out.append(("udp", raw_connect(d.fileno(), v4("127.0.0.1", e.getsockname()[1]))))
    d.send(b"hi"); out.append(("udp data", e.recvfrom(8)[0]))
    out.append(("unspec", raw_connect(d.fileno(), struct.pack("<H", 0) + bytes(14))))
    d.close(); e.close()
print(out)
'''


def test_connects_on_the_sandboxs_own_addresses_as_natively():
    """connect to the sandbox's own addresses, answered in C (by default
    and with --network=none), in Python (--strace) and natively in a fresh
    network namespace: the same results and errnos."""
    native = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && python3 -c "$0"', CONNECTS],
                            capture_output=True)
    assert native.returncode == 0 and b"'tcp', 0" in native.stdout, native.stderr
    for extra in ([], ["--network=none"], ["--strace=getpid"]):
        inside = run_sentry(["python3", "-c", CONNECTS], extra=extra)
        assert inside.stdout == native.stdout, (extra, inside.stdout, inside.stderr[-2000:])


def test_a_loopback_connect_never_reaches_python(cbin, outside_tmp):
    """socket, connect, accept, close on the sandbox's loopback: every
    connect is answered in C, its registers given back by C at its exit."""
    import os, shutil
    prog = os.path.join(outside_tmp, "connect_loop")
    shutil.copy(cbin("connect_loop"), prog)
    for network in ("sandbox", "none"):
        r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run", f"--network={network}", "--",
                            prog, "300"], capture_output=True, timeout=120)
        assert r.returncode == 0 and r.stdout == b"connected 300\n", r.stderr.decode()[-2000:]
        m = re.search(r"connect (\d+)/(\d+)", r.stderr.decode())
        assert m and int(m.group(1)) >= 300 and int(m.group(2)) == 0, r.stderr.decode()[-800:]


@pytest.mark.parametrize("mode", ["threads", "shared"])
def test_a_racing_connect_reaches_only_the_checked_name(cbin, outside_tmp, mode):
    """threads: one thread flips connect's name between the sandbox's
    loopback and a unix path where a host process listens, another swaps
    the fd between an internet and a unix socket, while a third connects.
    shared: a single-threaded process connects (C passes the call as it
    is) while a child flips the name in memory they share among the
    loopback, the unix path and an address outside the policy.  The host's
    socket is never reached (the kernel connects to the staged name C
    checked, or on a socket of the sandbox, or Python refuses the path),
    with --network=none and sandbox; both outcomes happen."""
    import os, shutil, socket
    prog = os.path.join(outside_tmp, "connect_flip_race")
    shutil.copy(cbin("connect_flip_race"), prog)
    path = os.path.join(outside_tmp, f"host-{mode}.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(64)
    srv.settimeout(0)
    try:
        for network in ("none", "sandbox"):
            policy = ["--net-allow", "198.51.100.0/24"] if network == "sandbox" else []
            seen = set()
            # both outcomes, over up to three runs: on a loaded machine one
            # run's flips may all land on one side
            for _ in range(3):
                r = run_sentry([prog, path, "3000", mode], extra=[f"--network={network}", *policy], timeout=300)
                m = re.fullmatch(rb"rounds 3000 reached ([01]) refused ([01]) other 0\n", r.stdout)
                assert m, (network, r.stdout, r.stderr)
                seen |= {"reached"} if m.group(1) == b"1" else set()
                seen |= {"refused"} if m.group(2) == b"1" else set()
                if seen == {"reached", "refused"}:
                    break
            assert seen == {"reached", "refused"}, (network, seen, r.stderr)
        try:
            conn, _ = srv.accept()
            raise AssertionError("the host's unix socket was reached")
        except BlockingIOError:
            pass
    finally:
        srv.close()
        os.unlink(path)
