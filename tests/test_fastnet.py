"""The datagram fast path (native/fastnet.c): sendto and sendmsg to the
sandbox's own addresses, or with no name, answered in C with the checked
name (and header) staged.  Compared with Python (--strace turns the fast
paths off) and natively; counted; raced."""
import re
import subprocess
import sys

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
