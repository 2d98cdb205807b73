"""--publish HOSTPORT:PORT[/udp] (sentry/net/publish.py; README, Network): a
server inside the sandbox is reachable from the host on HOSTPORT, through a
confined forwarder that lives in the sandbox's network namespace."""
import concurrent.futures
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import SENTRY, TIMEOUT
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

# In the sandbox: python's http.server on 8000, a TCP echo server on 7000
# (half-close aware), a UDP echo server on 7001; "ready" once all listen,
# then until stdin closes.
SERVERS = r"""
import http.server, socket, socketserver, sys, threading
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
httpd = http.server.ThreadingHTTPServer(('0.0.0.0', 8000), Quiet)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR); c.close()
t = socket.create_server(('127.0.0.1', 7000), backlog=64)
def tcp():
    while True:
        c, peer = t.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 7001))
def udp():
    while True:
        d, a = u.recvfrom(65536); u.sendto(b'echo:' + d, a)
threading.Thread(target=udp, daemon=True).start()
print('ready', flush=True)
sys.stdin.read()
"""


def _free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _host_address():
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout
    return out.split()[3].split("/")[0]


@pytest.fixture(scope="module")
def published():
    """A sandbox running SERVERS with its three ports published; yields
    {sandbox port: host port} and the Popen."""
    ports = {8000: _free_port(), 7000: _free_port(), 7001: _free_port(socket.SOCK_DGRAM)}
    args = ["--publish", f"{ports[8000]}:8000", "--publish", f"{ports[7000]}:7000",
            "--publish", f"{ports[7001]}:7001/udp"]
    p = subprocess.Popen(SENTRY + args + ["--", "python3", "-c", SERVERS], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n", p.stderr.read1().decode() if p.poll() is not None else ""
        yield ports, p
    finally:
        p.stdin.close()
        p.kill()
        p.wait()


def test_a_server_inside_is_reached_from_the_host(published):
    ports, _ = published
    for host in ("127.0.0.1", _host_address()):
        with urllib.request.urlopen(f"http://{host}:{ports[8000]}/", timeout=10) as r:
            assert r.status == 200 and b"Directory listing" in r.read()
    try:
        six = socket.create_connection(("::1", ports[7000]), timeout=5)
    except OSError:
        six = None                      # a host without IPv6 loopback
    if six is not None:
        with six:
            six.sendall(b"over ipv6")
            six.shutdown(socket.SHUT_WR)
            assert six.recv(100) == b"over ipv6"


def test_udp(published):
    ports, _ = published
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        for i in range(3):
            c.sendto(b"d%d" % i, ("127.0.0.1", ports[7001]))
            assert c.recvfrom(100) == (b"echo:d%d" % i, ("127.0.0.1", ports[7001]))


def _echo(port, size, seed):
    data = os.urandom(size) if seed % 2 else bytes([seed % 251]) * size
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        got = bytearray()
        sent = 0
        c.setblocking(False)
        import select
        while True:
            r, w, _ = select.select([c], [c] if sent < len(data) else [], [], 30)
            assert r or w, "stalled"
            if w:
                sent += c.send(data[sent:sent + 65536])
                if sent == len(data):
                    c.shutdown(socket.SHUT_WR)
            if r:
                d = c.recv(65536)
                if not d:
                    break
                got += d
        return bytes(got) == data


def test_many_clients_at_once_get_their_own_bytes_back(published):
    """Sixteen host clients at once, each 1 MiB one way and back, with
    half-closes: the forwarder keeps them apart and passes EOF on."""
    ports, _ = published
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: _echo(ports[7000], 1 << 20, i), range(16)))
    assert results == [True] * 16


def test_nothing_else_is_published(published):
    """Only the published ports: the guest's other listeners and the
    sandbox's loopback stay out of reach, and inside, the host ports are
    the sandbox's own (nothing)."""
    ports, _ = published
    free = _free_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", free), timeout=5)
    r = subprocess.run(SENTRY + ["--", "python3", "-c",
                                 f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {ports[7000]}))\n"
                                 "except OSError as e: print(e.errno)"], capture_output=True, timeout=TIMEOUT)
    assert r.stdout == b"111\n", r.stderr.decode()


