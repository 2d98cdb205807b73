"""DNS in --network=sandbox (sentry/net/dns.py; README, Network): the
sandbox's resolvers are relayed at their own addresses inside its network
namespace, and only DNS queries and their answers cross.  The resolver here
is a test server in a network namespace of the tests' own (never an address
outside this machine), but for one real-world check behind
SENTRY_TEST_ALLOW_SKIP=dns."""
import os
import socket
import subprocess
import sys

import pytest

from conftest import SENTRY, run_sentry, skip_or_fail, veth_namespace
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

NAME, ANSWER = "sentry-test.example", "10.9.8.7"

# A resolver: A of NAME is ANSWER, of port-NAME the server's own address;
# any other question NXDOMAIN.  It logs every datagram it gets (hex) on stdout.
RESOLVER = r"""
import socket, struct, sys
me = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 53))
print('ready', flush=True)
answers = {b'sentry-test.example': '10.9.8.7', b'server.sentry-test.example': me}
while True:
    q, peer = s.recvfrom(4096)
    print('got', q.hex(), flush=True)
    if len(q) < 12:
        continue
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]]); i += 1 + q[i]
    qname, (qtype,) = b'.'.join(labels), struct.unpack_from('>H', q, i + 1)
    question = q[12:i + 5]
    if qname in answers and qtype == 1:
        rr = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + socket.inet_aton(answers[qname])
        s.sendto(q[:2] + b'\x81\x80' + struct.pack('>HHHH', 1, 1, 0, 0) + question + rr, peer)
    else:
        rcode = 0 if qname in answers else 3
        s.sendto(q[:2] + bytes([0x81, 0x80 | rcode]) + struct.pack('>HHHH', 1, 0, 0, 0) + question, peer)
"""


@pytest.fixture(scope="module")
def resolver():
    """A network namespace behind a veth pair (host side .1, its side .2)
    with the resolver on .2:53; yields (its address, Popen of the server)."""
    pid = os.getpid()
    ns, net = f"sndns{pid}", f"10.233.{(pid + 100) % 250}"
    with veth_namespace(ns, f"sdh{pid}", f"sdn{pid}", net, "the DNS tests"):
        srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-u", "-c", RESOLVER, f"{net}.2"],
                               stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline() == "ready\n"
        try:
            yield f"{net}.2", srv, ns
        finally:
            srv.kill()
            srv.wait()


def _inside(ip, script, extra=()):
    """script run by sh in a sandbox whose resolv.conf names ip and whose
    relay serves it (--dns)."""
    return run_sentry(["sh", "-c", f"echo nameserver {ip} > /etc/resolv.conf; {script}"],
                      extra=["--dns", ip, *extra], timeout=60)


def _native(ip, script, tmp_path):
    """The same natively: a mount namespace whose /etc/resolv.conf names ip."""
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {ip}\n")
    return subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {conf} /etc/resolv.conf && {script}"],
                          capture_output=True, timeout=60)


LOOKUPS = (f"getent hosts {NAME}; getent hosts nothing.{NAME}; echo $?; "
           f"python3 -c \"import socket; print(socket.getaddrinfo('{NAME}', 80, socket.AF_INET)[0][4]); "
           f"print(socket.gethostbyname('server.{NAME}'))\"")


def test_names_resolve_as_natively(resolver, tmp_path):
    ip, _, _ = resolver
    boxed = _inside(ip, LOOKUPS)
    native = _native(ip, LOOKUPS, tmp_path)
    assert native.returncode == 0, native.stderr.decode()
    assert boxed.stdout == native.stdout, (boxed.stderr.decode(), native)
    assert [line.split() for line in native.stdout.decode().splitlines()] == [
        [ANSWER, NAME], ["2"], [f"('{ANSWER}',", "80)"], [ip]]
    assert boxed.returncode == 0


def test_a_client_connects_by_name(resolver):
    """A real client (curl) resolves through the relay and connects outbound
    to the resolver's host, which serves it on port 8081 here."""
    ip, _, ns = resolver
    srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                            "import socket; s = socket.create_server(('', 8081)); print('ready', flush=True)\n"
                            "while True:\n c, _ = s.accept(); c.sendall(b'by-name\\n'); c.close()"],
                           stdout=subprocess.PIPE)
    try:
        assert srv.stdout.readline() == b"ready\n"
        r = _inside(ip, f"curl -s -m 10 telnet://server.{NAME}:8081 </dev/null")
        assert r.stdout == b"by-name\n", r.stderr.decode()
    finally:
        srv.kill()
        srv.wait()


def _drain(srv):
    """The datagrams the resolver has logged so far (it logs as it gets them)."""
    import select
    got = []
    while select.select([srv.stdout], [], [], 0.5)[0]:
        line = srv.stdout.readline()
        if not line:
            break
        got.append(bytes.fromhex(line.split()[1]))
    return got