def test_the_forwarder_is_confined_and_inside():
    """It runs confined, without capabilities, in the sandbox's network
    namespace (so any socket it makes is the sandbox's)."""
    port = _free_port()
    p = subprocess.Popen(SENTRY + ["--publish", f"{port}:80", "--", "sh", "-c", "echo up; read x"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            (guest,) = [int(x) for x in f.read().split()]
        found = []
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "sentry-publish":
                        continue
                if os.getsid(int(pid)) == os.getpid():
                    continue
                st = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
                if os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/proc/{guest}/ns/net"):
                    found.append(st)
            except (OSError, ValueError):
                pass
        assert len(found) == 1, found
        st = {k: v.strip() for k, v in found[0].items()}
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
        assert int(st["CapEff"], 16) == int(st["CapPrm"], 16) == int(st["CapBnd"], 16) == 0, st
        p.stdin.write(b"\n")
        p.stdin.close()
        assert p.wait(TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_taken_host_port_is_refused_cleanly():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run(SENTRY + ["--publish", f"{port}:80", "--", "echo", "ran"], capture_output=True,
                           timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (125, b""), r
    assert r.stderr.decode().splitlines() == [f"sentry: --publish {port}:80: host port {port}: Address already in use"]


def test_bad_publish_is_refused():
    for args in (["--publish", "80"], ["--publish", "0:80"], ["--publish", "80:80/sctp"],
                 ["--network=none", "--publish", "8080:80"]):
        r = subprocess.run(SENTRY + args + ["--", "true"], capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 125 and r.stderr.decode().startswith("sentry: --publish"), (args, r)
        assert len(r.stderr.decode().splitlines()) == 1


def test_help_names_publish():
    r = subprocess.run(SENTRY[:-1] + ["run", "--help"], capture_output=True, text=True)
    assert "--publish" in r.stdout and "HOSTPORT:PORT[/udp]" in r.stdout


def test_what_the_guest_sent_before_it_ended_still_arrives():
    """The guest answers and exits at once: the forwarder outlives the
    Sentry long enough to pass the answer on."""
    port = _free_port()
    p = subprocess.Popen(SENTRY + ["--publish", f"{port}:7000", "--", "python3", "-c",
                         "import socket; s = socket.create_server(('127.0.0.1', 7000)); print('ready', flush=True)\n"
                         "c, a = s.accept(); c.sendall(b'last words ' * 10000); c.close()"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        got = b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += d
        assert got == b"last words " * 10000
        assert p.wait(TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_unprivileged_publish(as_nobody):  # noqa: F811
    """An unprivileged sentry publishes too: its forwarder enters the user
    namespace that owns the sandbox's network namespace first."""
    port = _free_port()
    env = as_nobody.env
    p = subprocess.Popen(as_nobody.command + ["--publish", f"{port}:7000", "--", "python3", "-c",
                         "import socket; s = socket.create_server(('127.0.0.1', 7000)); print('ready', flush=True)\n"
                         "c, a = s.accept(); c.sendall(b'from ' + a[0].encode()); c.close()"],
                         env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n", p.stderr.read1().decode() if p.poll() is not None else ""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            assert c.recv(100) == b"from 127.0.0.1"
        assert p.wait(TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_flood_of_udp_clients_is_bounded(published):
    """More host client addresses than the forwarder remembers: the oldest
    give way (the first client is forgotten, then remembered anew), and
    clients still get their answers."""
    from sentry.net import publish
    ports, _ = published
    socks = []
    try:
        for _ in range(publish.UDP_CLIENTS_MAX + 40):
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.sendto(b"x", ("127.0.0.1", ports[7001]))
            socks.append(c)
        # a burst this size may overflow the server's receive buffer (UDP
        # may lose datagrams): asked again until answered
        for c, data in ((socks[-1], b"x"), (socks[0], b"y")):
            c.settimeout(1)
            for _ in range(10):
                c.sendto(data, ("127.0.0.1", ports[7001]))
                try:
                    while c.recv(100) != b"echo:" + data:
                        pass                # an answer to the burst, still queued
                    break
                except socket.timeout:
                    pass
            else:
                raise AssertionError("no answer")
    finally:
        for c in socks:
            c.close()