# Threads race: some send queries (each with an id of its own, and check the
# answer carries it back), one floods the relay with what is no query, one
# sends to other ports and to a host loopback server, swapping the socket
# under the others (dup2) and the destination of one sockaddr buffer.
RACE = r"""
import ctypes, os, random, socket, struct, sys, threading
ns, hostport = sys.argv[1], int(sys.argv[2])
def query(i, name=b'sentry-test.example'):
    return struct.pack('>HHHHHH', i, 0x0100, 1, 0, 0, 0) + b''.join(
        bytes([len(p)]) + p for p in name.split(b'.')) + b'\0' + struct.pack('>HH', 1, 1)
ok, bad = [], []
def asker(k):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    for j in range(20):
        i = k * 100 + j
        s.sendto(query(i), (ns, 53))
        try:
            while True:
                d, a = s.recvfrom(4096)
                if d[:2] == struct.pack('>H', i):
                    break
            (ok if a == (ns, 53) and d.endswith(socket.inet_aton('10.9.8.7')) else bad).append(i)
        except socket.timeout:
            bad.append(('timeout', i))
stop = False
def flood():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    junk = [b'', b'x', b'\0' * 11, query(7)[:2] + b'\x81\x80' + query(7)[4:], b'\xff' * 5000,
            query(8)[:2] + b'\x28\x00' + query(8)[4:]]
    while not stop:
        for j in junk:
            try: s.sendto(j, (ns, 53))
            except OSError: pass
        for dest in ((ns, 54), (ns, 5353), ('127.0.0.1', hostport), ('10.255.255.1', 53)):
            try: s.sendto(query(9), dest)
            except OSError: pass
libc = ctypes.CDLL(None, use_errno=True)
def swapper():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.connect(('127.0.0.1', hostport))
    X = 50
    buf = ctypes.create_string_buffer(16)
    good = socket.inet_aton(ns); host = socket.inet_aton('127.0.0.1')
    q = query(10)
    def flip():
        while not stop:
            libc.dup2(a.fileno(), X); libc.dup2(b.fileno(), X)
            ctypes.memmove(ctypes.addressof(buf) + 4, host, 4)
            ctypes.memmove(ctypes.addressof(buf) + 4, good, 4)
    t = threading.Thread(target=flip); t.start()
    struct.pack_into('<H', buf, 0, socket.AF_INET); struct.pack_into('>H', buf, 2, 53)
    for _ in range(3000):
        libc.sendto(X, q, len(q), 0, buf, 16)
        libc.connect(X, buf, 16)
    return t
threads = [threading.Thread(target=asker, args=(k,)) for k in range(4)] + [threading.Thread(target=flood)]
for t in threads: t.start()
flipper = swapper()
for t in threads[:4]: t.join()
stop = True
for t in threads[4:] + [flipper]: t.join()
print('answered', len(ok), 'bad', bad)
"""


def test_only_queries_cross_the_relay_under_a_race(resolver):
    ip, srv, _ = resolver
    _drain(srv)
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    host.setblocking(False)
    try:
        r = run_sentry(["python3", "-c", RACE, ip, str(host.getsockname()[1])], extra=["--dns", ip], timeout=120)
        assert r.stdout.decode().splitlines() == ["answered 80 bad []"], r.stderr.decode()
        with pytest.raises(BlockingIOError):
            host.recv(100)                      # nothing reached the host's loopback
    finally:
        host.close()
    got = _drain(srv)
    # every datagram the resolver got is a query for the test name, under an id of the relay's
    assert got and all(len(d) > 12 and d[2:4] == b"\x01\x00" and b"\x0bsentry-test\x07example\x00" in d
                       for d in got), got[:5]


def test_unprivileged_relay(resolver, as_nobody):  # noqa: F811
    """An unprivileged sentry (its namespace in a user namespace of its own)
    binds port 53 of its sandbox's namespace all the same."""
    ip, _, _ = resolver
    r = as_nobody(["--dns", ip, "--", "sh", "-c", f"echo nameserver {ip} > /etc/resolv.conf; getent hosts {NAME}"])
    assert r.stdout.split() == [ANSWER.encode(), NAME.encode()], r.stderr.decode()


def test_no_relay_with_dns_none(resolver):
    """--dns none: no DNS relay, so no resolver address on lo, and a query to
    a resolver the --net-allow rules do not allow gets no answer (one they
    allow is reached as any UDP destination is, through its relay)."""
    ip, _, _ = resolver
    probe = f"echo nameserver {ip} > /etc/resolv.conf; getent hosts {NAME}; echo $?; ip -o addr show lo | grep -c inet"
    r = run_sentry(["sh", "-c", probe], extra=["--dns", "none", "--net-allow", "192.0.2.0/24"], timeout=60)
    assert r.stdout.decode().split() == ["2", "2"], r.stderr.decode()        # 127.0.0.1 and ::1 only
    r = run_sentry(["sh", "-c", probe], extra=["--dns", "none"], timeout=60)
    assert r.stdout.decode().split() == [ANSWER, NAME, "0", "2"], r.stderr.decode()


def test_bad_dns_is_refused():
    for args in (["--dns", "300.1.1.1"], ["--dns", "fe80::1"], ["--network=none", "--dns", "10.0.0.1"]):
        r = subprocess.run(SENTRY + args + ["--", "true"], capture_output=True)
        assert r.returncode == 125 and r.stderr.decode().startswith("sentry: --dns"), (args, r)
        assert len(r.stderr.decode().splitlines()) == 1


def test_the_hosts_resolver_answers_inside_as_outside():
    """The real-world check: the host's own resolvers (its /etc/resolv.conf),
    relayed by default, answer inside as they answer the host."""
    name = "deb.debian.org"
    native = subprocess.run(["getent", "hosts", name], capture_output=True, timeout=30)
    if native.returncode != 0:
        skip_or_fail("dns", f"no resolver of this host answers for {name}")
    boxed = run_sentry(["getent", "hosts", name], timeout=60)
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert sorted(boxed.stdout.split()) == sorted(native.stdout.split())
    boxed = run_sentry(["python3", "-c", f"import socket; print(sorted({{a[4][0] for a in "
                        f"socket.getaddrinfo('{name}', 443, socket.AF_INET)}}))"], timeout=60)
    natively = subprocess.run([sys.executable, "-c", f"import socket; print(sorted({{a[4][0] for a in "
                               f"socket.getaddrinfo('{name}', 443, socket.AF_INET)}}))"],
                              capture_output=True, timeout=30)
    assert boxed.stdout == natively.stdout, boxed.stderr.decode()
