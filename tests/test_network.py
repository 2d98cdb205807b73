"""The sandbox's network (README, Network; docs/design.md, Network): in the
none and sandbox modes the guest lives in a private network namespace with a
loopback of its own, so no guest socket is ever on the host's network."""
import os
import socket
import subprocess
import sys

import pytest

from conftest import SENTRY, run_sentry, userns_jail, veth_namespace
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

ISOLATED = ["sandbox", "none"]


def _py(code, mode="sandbox", timeout=60, extra=()):
    return run_sentry(["python3", "-c", code], extra=[f"--network={mode}", *extra], timeout=timeout)


def _host_server(addr="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 0))
    s.listen(8)
    return s


CONNECT = """
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('CONNECTED')
except OSError as e:
    print('refused', e.errno)
"""


def _connect_from_inside(mode, addr, port):
    r = run_sentry(["python3", "-c", CONNECT, addr, str(port)], extra=[f"--network={mode}"])
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().strip()


@pytest.mark.parametrize("mode", ISOLATED)
def test_host_loopback_server_unreachable(mode):
    srv = _host_server()
    srv6 = _host_server("::1", socket.AF_INET6)
    try:
        port, port6 = srv.getsockname()[1], srv6.getsockname()[1]
        assert _connect_from_inside(mode, "127.0.0.1", port).startswith("refused")
        assert _connect_from_inside(mode, "::1", port6).startswith("refused")
    finally:
        srv.close()
        srv6.close()


def test_host_mode_is_the_hosts_network():
    """The check above can fail: with --network=host the same server is reached."""
    srv = _host_server()
    try:
        assert _connect_from_inside("host", "127.0.0.1", srv.getsockname()[1]) == "CONNECTED"
    finally:
        srv.close()


def _host_addresses():
    out = subprocess.run(["ip", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]


def test_host_lan_address_unreachable():
    addrs = _host_addresses()
    assert addrs, "this machine has a global IPv4 address"
    srv = _host_server("0.0.0.0")
    try:
        for a in addrs:
            assert _connect_from_inside("none", a, srv.getsockname()[1]).startswith("refused")
    finally:
        srv.close()


LISTEN = """
import socket, sys, time
port = int(sys.argv[1])
for addr in ('127.0.0.1', '0.0.0.0'):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    c = socket.create_connection(('127.0.0.1', port))
    a, _ = s.accept()
    c.sendall(b'x'); assert a.recv(1) == b'x'
    for x in (a, c, s): x.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(1)
print('LISTENING', flush=True)
sys.stdin.read(1)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", ISOLATED)
def test_guest_listen_takes_no_host_port(mode):
    port = _free_port()
    guests = []
    try:
        # two sandboxes on one port at once, and the host on it too
        for _ in range(2):
            p = subprocess.Popen(SENTRY + [f"--network={mode}", "--", "python3", "-c", LISTEN, str(port)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            guests.append(p)
            assert p.stdout.readline() == b"LISTENING\n", p.stderr.read().decode()
        with socket.socket() as c:
            assert c.connect_ex(("127.0.0.1", port)) != 0       # no one listens there on the host
        with socket.socket() as h:
            h.bind(("0.0.0.0", port))
            h.listen(1)
    finally:
        for p in guests:
            p.kill()
            p.wait()


@pytest.mark.parametrize("dns", ["none", "default"])
def test_only_the_sandboxs_interfaces(dns):
    """Its loopback, with (by default) the addresses of the host's
    resolvers, where the DNS relay answers (sentry/net/dns.py), and eth0
    with its default route (vfs/netns.py)."""
    from sentry.net import dns as _dns
    r = run_sentry(["sh", "-c", "ip -o link | cut -d: -f2; ip -o addr | awk '{print $2, $4}'; "
                    "ip route"], extra=["--dns", "none"] if dns == "none" else [])
    assert r.returncode == 0, r.stderr.decode()
    lines = [line.strip() for line in r.stdout.decode().splitlines()]
    relayed = [] if dns == "none" else [ip for ip in _dns.host_nameservers() if not ip.is_loopback]
    assert lines == ["lo", "eth0@if3", "lo 127.0.0.1/8"] + [f"lo {ip}/32" for ip in relayed if ip.version == 4] + \
        ["lo ::1/128"] + [f"lo {ip}/128" for ip in relayed if ip.version == 6] + \
        ["eth0 10.0.2.15/24", "eth0 fe80::5054:ff:fe12:3456/64",
         "default via 10.0.2.2 dev eth0", "10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15"], lines


def test_none_has_only_its_loopback():
    r = run_sentry(["sh", "-c", "ip -o link | cut -d: -f2; ip -o addr | awk '{print $2, $4}'; ip route"],
                   extra=["--network=none"])
    assert [line.strip() for line in r.stdout.decode().splitlines()] == \
        ["lo", "lo 127.0.0.1/8", "lo ::1/128"], r.stderr.decode()


# Natively: root in `unshare -rn` with what sentry builds for --network=sandbox
# (vfs/netns.py) built by hand -- eth0 the end of a veth pair whose other end,
# the gateway, is in a namespace of its own -- then the script runs, with args.
NATIVE_SANDBOX = """
ip link set lo up
unshare -n sleep 1000 & gw=$!
while [ "$(readlink /proc/$gw/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
ip link add eth0 index 2 address 52:54:00:12:34:56 type veth peer name eth0 index 3 address 52:55:0a:00:02:02 netns $gw
nsenter --net=/proc/$gw/ns/net sh -c "ip addr add 10.0.2.2/24 dev eth0 && ip link set eth0 up && sysctl -qw net.ipv4.ip_forward=1"
sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip addr add 10.0.2.15/24 brd + dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2 dev eth0
# the link-local address is tentative until the kernel's link watch sees the carrier (up to a second)
n=0; while [ -n "$(ip -6 addr show dev eth0 tentative)" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
sh -c "$0" native "$@"; rc=$?
kill $gw
exit $rc
"""


def native_sandbox(script, *args, timeout=60):
    return subprocess.run(["unshare", "-rn", "sh", "-c", NATIVE_SANDBOX, script, *args], capture_output=True,
                          text=True, timeout=timeout)


ONE_INTERFACE = """
ip addr; ip route; ip -6 route; ip -o link show eth0; hostname -I; ifconfig eth0 | head -2
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("8.8.8.8", 80))
print("idiom", s.getsockname()[0])
srv = socket.create_server(("0.0.0.0", 0)); port = srv.getsockname()[1]
for dest in (("10.0.2.15", port), ("10.0.2.2", 80)):
    c = socket.socket()
    print(dest[0], c.connect_ex(dest))
'
"""


def test_eth0_as_on_a_host_with_one_interface():
    """ip addr, ip route, hostname -I, ifconfig and the `connect(("8.8.8.8",
    80)); getsockname()` idiom show eth0 as natively; a server of the
    sandbox's is reached at 10.0.2.15 (by the sandbox's own kernel, not the
    host's), the gateway refuses."""
    native = native_sandbox(ONE_INTERFACE)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(["sh", "-c", ONE_INTERFACE], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()
    assert "idiom 10.0.2.15\n10.0.2.15 0\n10.0.2.2 111\n" in native.stdout


# /sys/class/net: the interfaces, their links and the files programs read
SYS_CLASS_NET = """
ls /sys/class/net /sys/devices/virtual/net
cd /sys/class/net
for i in lo eth0; do
  readlink $i; ls $i/ $i/statistics $i/queues
  for f in address mtu operstate carrier flags ifindex iflink type addr_len broadcast tx_queue_len \\
      dev_id dev_port link_mode addr_assign_type name_assign_type dormant proto_down netdev_group \\
      gro_flush_timeout napi_defer_hard_irqs testing threaded speed duplex phys_port_id; do
    echo "$i $f $(cat $i/$f 2>&1)"
  done
  cat $i/statistics/rx_errors $i/statistics/tx_dropped $i/uevent
done
readlink -f /sys/class/net/eth0/subsystem /sys/devices/virtual/net/lo/subsystem
echo 9000 > /sys/class/net/lo/mtu
"""


def test_sys_class_net_as_natively():
    """/sys/class/net and /sys/devices/virtual/net list the sandbox's
    interfaces (lo, eth0) and nothing of the host's, with the files and
    links a fresh namespace of that shape shows in a sysfs mounted there
    (read-only, as in containers: a write is EROFS)."""
    host = set(os.listdir("/sys/class/net"))
    mounted = 'unshare -m sh -c "mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys && sh -c \\"\\$0\\"" "$1"'
    native = native_sandbox(mounted + "\n", SYS_CLASS_NET)
    assert "eth0 address 52:54:00:12:34:56" in native.stdout and "Read-only" in native.stderr, \
        native.stdout + native.stderr
    boxed = run_sentry(["sh", "-c", SYS_CLASS_NET], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()
    assert "Read-only file system" in boxed.stderr.decode()
    assert boxed.stdout.decode().split("\n\n")[0].split() == ["/sys/class/net:", "eth0", "lo"]
    assert host - {"lo", "eth0"}, "this host has an interface the sandbox must not list"
    r = run_sentry(["ls", "/sys/class/net", "/sys/devices/virtual/net"], extra=["--network=none"])
    assert r.stdout.decode().split() == ["/sys/class/net:", "lo", "/sys/devices/virtual/net:", "lo"], \
        r.stdout.decode() + r.stderr.decode()
    r = run_sentry(["sh", "-c", "grep -c ' /sys' /proc/mounts; ls /sys/class/net/lo/../../../../block "
                    "/sys/class/net/../../devices"], extra=["--dns", "none"])
    assert r.stdout.decode().split() == ["1", "/sys/class/net/../../devices:", "system", "virtual"] and \
        "block" in r.stderr.decode(), r.stdout + r.stderr


def test_sys_class_net_unprivileged(as_nobody):  # noqa: F811
    """An unprivileged Sentry's helper mounts that sysfs too (in the user
    namespace that owns the sandbox's network namespace)."""
    r = as_nobody(["--", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/eth0/address"])
    assert r.stdout.decode().split() == ["eth0", "lo", "52:54:00:12:34:56"], r.stdout.decode() + r.stderr.decode()


SYS_CLASS_NET_AGREES = """
import json, socket, subprocess
def sysfs(i, f):
    return open(f"/sys/class/net/{i}/{f}").read().strip()
subprocess.run(["ip", "link", "set", "lo", "mtu", "1400"], check=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
for n in range(7):
    s.sendto(b"x" * (100 + n), r.getsockname())
dev = {l.split(":")[0].strip(): l.split(":")[1].split() for l in open("/proc/net/dev").readlines()[2:]}
for link in json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout):
    i = link["ifname"]
    assert int(sysfs(i, "ifindex")) == link["ifindex"], i
    assert int(sysfs(i, "mtu")) == link["mtu"], i
    assert sysfs(i, "address") == link["address"], i
    assert sysfs(i, "operstate") == link["operstate"].lower(), i
    assert int(sysfs(i, "tx_queue_len")) == link["txqlen"], i
    assert int(sysfs(i, "flags"), 16) & 1 == ("UP" in link["flags"]), i
rx_bytes, rx_packets, tx_bytes, tx_packets = (sysfs("lo", "statistics/" + f) for f in
                                              ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets"))
assert [rx_bytes, rx_packets] == dev["lo"][0:2] and [tx_bytes, tx_packets] == dev["lo"][8:10], (dev["lo"], rx_bytes)
print("agree", sysfs("lo", "mtu"), rx_packets)
"""


def test_sys_class_net_agrees_with_rtnetlink():
    """What /sys/class/net says of each interface is what `ip -j link`
    (rtnetlink) and /proc/net/dev say, also after a guest root changed lo's
    MTU and sent datagrams over it."""
    r = run_sentry(["python3", "-c", SYS_CLASS_NET_AGREES], extra=["--dns", "none"])
    assert r.stdout.decode() == "agree 1400 7\n", r.stdout.decode() + r.stderr.decode()


FASTOPEN_THREADED = """
import ctypes, errno, socket, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_char_p), ('len', ctypes.c_size_t)]
class mmsghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t),
                ('flags', ctypes.c_int), ('pad', ctypes.c_int), ('len', ctypes.c_uint32)]
def sendmmsg(s, dest):
    raw = ctypes.create_string_buffer(28)
    port = dest[1].to_bytes(2, 'big')
    if s.family == socket.AF_INET:
        raw.raw = (2).to_bytes(2, 'little') + port + socket.inet_pton(s.family, dest[0]) + bytes(20)
    else:
        raw.raw = (10).to_bytes(2, 'little') + port + bytes(4) + socket.inet_pton(s.family, dest[0]) + bytes(4)
    iov = (iovec * 2)(iovec(b'sen', 3), iovec(b'dmmsg', 5))
    msgs = (mmsghdr * 2)(mmsghdr(ctypes.addressof(raw), 16 if s.family == socket.AF_INET else 28, iov, 2),
                         mmsghdr(ctypes.addressof(raw), 16 if s.family == socket.AF_INET else 28, iov, 1))
    n = libc.sendmmsg(s.fileno(), msgs, 2, socket.MSG_FASTOPEN)
    return n if n >= 0 else errno.errorcode[ctypes.get_errno()], msgs[0].len
if sys.argv[1] == 'threads':              # a second thread: the fd table is shared
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
for family, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1'), (socket.AF_INET, '10.0.2.15')):
    srv = socket.create_server((host, 0), family=family)
    dest = srv.getsockname()[:2]
    c, d, e = socket.socket(family), socket.socket(family), socket.socket(family)
    print(host, 'sendto', c.sendto(b'hello', socket.MSG_FASTOPEN, dest))
    print(host, 'sendmsg', d.sendmsg([b'wor', b'ld'], [], socket.MSG_FASTOPEN, dest))
    print(host, 'sendmmsg', sendmmsg(e, dest))
    for _ in range(3):
        a, _ = srv.accept()
        time.sleep(0.05)
        print(host, 'got', sorted([a.recv(100)]), a.getpeername()[:2] in
              (c.getsockname()[:2], d.getsockname()[:2], e.getsockname()[:2]))
    print(host, 'peer', c.getpeername()[:2] == dest)
    try:
        c.sendto(b'x', socket.MSG_FASTOPEN, dest)
    except OSError as e:
        print(host, 'again', errno.errorcode[e.errno])
"""


@pytest.mark.parametrize("threads", ["alone", "threads"])
def test_fastopen_as_natively(threads):
    """sendto, sendmsg and sendmmsg with MSG_FASTOPEN connect as they send, to the
    sandbox's own addresses (loopback, IPv6, eth0's), alone or beside a
    thread (the call then runs through a hidden slot holding the Sentry's
    copy of the socket, as connect does: syscalls/slots.py), as in a fresh
    network namespace; a second one on the connected socket is EISCONN."""
    script = 'python3 -c "$1" "$2"'
    native = native_sandbox(script, FASTOPEN_THREADED, threads)
    assert native.returncode == 0 and native.stdout.count("True") == 12, native.stdout + native.stderr
    boxed = run_sentry(["sh", "-c", script, "sh", FASTOPEN_THREADED, threads], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()

FORK_DURING_CONNECT = """
import os, socket, sys, threading, time
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)
dest = l.getsockname()
fillers = []
while True:                                    # the accept queue full: the next SYN is dropped
    f = socket.socket(); f.setblocking(False); f.connect_ex(dest); fillers.append(f)
    time.sleep(0.05)
    try:
        f.getpeername()
    except OSError:
        break
s = socket.socket()
t = threading.Thread(target=s.connect, args=(dest,)); t.start()
time.sleep(0.3)                                # s is in its connect, waiting
r, w = os.pipe()
r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    keep = sorted((w, r2))
    os.closerange(3, keep[0])                  # as before an exec: the parent's sockets are not its
    os.closerange(keep[0] + 1, keep[1])
    os.closerange(keep[1] + 1, 65536)
    os.write(w, b'child ready')
    os.read(r2, 1)                             # the parent has looked for its EOF
    threading.Thread(target=time.sleep, args=(1,)).start()   # its own connects go through slots too
    mine = socket.create_server(('127.0.0.1', 0))
    c = socket.create_connection(mine.getsockname())
    os.write(w, b'child connects %d' % (c.getpeername() == mine.getsockname()))
    os._exit(0)
print(os.read(r, 100).decode(), flush=True)
l.setblocking(False)
accepted = []
while t.is_alive():
    try:
        accepted.append(l.accept()[0])
    except BlockingIOError:
        time.sleep(0.01)
t.join()
name = s.getsockname()
s.close()
time.sleep(0.1)
while True:
    try:
        accepted.append(l.accept()[0])
    except BlockingIOError:
        break
a = [a for a in accepted if a.getpeername() == name][0]
a.settimeout(1)
try:
    print('eof at once', a.recv(10) == b'')
except socket.timeout:
    print('eof at once False')
os.write(w2, b'x')
print(os.read(r, 100).decode())
os.waitpid(pid, 0)
"""


def test_fork_during_a_slotted_connect():
    """A process forks while another of its threads waits in a connect that
    runs through a hidden slot (syscalls/slots.py): the child's copy of
    that slot gets the filler back before it runs (kernel/clone.py
    start_child), so once the child has closed the fds it inherited, the
    parent's close of that socket ends the connection at once, as natively;
    the child's own connects through slots still work."""
    script = 'python3 -c "$1"'
    native = native_sandbox(script, FORK_DURING_CONNECT)
    assert native.stdout.splitlines() == ["child ready", "eof at once True", "child connects 1"], \
        native.stdout + native.stderr
    boxed = run_sentry(["sh", "-c", script, "sh", FORK_DURING_CONNECT], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()

NET_SYSCTLS = """
cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/tcp_fin_timeout
sysctl net.ipv6.conf.eth0.accept_dad net.ipv4.conf.lo.forwarding net.ipv4.ip_forward
ls /proc/sys/net /proc/sys/net/ipv4/conf /proc/sys/net/ipv6/conf
python3 -c '
import socket, subprocess
srv = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(srv.getsockname())
a, _ = srv.accept()
out = subprocess.run(["ss", "-tn", "autobound"], capture_output=True, text=True).stdout
print("autobound lists the client", ":%d " % c.getsockname()[1] in out)
'
"""


def test_net_sysctls_are_the_sandboxs():
    """/proc/sys/net shows the sandbox's network namespace's values and
    interfaces (read by the namespace helper, which lives in it:
    vfs/mountns.py net_sysctl_view), as a fresh namespace shows its own;
    ss's autobound filter, which reads ip_local_port_range, works.  Under
    --network=host, the host's values."""
    native = native_sandbox(NET_SYSCTLS)
    assert native.returncode == 0 and "autobound lists the client True" in native.stdout, \
        native.stdout + native.stderr
    boxed = run_sentry(["sh", "-c", NET_SYSCTLS], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()
    key = "/proc/sys/net/ipv4/ip_local_port_range"
    with open(key) as f:
        host = f.read()
    r = run_sentry(["cat", key], extra=["--network=host"])
    assert r.stdout.decode() == host, r.stderr.decode()
    r = run_sentry(["sh", "-c", "cat /proc/sys/net/../net/core/somaxconn; cat /proc/sys/net/nosuch; "
                    "ls /proc/sys/net/ipv4 | grep -cx tcp_fastopen"])
    assert r.stdout.decode().split() == ["4096", "1"], r.stdout.decode() + r.stderr.decode()
    # under --network=host a key only root may read is never read for a guest
    r = run_sentry(["sh", "-c", "cat /proc/sys/net/ipv4/tcp_fastopen_key; ls /proc/sys/net/ipv4/"],
                   extra=["--network=host"])
    assert "tcp_fastopen_key" not in r.stdout.decode() and "tcp_fastopen\n" in r.stdout.decode(), r.stdout

NET_SYSCTL_WRITES = r"""
import errno, os, socket, stat, subprocess
def setting(name, value=None, mode="w"):
    path = "/proc/sys/net/" + name
    try:
        if value is not None:
            with open(path, mode) as f:
                f.write(value)
        return open(path).read().strip()
    except OSError as e:
        return errno.errorcode[e.errno]
print(setting("core/somaxconn", "1024"), setting("ipv4/ip_local_port_range", "20000 20100"),
      setting("ipv4/tcp_fin_timeout", "17"), setting("ipv4/tcp_keepalive_time", "600"),
      setting("ipv4/tcp_syncookies", "0"), setting("ipv4/conf/lo/accept_local", "1"),
      setting("ipv6/conf/lo/hop_limit", "7"), setting("core/somaxconn", "bad"))
s = socket.socket()
s.bind(("127.0.0.1", 0))
print("port in range", 20000 <= s.getsockname()[1] <= 20100)
s.listen(5000)
ss = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout.split()
print("backlog", ss[2])
for name in ("core/somaxconn", "ipv4/route/flush", "ipv4/tcp_fastopen_key", "core/wmem_max"):
    st = os.stat("/proc/sys/net/" + name)
    print(name, oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_size)
print("flush", setting("ipv4/route/flush", "1"), "key", len(setting("ipv4/tcp_fastopen_key")))
print("read-only", setting("core/wmem_max", "4096"))
os.setuid(65534)
print("not root", setting("core/somaxconn", "1"), setting("ipv4/tcp_fastopen_key"), setting("core/somaxconn"))
"""


def test_net_sysctls_written_in_the_sandboxs_namespace():
    """The sandbox's root sets its network namespace's settings through
    /proc/sys/net (somaxconn, the port range, tcp_* knobs, per-interface
    ones) and they act there (an ephemeral port in the range, a listener's
    backlog capped), as root in a fresh namespace natively (unshare -n);
    write-only and root-only files are root's; a user that is not root may
    not write (EACCES); the host's values stay as they were."""
    names = ("core/somaxconn", "ipv4/ip_local_port_range", "ipv4/tcp_fin_timeout", "ipv4/tcp_syncookies")
    host = {n: open(f"/proc/sys/net/{n}").read() for n in names}
    native = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up; python3 -c "$0"', NET_SYSCTL_WRITES],
                            capture_output=True, text=True)
    assert native.returncode == 0 and "not root EACCES EACCES 1024" in native.stdout, native.stdout + native.stderr
    boxed = run_sentry(["python3", "-c", NET_SYSCTL_WRITES], extra=["--dns", "none"])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()
    assert {n: open(f"/proc/sys/net/{n}").read() for n in names} == host


FORWARDING = r"""
import errno, os, subprocess
def w(path, value, how="write"):
    try:
        fd = os.open(path, os.O_RDWR)
        if how == "write":
            n = os.write(fd, value)
        elif how == "pwrite":
            n = os.pwrite(fd, value, 0)
        elif how == "writev":
            n = os.writev(fd, [value[:1], value[1:]])
        elif how == "dup":
            d = os.dup(fd)
            n = os.write(d, value)
            os.close(d)
        os.close(fd)
        return n
    except OSError as e:
        return errno.errorcode[e.errno]
forward = "/proc/sys/net/ipv4/ip_forward"
for how, v in (("write", b"1\n"), ("pwrite", b"0"), ("writev", b"1\n"), ("dup", b"0\n"), ("write", b"bad")):
    print(how, w(forward, v, how), open(forward).read().strip())
print(w("/proc/sys/net/ipv4/conf/lo/forwarding", b"1"), open("/proc/sys/net/ipv4/conf/all/forwarding").read().strip(),
      open("/proc/sys/net/ipv4/conf/lo/forwarding").read().strip())
r = subprocess.run(["sysctl", "-w", "net.ipv4.ip_forward=1"], capture_output=True, text=True)
print(r.stdout.strip(), r.stderr.strip())
r = subprocess.run(["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward; cat /proc/sys/net/ipv4/ip_forward"],
                   capture_output=True, text=True)
print(r.stdout.strip(), r.stderr.strip())
r = subprocess.run(["capsh", "--drop=cap_net_admin", "--", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
                   capture_output=True, text=True)
print("without CAP_NET_ADMIN", "Operation not permitted" in r.stderr, open(forward).read().strip())
os.setuid(65534)
print("not root", w(forward, b"1"))
"""


def test_forwarding_written_by_the_sandboxs_root():
    """IPv4 forwarding, which the kernel lets only a holder of CAP_NET_ADMIN
    over the namespace write, is set by the sandbox's root (write, pwrite,
    writev, a dup, sysctl -w, the shell) as by root in a fresh namespace
    natively; the kernel's own EINVAL for a bad value; EPERM once
    CAP_NET_ADMIN is dropped, EACCES for a user that is not root; the host's
    value never changes."""
    names = ("ipv4/ip_forward", "ipv4/conf/all/forwarding", "ipv4/conf/lo/forwarding")
    host = {n: open(f"/proc/sys/net/{n}").read() for n in names}
    native = subprocess.run(["unshare", "-n", "python3", "-c", FORWARDING], capture_output=True, text=True)
    assert native.returncode == 0 and "not root EACCES" in native.stdout and "write 2 1" in native.stdout, \
        native.stdout + native.stderr
    boxed = run_sentry(["python3", "-c", FORWARDING])
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()
    assert {n: open(f"/proc/sys/net/{n}").read() for n in names} == host


def test_net_sysctls_written_unprivileged(as_nobody):  # noqa: F811
    """Run unprivileged, the guest's host process could write no setting of
    the helper's namespace: the helper writes each one for the sandbox's
    root, so the same script as root in a fresh namespace natively gives
    the same lines."""
    script = FORWARDING.replace("os.setuid(65534)", "print(setting('core/somaxconn', '1024'), "
                                "setting('ipv4/tcp_fin_timeout', '17'))\nos.setuid(65534)")
    script = NET_SYSCTL_WRITES.split("print(setting(")[0] + script
    native = subprocess.run(["unshare", "-n", "python3", "-c", script], capture_output=True, text=True)
    assert native.returncode == 0 and "1024 17" in native.stdout, native.stdout + native.stderr
    r = as_nobody(["--", "python3", "-c", script])
    assert r.stdout.decode() == native.stdout, r.stderr.decode()


RACE_FORWARDING = r"""
import os, random, threading
forward = "/proc/sys/net/ipv4/ip_forward"
setting = os.open(forward, os.O_WRONLY)
reader = os.open(forward, os.O_RDONLY)
other = os.open("/var/tmp/" + os.environ["VICTIM"], os.O_RDONLY)
N = 40
stop = False
def swap():
    while not stop:
        os.dup2(random.choice((setting, reader, other)), N)
results = set()
def write():
    for i in range(400):
        try:
            results.add(os.write(N, b"1\n" if i % 2 else b"0\n"))
        except OSError as e:
            results.add(e.errno)
t = threading.Thread(target=swap)
t.start()
w = threading.Thread(target=write)
w.start()
w.join()
stop = True
t.join()
os.dup2(setting, N)
print((sorted(results), os.write(N, b"0\n")))
"""


def test_forwarding_writes_racing_fd_swaps():
    """A thread writes on an fd number that another swaps between the
    setting opened for writing, the setting opened read-only and a
    read-only file: each write is the setting's (by the helper, for root)
    or the kernel's own answer on what the number holds (EBADF, or EPERM),
    never the helper's write on another file; the host's value never
    changes; once the swapping stops, the copy's writes are root's."""
    victim = f"sentry-race-{os.getpid()}"
    path = "/var/tmp/" + victim
    with open(path, "w") as f:
        f.write("untouched\n")
    before = open("/proc/sys/net/ipv4/ip_forward").read()
    try:
        r = run_sentry(["python3", "-c", RACE_FORWARDING], env=dict(os.environ, VICTIM=victim), timeout=120)
        got, after = eval(r.stdout.decode() or "None, None")
        # 1 (EPERM): a write passed to the kernel as what the number held
        # when checked, which met the setting opened for writing by then, or
        # made before the trap of a copy just made was loaded: the kernel's
        # own refusal, as for any guest write there
        assert got is not None and set(got) <= {1, 2, 9} and after == 2, r.stdout + r.stderr
        assert open(path).read() == "untouched\n"
        assert open("/proc/sys/net/ipv4/ip_forward").read() == before
    finally:
        os.unlink(path)


NET_SYSCTL_REOPEN = r"""
import errno, os
fd = os.open("/proc/sys/net/core/somaxconn", os.O_RDONLY)
print(os.readlink(f"/proc/self/fd/{fd}"))
w = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
print(os.write(w, b"777"), os.pread(w, 10, 0), os.read(fd, 10), open("/proc/sys/net/core/somaxconn").read())
os.setuid(65534)
try:
    os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
except OSError as e:
    print("not root", errno.errorcode[e.errno])
print(os.read(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY), 10))
"""


def test_net_sysctl_reopened_through_proc_fd():
    """A setting's fd reopened through /proc/self/fd/N for writing is a new
    open of that setting with the access asked, as natively (it was a dup
    of N, read-only: EBADF at the write); one that is not root still may
    not write."""
    native = subprocess.run(["unshare", "-n", "python3", "-c", NET_SYSCTL_REOPEN], capture_output=True, text=True)
    assert native.returncode == 0 and "not root EACCES" in native.stdout, native.stdout + native.stderr
    for extra in ([], ["--rootfs", "/"]):
        boxed = run_sentry(["python3", "-c", NET_SYSCTL_REOPEN], extra=extra)
        assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()


def test_net_sysctls_unprivileged(as_nobody):  # noqa: F811
    """An unprivileged sandbox's /proc/sys/net (its helper in a user
    namespace of its own) as a fresh namespace's."""
    cmd = "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/core/somaxconn; ls /proc/sys/net/ipv4/conf"
    native = native_sandbox(cmd)
    assert native.returncode == 0 and "4096" in native.stdout, native.stderr
    r = as_nobody(["--", "sh", "-c", cmd])
    assert r.stdout.decode() == native.stdout, r.stderr.decode()

def test_eth0_comes_back_with_its_route():
    """A guest root may take eth0 down and up (sentry/net/links.py); up, it
    has its address and default route again (natively the route would be
    gone: sentry puts back what it configured)."""
    r = run_sentry(["sh", "-c", "ip link set eth0 mtu 1400 down; ip route; echo; ip link set eth0 up; ip route; "
                    "ip -o link show eth0 | cut -d' ' -f2-5"], extra=["--dns", "none"])
    assert r.stdout.decode().splitlines() == [
        "", "default via 10.0.2.2 dev eth0 ", "10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15 ",
        "eth0@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400"], r.stderr.decode()


ABSTRACT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(b'\\0' + sys.argv[1].encode()); print('CONNECTED')
except OSError as e:
    print('refused', e.errno)
s = socket.socket(socket.AF_UNIX); s.bind(b'\\0' + sys.argv[1].encode()); s.listen(1)
print(s.getsockname())
"""


@pytest.mark.parametrize("mode", ISOLATED + ["host"])
def test_abstract_unix_names_isolated(mode):
    name = f"sentry-test-{os.getpid()}-{mode}"
    host = socket.socket(socket.AF_UNIX)
    host.bind(b"\0" + name.encode())
    host.listen(1)
    try:
        r = run_sentry(["python3", "-c", ABSTRACT, name], extra=[f"--network={mode}"])
        out = r.stdout.decode().splitlines()
        assert out[0] == "refused 111", r.stderr.decode()
        if mode != "host":
            assert out[1] == repr(b"\0" + name.encode())     # the guest's own name, no prefix
    finally:
        host.close()


HTTP = """
set -e
cd /tmp && echo served-inside > page.txt
python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &
for i in $(seq 50); do curl -s http://127.0.0.1:8000/page.txt && break; sleep 0.1; done
wget -q -O- http://localhost:8000/page.txt
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://[::1]:8000/page.txt").read().decode().strip())' || true
kill %1
"""


def test_client_and_server_inside():
    r = run_sentry(["sh", "-c", HTTP.replace("--bind 127.0.0.1", "--bind ::")])
    assert r.stdout.decode().splitlines()[:3] == ["served-inside"] * 3, r.stderr.decode()


def test_unprivileged_sandbox_is_isolated(as_nobody):  # noqa: F811
    srv = _host_server()
    try:
        r = as_nobody(["--", "python3", "-c", CONNECT, "127.0.0.1", str(srv.getsockname()[1])])
        assert r.stdout.decode().strip().startswith("refused"), r.stderr.decode()
        r = as_nobody(["--", "sh", "-c", "ip -o link | cut -d: -f2; hostname -I; id -u"])
        assert r.stdout.decode().split() == ["lo", "eth0@if3", "10.0.2.15", "0"], r.stderr.decode()
        r = as_nobody(["--network=host", "--", "python3", "-c", CONNECT, "127.0.0.1", str(srv.getsockname()[1])])
        assert r.stdout.decode().strip() == "CONNECTED", r.stderr.decode()
    finally:
        srv.close()


# Runs argv in a user namespace mapping the host's ids 0-65535 to themselves,
# where no further user namespace may be made (max_user_namespaces 0).
JAIL = userns_jail({"user": 0})


def test_no_user_namespaces_refuses_isolated_modes(as_nobody):  # noqa: F811
    """Where no network namespace can be had, none and sandbox are refused
    with one line, never run on the host's network."""
    jail = [sys.executable, "-c", JAIL]
    for mode in ISOLATED:
        r = subprocess.run(jail + as_nobody.command + [f"--network={mode}", "--", "echo", "ran"],
                           env=as_nobody.env, cwd="/", capture_output=True, timeout=60)
        assert r.returncode == 125 and r.stdout == b"", r
        err = r.stderr.decode().strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"sentry: --network={mode}: the sandbox's network needs"), err
    r = subprocess.run(jail + as_nobody.command + ["--network=host", "--", "echo", "ran"],
                       env=as_nobody.env, cwd="/", capture_output=True, timeout=60)
    assert r.stdout == b"ran\n", r.stderr.decode()


def test_bad_mode_is_refused():
    r = subprocess.run(SENTRY + ["--network=bridge", "--", "true"], capture_output=True)
    assert r.returncode != 0 and b"--network" in r.stderr


# ---- outbound (--network=sandbox): servers in network namespaces of the tests' own

SERVE = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port)); s.listen(64)
    while True:
        c, a = s.accept()
        c.sendall(b'token-%d\\n' % port); c.close()
for p in (8081, 8082):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
def answer():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((sys.argv[1], 8081))
    while True:
        _, a = u.recvfrom(100)
        u.sendto(b'udp-token', a)
threading.Thread(target=answer, daemon=True).start()
def echo():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((sys.argv[1], 8083))
    while True:
        d, a = u.recvfrom(65536)
        u.sendto(b'echo:' + d, a)
threading.Thread(target=echo, daemon=True).start()
print('ready', flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def remote():
    """A 'remote' host on this machine: a network namespace behind a veth
    pair (host side .1, its side .2), with servers on 8081 and 8082, one
    that answers datagrams on 8081/udp and one that echoes them on 8083/udp."""
    pid = os.getpid()
    ns, net = f"sntest{pid}", f"10.232.{pid % 250}"
    with veth_namespace(ns, f"snh{pid}", f"snn{pid}", net, "the outbound tests"):
        srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVE, f"{net}.2"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert srv.stdout.readline() == b"ready\n"
        try:
            yield net
        finally:
            srv.kill()
            srv.wait()


FETCH = """
import socket, sys
for dest in sys.argv[1:]:
    host, port = dest.rsplit(':', 1)
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    try:
        s.connect((host, int(port)))
        print(dest, s.recv(100).decode().strip())
    except OSError as e:
        print(dest, 'errno', e.errno)
"""


def _fetch(dests, extra=(), mode="sandbox"):
    r = run_sentry(["python3", "-c", FETCH, *dests], extra=[f"--network={mode}", *extra])
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().splitlines()


def test_outbound_reaches_allowed_servers(remote):
    assert _fetch([f"{remote}.2:8081", f"{remote}.2:8082", f"::ffff:{remote}.2:8081"]) == [
        f"{remote}.2:8081 token-8081", f"{remote}.2:8082 token-8082", f"::ffff:{remote}.2:8081 token-8081"]
    # a real client: curl, blocking and from a shell
    r = run_sentry(["sh", "-c", f"curl -s -m 10 telnet://{remote}.2:8081 </dev/null"])
    assert r.stdout == b"token-8081\n", r.stderr.decode()


def test_outbound_policy_refuses(remote, tmp_path):
    trail = tmp_path / "audit"
    got = _fetch([f"{remote}.2:8081", f"{remote}.2:8082", f"{remote}.1:8081", "169.254.169.254:80"],
                 extra=["--net-allow", f"{remote}.0/24:8081", "--audit", str(trail)])
    assert got == [f"{remote}.2:8081 token-8081", f"{remote}.2:8082 errno 111",
                   f"{remote}.1:8081 errno 111", "169.254.169.254:80 errno 111"]
    import json
    events = [json.loads(line) for line in trail.read_text().splitlines()]
    refused = [(e["address"], e["port"], e["why"], e["errno"]) for e in events if e["kind"] == "net-refused"]
    assert refused == [(f"{remote}.2", 8082, "not allowed", "ECONNREFUSED"),
                       (f"{remote}.1", 8081, "host", "ECONNREFUSED"),
                       ("169.254.169.254", 80, "reserved", "ECONNREFUSED")]


def test_outbound_default_refuses_the_host_itself(remote):
    """The host's own addresses (the veth's host side here) are never reached."""
    srv = _host_server("0.0.0.0")
    try:
        port = srv.getsockname()[1]
        assert _fetch([f"{remote}.1:{port}"] + [f"{a}:{port}" for a in _host_addresses()]) == [
            f"{remote}.1:{port} errno 111"] + [f"{a}:{port} errno 111" for a in _host_addresses()]
    finally:
        srv.close()


UDP_OUT = """
import ctypes, socket, struct, sys
dest = (sys.argv[1], 8081)
def answer(s):
    s.settimeout(1)
    try:
        return s.recv(100).decode()
    except socket.timeout:
        return 'nothing'
    except OSError as e:
        return f'errno {e.errno}'
def sendmmsg(s):
    libc = ctypes.CDLL(None, use_errno=True)
    name = ctypes.create_string_buffer(struct.pack('=HH4s8x', 2, socket.htons(dest[1]), socket.inet_aton(dest[0])), 16)
    data = ctypes.create_string_buffer(b'x', 1)
    iov = (ctypes.c_uint64 * 2)(ctypes.addressof(data), 1)
    mm = ctypes.create_string_buffer(struct.pack('=QI4xQQQQI4xI4x', ctypes.addressof(name), 16,
                                                 ctypes.addressof(iov), 1, 0, 0, 0, 0), 64)
    if libc.sendmmsg(s.fileno(), mm, 1, 0) < 0:
        raise OSError(ctypes.get_errno(), 'sendmmsg')
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for how, send in (('sendto', lambda: u.sendto(b'x', dest)), ('sendmsg', lambda: u.sendmsg([b'x'], [], 0, dest)),
                  ('sendmmsg', lambda: sendmmsg(u))):
    try:
        send()
        print(how, 'sent', answer(u))
    except OSError as e:
        print(how, 'errno', e.errno)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.setsockopt(socket.IPPROTO_IP, 11, 1)          # IP_RECVERR: the ICMP error a router sends
try:
    c.connect(dest)
    print('connected', c.send(b'x'), answer(c))
except OSError as e:
    print('connect errno', e.errno)
"""


def test_udp_to_the_outside(remote, tmp_path):
    """UDP to an allowed destination goes through its relay (net/udp.py):
    sendto, sendmsg, sendmmsg and a connected socket's send are answered as
    from the host (the control).  A destination --net-allow refuses is
    ENETUNREACH (one audit line), connecting to it ECONNREFUSED as for TCP;
    in --network=none the datagram and the connect are ENETUNREACH."""
    host = subprocess.run([sys.executable, "-c", UDP_OUT, f"{remote}.2"], capture_output=True, text=True)
    assert host.stdout.splitlines() == ["sendto sent udp-token", "sendmsg sent udp-token", "sendmmsg sent udp-token",
                                        "connected 1 udp-token"], host.stderr
    r = run_sentry(["python3", "-c", UDP_OUT, f"{remote}.2"], extra=["--dns", "none"])
    assert r.stdout.decode().splitlines() == host.stdout.splitlines(), r.stderr.decode()
    trail = tmp_path / "audit"
    r = run_sentry(["python3", "-c", UDP_OUT, f"{remote}.2"],
                   extra=["--audit", str(trail), "--net-allow", f"{remote}.0/24:8082"])
    assert r.stdout.decode().splitlines() == ["sendto errno 101", "sendmsg errno 101", "sendmmsg errno 101",
                                              "connect errno 111"], r.stderr.decode()
    import json
    events = [json.loads(line) for line in trail.read_text().splitlines()]
    assert [(e["address"], e["port"], e["why"], e["errno"]) for e in events if e["kind"] == "net-refused"] == [
        (f"{remote}.2", 8081, "not allowed", "ENETUNREACH"), (f"{remote}.2", 8081, "not allowed", "ECONNREFUSED")]
    r = run_sentry(["python3", "-c", UDP_OUT, f"{remote}.2"], extra=["--network=none"])
    assert r.stdout.decode().splitlines() == ["sendto errno 101", "sendmsg errno 101", "sendmmsg errno 101",
                                              "connect errno 101"], r.stderr.decode()


def test_none_mode_has_no_outbound(remote):
    assert _fetch([f"{remote}.2:8081"], mode="none") == [f"{remote}.2:8081 errno 101"]


def test_bad_net_allow_is_refused():
    r = subprocess.run(SENTRY + ["--net-allow", "10.0.0.0/33", "--", "true"], capture_output=True)
    assert r.returncode == 125 and r.stderr.decode().startswith("sentry: --net-allow 10.0.0.0/33:")
    r = subprocess.run(SENTRY + ["--network=none", "--net-allow", "10.0.0.0/8", "--", "true"], capture_output=True)
    assert r.returncode == 125


def test_outbound_socket_cannot_be_turned_to_the_host(remote, cbin, outside_tmp):
    """A thread swaps fd X between a sandbox socket and an outbound host
    socket H while another disconnects, listens, binds and connects X toward
    a server on the host's loopback: the server is never reached and H stays
    connected to its peer, never listening."""
    import shutil
    prog = os.path.join(outside_tmp, "net_race")
    shutil.copy(cbin("net_race"), prog)
    srv = _host_server()
    srv.settimeout(0)
    try:
        r = run_sentry([prog, "127.0.0.1", str(srv.getsockname()[1]), f"{remote}.2", "8081", "3000"],
                       timeout=300)
        assert r.stdout.decode().splitlines() == ["H intact", "rounds 3000"], r.stderr.decode()
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()


DROPPED, CLOSED = 8085, 8099        # the remote's SYNs-dropped port and a port nothing listens on


def _drop_syns(remote):
    """The remote drops SYNs to DROPPED (a firewall rule of its namespace)."""
    ns = f"sntest{os.getpid()}"
    rule = ["INPUT", "-p", "tcp", "--dport", str(DROPPED), "-j", "DROP"]
    if subprocess.run(["ip", "netns", "exec", ns, "iptables", "-C", *rule], capture_output=True).returncode:
        subprocess.run(["ip", "netns", "exec", ns, "iptables", "-A", *rule], check=True)


@pytest.mark.parametrize("threads", ["alone", "threads"])
def test_nonblocking_connect_as_natively(remote, cbin, outside_tmp, threads):
    """A C program's non-blocking and blocking connects to a listening port,
    a closed one and one whose SYNs are dropped (EINPROGRESS at once,
    EALREADY, poll/epoll/select, SO_ERROR, 0 then EISCONN, a failed
    socket connecting again, SO_SNDTIMEO, EINTR, SA_RESTART, TCP_SYNCNT)
    see the same as on the host (sentry/net/connect.py), alone or beside a
    thread (its connects then go through a hidden slot, syscalls/slots.py)."""
    import shutil
    _drop_syns(remote)
    prog = os.path.join(outside_tmp, "nbconnect")
    shutil.copy(cbin("nbconnect"), prog)
    args = [prog, f"{remote}.2", "8081", str(CLOSED), str(DROPPED), threads]
    native = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert native.returncode == 0 and "dropped again EALREADY" in native.stdout, native.stdout + native.stderr
    r = run_sentry(args, extra=["--dns", "none"], timeout=120)
    assert r.stdout.decode() == native.stdout, r.stderr.decode()


@pytest.mark.parametrize("port", [DROPPED, CLOSED])
def test_connecting_socket_cannot_be_turned_to_the_host(remote, cbin, outside_tmp, port):
    """An outbound socket H still connecting (SYNs dropped), or whose
    handshake failed (a closed port): a thread swaps fd X between a
    sandbox socket and H while another disconnects, listens, connects,
    sends with MSG_FASTOPEN (sendto, sendmsg, sendmmsg), binds and shuts X down toward a server on the
    host's loopback.  The server is never reached, and H still refuses
    listen (it never became unconnected)."""
    import shutil
    _drop_syns(remote)
    prog = os.path.join(outside_tmp, "net_connecting_race")
    shutil.copy(cbin("net_connecting_race"), prog)
    srv = _host_server()
    srv.settimeout(0)
    try:
        r = run_sentry([prog, "127.0.0.1", str(srv.getsockname()[1]), f"{remote}.2", str(port), "3000"],
                       extra=["--dns", "none"], timeout=300)
        assert r.stdout.decode().splitlines() == ["H listen EINVAL", "rounds 3000"], r.stderr.decode()
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()


OUTBOUND_LISTED = """
import os, socket, subprocess, sys, time
remote = sys.argv[1]
a = socket.create_connection((remote, 8081))
b = socket.socket(socket.AF_INET6); b.connect(('::ffff:' + remote, 8081))
c = socket.socket(); c.setblocking(False); c.connect_ex((remote, int(sys.argv[2])))
for s in (a, b):                          # the server's token and its close: CLOSE_WAIT
    while s.recv(100):
        pass
mine = {os.fstat(s.fileno()).st_ino: s.getsockname()[:2] for s in (a, b, c)}
for table in ('tcp', 'tcp6'):
    for line in open('/proc/net/' + table).read().splitlines()[1:]:
        f = line.split()
        if int(f[9]) in mine:
            port = int(f[1].split(':')[1], 16)
            print(table, f[3], 'inode and port of its fd', port == mine[int(f[9])][1], f[2].split(':')[1])
ports = [':%d ' % port for _, port in mine.values()]
def ours(cmd, skip):
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[skip:]
    print(cmd[0], sorted(' '.join(l.split()).replace(p, ':P ') for l in out for p in ports if p in l + ' '))
ours(['netstat', '-tn'], 2)
ours(['ss', '-tn'], 1)
ours(['ss', '-tn', 'state', 'syn-sent'], 1)
"""


def test_outbound_connections_listed(remote):
    """The sandbox's /proc/net/tcp and tcp6, netstat -tn and ss -tn (its
    sock_diag dumps, a state filter too) list its outbound connections
    (established, closed by the peer, still connecting) with the sandbox's
    address and the port its getsockname gives, the inode its fd names, the
    host's state -- as the host lists them for a program run there, but
    for the local address."""
    _drop_syns(remote)
    native = subprocess.run([sys.executable, "-c", OUTBOUND_LISTED, f"{remote}.2", str(DROPPED)],
                            capture_output=True, text=True, timeout=60)
    assert native.returncode == 0 and native.stdout.count("True") == 3, native.stdout + native.stderr
    r = run_sentry(["python3", "-c", OUTBOUND_LISTED, f"{remote}.2", str(DROPPED)], extra=["--dns", "none"])
    assert "ss ['CLOSE-WAIT" in native.stdout and "SYN-SENT" in native.stdout, native.stdout
    expect = native.stdout.replace(f"{remote}.1:", "10.0.2.15:").replace(f"{remote}.1]", "10.0.2.15]")
    assert r.stdout.decode() == expect, r.stderr.decode()
    assert f"{remote}.1" not in r.stdout.decode()


SS_FILTERED = """
import re, socket, subprocess, sys
remote, dropped = sys.argv[1], sys.argv[2]
a = socket.create_connection((remote, 8081))
b = socket.socket(socket.AF_INET6); b.connect(('::ffff:' + remote, 8081))
c = socket.socket(); c.setblocking(False); c.connect_ex((remote, int(dropped)))
for s in (a, b):                          # the server's token and its close: CLOSE_WAIT
    while s.recv(100):
        pass
here, port_a = a.getsockname()[:2]
ports = {s.getsockname()[1]: 'P%d' % i for i, s in enumerate((a, b, c))}
STABLE = ('wscale', 'rto', 'rtt', 'mss', 'pmtu', 'rcvmss', 'advmss', 'cwnd', 'bytes_received', 'segs_out', 'segs_in')
def ours(label, args):
    out, got = subprocess.run(['ss'] + args.split(), capture_output=True, text=True).stdout.splitlines(), []
    for i, line in enumerate(out):
        mine = [p for p in ports if re.search(':%d\\s' % p, line + ' ')]
        if not mine:
            continue
        row = ' '.join(line.split()).replace(':%d ' % mine[0], ':' + ports[mine[0]] + ' ')
        more = out[i + 1] if i + 1 < len(out) and out[i + 1][:1].isspace() else ''
        if 'skmem' in more:
            row += ' ' + re.sub('[0-9]+', 'N', more.strip())
        elif more:
            words = more.split()
            row += ' ' + words[0] + ' ' + ' '.join(k for k in STABLE if re.search('(^|\\s)%s:' % k, more))
        got.append(row)
    print(label, sorted(got))
ours('dport', '-tn dport = :8081')
ours('other dport', '-tn dport = :8082')
ours('dst', '-tn dst ' + remote)
ours('dst net v4', '-4tn dst %s/24 and dport le :8081' % remote)
ours('src port', '-tn sport = :%d' % port_a)
ours('src', '-tn src ' + here)
ours('not src', '-tn not src ' + here)
ours('not dport', '-tn not dport = :8082')
ours('syn-sent', '-tn state syn-sent dport = :' + dropped)
ours('memory', '-tnm dport = :8081')
ours('info', '-tni dport = :8081')
ours('info state', '-tni state close-wait')
"""


def test_outbound_connections_in_filtered_ss(remote):
    """ss with a filter (its bytecode, run on the sandbox's view: ports,
    addresses, states, `not`) and with -i and -m (the host kernel's
    tcp_info, congestion control and memory counters for the socket) lists
    the sandbox's outbound connections as the host lists a program's own,
    but for the local address (sentry/net/diag.py)."""
    _drop_syns(remote)
    args = ["python3", "-c", SS_FILTERED, f"{remote}.2", str(DROPPED)]
    native = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert native.returncode == 0 and native.stdout.count("CLOSE-WAIT") >= 12, native.stdout + native.stderr
    assert "skmem:(rN,rbN" in native.stdout and "rtt mss" in native.stdout, native.stdout
    r = run_sentry(args, extra=["--dns", "none"])
    expect = native.stdout.replace(f"{remote}.1:", "10.0.2.15:").replace(f"{remote}.1]", "10.0.2.15]")
    assert r.stdout.decode() == expect, r.stderr.decode()
    # the host's own connections (its dump is the Sentry's source) never show
    srv = _host_server()
    host_pair = socket.create_connection(srv.getsockname())
    try:
        ports = {srv.getsockname()[1], host_pair.getsockname()[1]}
        r = run_sentry(["python3", "-c", "import socket, subprocess, sys\n"
                        "s = socket.create_connection((sys.argv[1], 8081))\n"
                        "print(subprocess.run(['ss', '-tanime'], capture_output=True, text=True).stdout)",
                        f"{remote}.2"], extra=["--dns", "none"])
        out = r.stdout.decode()
        assert f"{remote}.2:8081" in out and f"{remote}.1" not in out, out
        assert not any(f":{p} " in out for p in ports), out
    finally:
        host_pair.close()
        srv.close()

def test_diag_filter_on_any_bytes():
    """The sock_diag filter the Sentry runs (the kernel's inet_diag_bc_run,
    sentry/net/diag.py) on a guest's bytes: any program ends with a yes or
    a no, never an error or a loop; known programs decide as the kernel."""
    import random
    import struct
    from sentry.net import diag
    v4 = {"family": socket.AF_INET, "sport": 40000, "dport": 80, "saddr": bytes([10, 0, 2, 15]),
          "daddr": bytes([10, 1, 2, 3]), "ifindex": 0, "auto": True, "mark": 0}
    mapped = dict(v4, family=socket.AF_INET6, saddr=bytes(10) + b"\xff\xff" + v4["saddr"],
                  daddr=bytes(10) + b"\xff\xff" + v4["daddr"])
    op = lambda code, yes, no: struct.pack("<BBH", code, yes, no)
    dcond = lambda fam, prefix, port, addr: struct.pack("<BBxxi", fam, prefix, port) + addr
    dst_net = op(diag.BC_D_COND, 16, 20) + dcond(socket.AF_INET, 16, -1, bytes([10, 1, 0, 0]))
    for prog, entry, want in [
            (op(diag.BC_D_EQ, 8, 12) + op(0, 0, 80), v4, True),
            (op(diag.BC_D_EQ, 8, 12) + op(0, 0, 81), v4, False),
            (op(diag.BC_S_GE, 8, 12) + op(0, 0, 1024), v4, True),
            (dst_net, v4, True), (dst_net, mapped, True),
            (op(diag.BC_D_COND, 16, 20) + dcond(socket.AF_INET, 16, -1, bytes([10, 2, 0, 0])), mapped, False),
            (op(diag.BC_AUTO, 4, 8), v4, True), (op(diag.BC_AUTO, 4, 8), dict(v4, auto=False), False),
            (op(diag.BC_JMP, 4, 12) + op(diag.BC_NOP, 4, 4), v4, False),
            (op(diag.BC_JMP, 4, 8) + op(diag.BC_NOP, 4, 4), v4, True)]:
        assert diag.run_bytecode(prog, entry) is want, (prog, entry)
    rng = random.Random(11)
    for _ in range(20000):
        prog = bytes(rng.choice([0, 1, 4, 6, 7, 8, 12, 255]) if i % 4 == 0 else rng.randrange(256)
                     for i in range(rng.randrange(40)))
        assert diag.run_bytecode(prog, rng.choice([v4, mapped])) in (True, False)

def test_unprivileged_outbound(remote, as_nobody):  # noqa: F811
    r = as_nobody(["--", "python3", "-c", FETCH, f"{remote}.2:8081", f"{remote}.1:8081"])
    assert r.stdout.decode().splitlines() == [f"{remote}.2:8081 token-8081", f"{remote}.1:8081 errno 111"], \
        r.stderr.decode()
    r = as_nobody(["--", "python3", "-c",
                   "import socket\ns = socket.socket(); s.connect(('127.0.0.2', 1)) if False else None\n"
                   "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('127.0.0.1', 9))\n"
                   "import ctypes; libc = ctypes.CDLL(None, use_errno=True)\n"
                   "print(libc.connect(u.fileno(), bytes(16), 16), ctypes.get_errno())\n"
                   f"h = socket.create_connection(('{remote}.2', 8081))\n"
                   "print(libc.connect(h.fileno(), bytes(16), 16), ctypes.get_errno())"])
    assert r.stdout.decode().split() == ["0", "0", "-1", "95"], r.stderr.decode()


FAMILIES = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for f, t, p in [(2, 3, 1), (10, 3, 58), (2, 10, 0), (17, 3, 0), (15, 3, 2), (40, 1, 0), (38, 5, 0), (45, 1, 0),
                (16, 3, 0), (16, 3, 4), (16, 3, 9), (16, 3, 16), (2, 1, 0), (10, 2, 0), (1, 1, 0),
                (0x100000002, 1, 0), (0x100000011, 3, 0), (0x100000028, 1, 0)]:
    fd = libc.syscall(41, ctypes.c_long(f), ctypes.c_long(t), ctypes.c_long(p))
    print(hex(f), t, p, 'ok' if fd >= 0 else errno.errorcode[ctypes.get_errno()])
sv = (ctypes.c_int * 2)()
for f in (1, 2, 40):
    r = libc.syscall(53, ctypes.c_long(f), ctypes.c_long(1), ctypes.c_long(0), sv)
    print('pair', f, 'ok' if r == 0 else errno.errorcode[ctypes.get_errno()])
"""


@pytest.mark.parametrize("mode", ["sandbox", "host"])
def test_socket_families(mode):
    """Raw and packet sockets and AF_KEY: EPERM, as for a process without the
    capability; netlink but route and sock_diag: EPROTONOSUPPORT; vsock, alg
    and families not named: EAFNOSUPPORT; high bits change nothing."""
    r = _py(FAMILIES, mode=mode)
    assert r.stdout.decode().splitlines() == [
        "0x2 3 1 EPERM", "0xa 3 58 EPERM", "0x2 10 0 EPERM", "0x11 3 0 EPERM", "0xf 3 2 EPERM",
        "0x28 1 0 EAFNOSUPPORT", "0x26 5 0 EAFNOSUPPORT", "0x2d 1 0 EAFNOSUPPORT",
        "0x10 3 0 ok", "0x10 3 4 ok", "0x10 3 9 EPROTONOSUPPORT", "0x10 3 16 EPROTONOSUPPORT",
        "0x2 1 0 ok", "0xa 2 0 ok", "0x1 1 0 ok",
        "0x100000002 1 0 ok", "0x100000011 3 0 EPERM", "0x100000028 1 0 EAFNOSUPPORT",
        "pair 1 ok", "pair 2 ENOTSUP", "pair 40 EAFNOSUPPORT"], r.stderr.decode()


# ---- /proc/net: the kernel's view from inside the sandbox's namespace

PROC_NET = """
import socket, subprocess
t = socket.create_server(('127.0.0.1', 4321)); t6 = socket.create_server(('::1', 4322), family=socket.AF_INET6)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::1', 5353))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.bind(('127.0.0.1', 5354))
x = socket.socket(socket.AF_UNIX); x.bind(b'\\0sentry-proc-net-test'); x.listen(1)
for cmd in (['netstat', '-tuln'], ['netstat', '-xl'], ['ifconfig', 'lo'], ['ss', '-tuln']):
    print(subprocess.run(cmd, capture_output=True, text=True).stdout, end='')
print(sorted(l.split()[0] for l in open('/proc/net/dev').read().splitlines()[2:]))
"""


def _inode_free(text):
    """netstat -x prints inode numbers, which differ between any two runs."""
    import re
    return re.sub(r"\b\d{4,}\b", "N", text)


def test_proc_net_is_the_sandboxs(tmp_path):
    """netstat, ifconfig and ss inside see what they see natively in a fresh
    network namespace set up as sentry sets the sandbox's: the sandbox's
    sockets and interfaces, no host listener (one is listening now)."""
    host = _host_server("0.0.0.0")
    port = host.getsockname()[1]
    try:
        boxed = run_sentry(["python3", "-c", PROC_NET], extra=["--dns", "none"])
        native = native_sandbox('python3 -c "$1"', PROC_NET)
    finally:
        host.close()
    assert native.returncode == 0, native.stderr
    assert boxed.returncode == 0, boxed.stderr.decode()
    assert _inode_free(boxed.stdout.decode()) == _inode_free(native.stdout)
    out = boxed.stdout.decode()
    assert "127.0.0.1:4321" in out and "sentry-proc-net-test" in out and "['eth0:', 'lo:']" in out
    assert f":{port} " not in out


def test_proc_net_is_listed():
    r = run_sentry(["sh", "-c", "ls /proc | grep -x net; ls /proc/net | grep -c -x -e tcp -e udp -e unix -e dev"])
    assert r.stdout.split() == [b"net", b"4"], r.stderr.decode()


SHORT_NAMES = r'''
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
name = ctypes.create_string_buffer(b"\x02\x00\x00\x50\x7f\x00\x00\x01" + b"\0" * 8)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
data = ctypes.create_string_buffer(b"x")
iov = iovec(ctypes.addressof(data), 1)
def r(v):
    return "ok" if v >= 0 else errno.errorcode[ctypes.get_errno()]
for fam, kind in ((socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_INET, socket.SOCK_STREAM),
                  (socket.AF_INET6, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_DGRAM)):
    for n in (0, 1):
        s = socket.socket(fam, kind)
        msg = msghdr(ctypes.addressof(name), n, ctypes.addressof(iov), 1, None, 0, 0)
        print(fam, kind, n, r(libc.sendto(s.fileno(), data, 1, 0, name, n)),
              r(libc.sendmsg(s.fileno(), ctypes.byref(msg), 0)),
              r(libc.connect(s.fileno(), name, n)), r(libc.bind(s.fileno(), name, n)))
        s.close()
'''


def test_socket_names_too_short_for_a_family_as_natively():
    """A name of 0 or 1 bytes (sendto, sendmsg, connect, bind): the
    protocol's own answer (EINVAL, EDESTADDRREQ ...), as natively (LTP
    sendmsg01)."""
    native = subprocess.run(["python3", "-c", SHORT_NAMES], capture_output=True)
    boxed = run_sentry(["python3", "-c", SHORT_NAMES])
    assert native.returncode == 0 and b" 1 EINVAL" in native.stdout, native.stderr
    assert boxed.stdout == native.stdout, boxed.stderr
# ---- what an outbound socket tells of itself: the sandbox's network (net/hostsock.py)

OUTBOUND_SELF = r"""
import array, fcntl, os, socket, struct, sys
remote, host_if = sys.argv[1], sys.argv[2]

def ifconf(sock):
    buf = array.array('B', bytes(4096))
    got = fcntl.ioctl(sock.fileno(), 0x8912, struct.pack('iL', 4096, buf.buffer_info()[0]))
    raw = buf.tobytes()[:struct.unpack('iL', got)[0]]
    return [(raw[i:i + 16].rstrip(b'\0').decode(), socket.inet_ntoa(raw[i + 20:i + 24])) for i in range(0, len(raw), 40)]

def ifreq(sock, req, name):
    return fcntl.ioctl(sock.fileno(), req, struct.pack('16s24x', name.encode()))[16:]

def bind_to(sock, name):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, name.encode())
        return 0
    except OSError as e:
        return e.errno

s = socket.create_connection((remote, 8081))
fresh = socket.socket()
addr, port = s.getsockname()
print('name', addr, port > 0, 'peer', s.getpeername()[0])
b = socket.socket()
try:
    b.bind(('0.0.0.0', port))
    print('its port is free')
except OSError as e:
    print('its port is held', e.errno)
print('ifconf', ifconf(s) == ifconf(fresh), ifconf(s))
print('hwaddr', ifreq(s, 0x8927, 'eth0') == ifreq(fresh, 0x8927, 'eth0'), ifreq(s, 0x8927, 'eth0')[2:8].hex())
try:
    ifreq(s, 0x8933, host_if)
    print('host interface found')
except OSError as e:
    print('host interface', e.errno)
print('cookie', s.getsockopt(socket.SOL_SOCKET, 71, 8) == fresh.getsockopt(socket.SOL_SOCKET, 71, 8))
s.setsockopt(socket.IPPROTO_IP, 8, 1)            # IP_PKTINFO
print('pktinfo', s.recv(100).decode().strip(), s.getsockopt(socket.IPPROTO_IP, 9, 256)[16 + 4:16 + 12] == socket.inet_aton(addr) * 2)
print('bindtodevice', bind_to(s, host_if), bind_to(s, 'eth0'))
six = socket.create_connection(('::ffff:' + remote, 8082))
print('v6 name', six.getsockname()[0], six.getsockname()[1] > 0)
print('stdin', repr(socket.socket(fileno=os.dup(0)).getsockname()))
pid = os.fork()
if pid == 0:
    print('child', s.getsockname() == (addr, port), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_outbound_socket_shows_the_sandbox(remote):
    """An outbound connection's socket is the host's, yet what it tells of
    itself is the sandbox's: its name is 10.0.2.15 and a port the sandbox
    holds for it (another socket cannot bind it), interface ioctls on it list
    the sandbox's interfaces (as a fresh socket's do), a host interface's
    name is unknown to it (SIOCGIFINDEX, SO_BINDTODEVICE), its namespace
    cookie and IP_PKTINFO are the sandbox's; in a forked child too.  The
    host's side of the same connection, seen by the server, is not what
    the guest sees."""
    host_if = f"snh{os.getpid()}"
    # stdin: a host socket the Sentry did not make (its caller's), which keeps its own name
    ours, theirs = socket.socketpair()
    with ours, theirs:
        r = run_sentry(["python3", "-c", OUTBOUND_SELF, f"{remote}.2", host_if], extra=["--dns", "none"],
                       input=None, stdin=theirs)
    out = r.stdout.decode().splitlines()
    assert out == [
        f"name 10.0.2.15 True peer {remote}.2", "its port is held 98",
        "ifconf True [('lo', '127.0.0.1'), ('eth0', '10.0.2.15')]",
        "hwaddr True 525400123456", "host interface 19", "cookie True", "pktinfo token-8081 True",
        "bindtodevice 19 0", "v6 name ::ffff:10.0.2.15 True", "stdin ''", "child True"], r.stderr.decode()
    # the control: on the host, the host interface is there and bindable
    native = subprocess.run([sys.executable, "-c", OUTBOUND_SELF, f"{remote}.2", host_if],
                            capture_output=True, text=True, stdin=socket.socketpair()[1])
    lines = native.stdout.splitlines()
    assert f"name {remote}.1 True peer {remote}.2" in lines and "host interface found" in lines \
        and "bindtodevice 0 0" in lines, native.stderr


NAME_AFTER_RESET = """
import errno, socket, sys, time
remote = sys.argv[1]
x = socket.create_connection((remote, 8081))
before = x.getsockname()
while x.recv(100):                        # the token, then the server's close
    pass
for _ in range(50):                       # writes to a closed peer: its RST ends the connection
    try:
        x.send(b'x')
    except OSError as e:
        print('reset', errno.errorcode[e.errno])
        break
    time.sleep(0.01)
listed = [l for l in open('/proc/net/tcp').read().splitlines() if ':%04X ' % before[1] in l]
print('listed', len(listed))
for _ in range(int(sys.argv[2])):         # more connections than the names' table keeps by itself
    socket.create_connection((remote, 8082)).close()
after = x.getsockname()
print('same name', after == before, 'port kept', after[1] == before[1])
print('address', after[0])
"""


def test_outbound_name_outlives_the_sweep(remote):
    """A connection reset by its peer is gone from the host's TCP table, yet
    its socket keeps its name (Linux's getsockname still answers it); after
    more outbound connections than the Sentry's table of names keeps
    before it sweeps (net/hostsock.py Names), the guest still sees the
    sandbox's name, never the host's address."""
    from sentry.net.hostsock import Names
    args = ["python3", "-c", NAME_AFTER_RESET, f"{remote}.2", str(Names.SWEEP_MIN + 100)]
    native = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert native.stdout.splitlines() == ["reset EPIPE", "listed 0", "same name True port kept True",
                                          f"address {remote}.1"], native.stdout + native.stderr
    r = run_sentry(args, extra=["--dns", "none"], timeout=180)
    assert r.stdout.decode() == native.stdout.replace(f"{remote}.1", "10.0.2.15"), r.stderr.decode()

def test_outbound_socket_name_race(remote, cbin, outside_tmp):
    """A thread swaps fd X between a sandbox socket and an outbound host
    socket while another asks X its name, the interfaces and its namespace
    cookie: the Sentry answers on the socket it borrowed, so the host's
    address, interfaces and cookie never show.  Natively (the control) the
    same program sees them."""
    import shutil
    prog = os.path.join(outside_tmp, "name_race")
    shutil.copy(cbin("name_race"), prog)
    r = run_sentry([prog, f"{remote}.2", "8081", f"{remote}.1", "2000"], extra=["--dns", "none"], timeout=300)
    assert r.stdout.decode().splitlines() == ["leaks 0", "rounds 2000"], r.stderr.decode()
    native = subprocess.run([prog, f"{remote}.2", "8081", f"{remote}.1", "200"], capture_output=True, text=True)
    assert native.stdout.splitlines()[0] != "leaks 0", native.stdout


def test_udp_relay_as_natively(remote, cbin, outside_tmp):
    """A C program's UDP to an echo server outside (sendto/recvfrom,
    sendmsg, a connected socket's send and write, two sockets at once, a
    60000-byte datagram) sees the same answers, from the same address, in
    the sandbox (through the relay, net/udp.py) as on the host."""
    import shutil
    prog = os.path.join(outside_tmp, "udp_relay")
    shutil.copy(cbin("udp_relay"), prog)
    native = subprocess.run([prog, f"{remote}.2", "8083"], capture_output=True, text=True, timeout=60)
    assert native.returncode == 0 and "nothing" not in native.stdout, native.stdout + native.stderr
    r = run_sentry([prog, f"{remote}.2", "8083"], extra=["--dns", "none"])
    assert r.stdout.decode() == native.stdout, r.stderr.decode()


UDP_REFUSED = """
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
c = socket.socket(family, socket.SOCK_DGRAM); c.settimeout(5)
c.connect((sys.argv[1], int(sys.argv[2])))
for i in range(2):
    c.send(b'x')
    try:
        print('recv', c.recv(100))
    except OSError as e:
        print('recv', type(e).__name__, e.errno)
u = socket.socket(family, socket.SOCK_DGRAM); u.settimeout(0.5)
u.sendto(b'x', (sys.argv[1], int(sys.argv[2])))
try:
    print('unconnected', u.recv(100))
except OSError as e:
    print('unconnected', type(e).__name__)
"""


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_udp_port_unreachable_as_natively(remote, family):
    """A connected UDP socket to a port nothing listens on outside gets
    ECONNREFUSED after its datagram, as on the host: the relay's host
    socket learns the destination's ICMP (ICMPv6) "port unreachable", and
    the relay sends the sandbox's kernel the same error quoting the guest's
    datagram (net/udp.py); an unconnected socket hears nothing, as natively."""
    dest = f"{remote}.2" if family == "ipv4" else f"{_remote6(remote)}::2"
    args = ["python3", "-c", UDP_REFUSED, dest, "8097"]
    native = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert native.stdout.count("ConnectionRefusedError 111") == 2 and "unconnected TimeoutError" in native.stdout, \
        native.stdout + native.stderr
    r = run_sentry(args, extra=["--dns", "none"])
    assert r.stdout.decode() == native.stdout, r.stderr.decode()


UDP_REJECTED = """
import os, socket, struct, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
recverr = os.environ.get('RECVERR') == '1'
for port in sys.argv[2:]:
    c = socket.socket(family, socket.SOCK_DGRAM); c.settimeout(1)
    if recverr:
        c.setsockopt(*((socket.IPPROTO_IPV6, 25) if family == socket.AF_INET6 else (socket.IPPROTO_IP, 11)), 1)
    c.connect((sys.argv[1], int(port)))
    c.send(b'x')
    try:
        print(port, 'recv', c.recv(100))
    except OSError as e:
        print(port, 'recv', type(e).__name__, e.errno)
    if recverr:
        try:
            # errno, origin, type, code of the queued error, and who sent it (SO_EE_OFFENDER)
            _, anc, _, _ = c.recvmsg(1, 512, 0x2000)
            print(port, 'queued', [struct.unpack_from('=IBBB', d) for _, _, d in anc],
                  [socket.inet_ntop(family, d[20:24] if family == socket.AF_INET else d[24:40]) for _, _, d in anc])
        except OSError as e:
            print(port, 'queue', type(e).__name__, e.errno)
"""
# the remote rejects datagrams to these ports so (iptables REJECT), each
# ICMP answer a connected socket is told of or not (only the kernel's "hard" errors)
REJECTS = {"ipv4": {8091: "icmp-host-prohibited", 8092: "icmp-net-prohibited", 8093: "icmp-proto-unreachable",
                    8094: "icmp-host-unreachable", 8095: "icmp-admin-prohibited"},
           "ipv6": {8091: "icmp6-adm-prohibited", 8092: "icmp6-addr-unreachable", 8093: "icmp6-no-route"}}


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_udp_icmp_errors_as_natively(remote, family):
    """A connected UDP socket to a destination outside that a firewall
    rejects hears what it would on the host: EHOSTUNREACH for a host
    prohibited or filtered, ENETUNREACH for a network prohibited,
    ENOPROTOOPT, IPv6's EACCES; nothing for the "soft" errors a socket
    hears only with IP_RECVERR, and with IP_RECVERR every one of them,
    queued with its type and code and its sender's address (the relay passes on what its host
    socket's error queue holds, as an ICMP error of the same type and code:
    net/udp.py)."""
    ns = f"sntest{os.getpid()}"
    dest = f"{remote}.2" if family == "ipv4" else f"{_remote6(remote)}::2"
    tables = "iptables" if family == "ipv4" else "ip6tables"
    # the remote answers each datagram, natively's and the sandbox's alike
    # (the kernel's ICMP rate limit is per peer: the host is one for both)
    for knob in ("net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", knob], check=True)
    for port, kind in REJECTS[family].items():
        rule = ["INPUT", "-p", "udp", "--dport", str(port), "-j", "REJECT", "--reject-with", kind]
        if subprocess.run(["ip", "netns", "exec", ns, tables, "-C", *rule], capture_output=True).returncode:
            subprocess.run(["ip", "netns", "exec", ns, tables, "-A", *rule], check=True)
    args = ["python3", "-c", UDP_REJECTED, dest, *map(str, REJECTS[family])]
    native = subprocess.run(args, capture_output=True, text=True, timeout=60)
    hard = "8091 recv OSError 113" if family == "ipv4" else "8091 recv PermissionError 13"
    assert native.returncode == 0 and hard in native.stdout and "TimeoutError" in native.stdout, \
        native.stdout + native.stderr
    r = run_sentry(args, extra=["--dns", "none"])
    assert r.stdout.decode() == native.stdout, r.stderr.decode()
    # with IP_RECVERR every error is told, and queued with its type and code
    env = dict(os.environ, RECVERR="1")
    native = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert native.returncode == 0 and "TimeoutError" not in native.stdout and "queued [(" in native.stdout, \
        native.stdout + native.stderr
    assert f"['{dest}']" in native.stdout          # the remote's firewall sent each
    r = run_sentry(args, extra=["--dns", "none"], env=env)
    assert r.stdout.decode() == native.stdout, r.stderr.decode()


def _remote6(remote):
    """The remote's IPv6 prefix: its side ::2, the host's ::1 (added once)."""
    pid = os.getpid()
    net6 = f"fd00:232:{pid % 250:x}"
    sh = lambda *c: subprocess.run(c, check=True)
    sh("ip", "addr", "replace", f"{net6}::1/64", "dev", f"snh{pid}", "nodad")
    sh("ip", "netns", "exec", f"sntest{pid}", "ip", "addr", "replace", f"{net6}::2/64", "dev", f"snn{pid}", "nodad")
    return net6


UDP6 = """
import errno, socket, sys
dest = (sys.argv[1], 8083)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.settimeout(3)
u.sendto(b'one', dest); d, a = u.recvfrom(100); print('sendto', d, a[:2] == dest)
c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); c.settimeout(3)
c.connect(dest); c.send(b'two'); print('connected', c.recv(100), c.getpeername()[:2] == dest)
c.sendmsg([b'thr', b'ee']); print('sendmsg', c.recv(100))
u.sendto(b'x' * 60000, dest); d, a = u.recvfrom(65536); print('big', len(d), a[:2] == dest)
"""
ECHO6 = """
import socket, sys
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind((sys.argv[1], 8083))
print('ready', flush=True)
while True:
    d, a = u.recvfrom(65536)
    u.sendto(b'echo:' + d, a)
"""


def test_udp_to_ipv6_outside(remote, tmp_path):
    """UDP to an IPv6 destination outside goes through its relay as an
    IPv4 one does (net/udp.py): sendto/recvfrom, a connected socket's send
    and sendmsg, a 60000-byte datagram, each answer from the destination's
    address -- as on the host; the host's own IPv6 address and a
    destination the rules do not allow stay ENETUNREACH, with an audit line."""
    pid = os.getpid()
    net6 = _remote6(remote)
    srv = subprocess.Popen(["ip", "netns", "exec", f"sntest{pid}", sys.executable, "-c", ECHO6, f"{net6}::2"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline() == "ready\n"
        native = subprocess.run([sys.executable, "-c", UDP6, f"{net6}::2"], capture_output=True, text=True,
                                timeout=30)
        assert native.returncode == 0 and "big 60005 True" in native.stdout, native.stdout + native.stderr
        r = run_sentry(["python3", "-c", UDP6, f"{net6}::2"], extra=["--dns", "none"])
        assert r.stdout.decode() == native.stdout, r.stderr.decode()
        trail = tmp_path / "audit"
        probe = ("import socket, sys\nu = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                 "for h in sys.argv[1:]:\n    try:\n        u.sendto(b'x', (h, 8083)); print(h, 'sent')\n"
                 "    except OSError as e:\n        print(h, e.errno)")
        r = run_sentry(["python3", "-c", probe, f"{net6}::1"], extra=["--dns", "none"])
        assert r.stdout.decode().split() == [f"{net6}::1", "101"], r.stderr.decode()
        r = run_sentry(["python3", "-c", probe, f"{net6}::2"],
                       extra=["--dns", "none", "--net-allow", f"{remote}.0/24", "--audit", str(trail)])
        assert r.stdout.decode().split() == [f"{net6}::2", "101"], r.stderr.decode()
        assert '"net-refused"' in trail.read_text() and f"{net6}::2" in trail.read_text()
    finally:
        srv.kill()
        srv.wait()
        subprocess.run(["ip", "addr", "del", f"{net6}::1/64", "dev", f"snh{pid}"], capture_output=True)


COUNT_DATAGRAMS = """
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((sys.argv[1], int(sys.argv[2]))); u.settimeout(0.5)
print('ready', flush=True)
sys.stdin.read(1)
n = 0
while True:
    try:
        u.recv(100); n += 1
    except socket.timeout:
        break
print(n, flush=True)
"""


def _count_datagrams(remote, port, run):
    """run() while a server of the remote counts the datagrams reaching port."""
    pid = os.getpid()
    srv = subprocess.Popen(["ip", "netns", "exec", f"sntest{pid}", sys.executable, "-c", COUNT_DATAGRAMS,
                            f"{remote}.2", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline() == "ready\n"
        out = run()
        srv.stdin.write("x")
        srv.stdin.close()
        return out, int(srv.stdout.readline())
    finally:
        srv.kill()
        srv.wait()


def test_udp_relay_address_race(remote, cbin, outside_tmp):
    """A thread flips the sockaddr of another's sendto/sendmsg between an
    allowed UDP destination and one the policy refuses: the Sentry hands
    the kernel the address it checked (staged), so the refused port hears
    nothing.  Natively (the control) it hears the flipped datagrams."""
    import shutil
    prog = os.path.join(outside_tmp, "udp_race")
    shutil.copy(cbin("udp_race"), prog)
    args = [prog, f"{remote}.2", "8083", "8084", "3000"]
    out, heard = _count_datagrams(remote, 8084, lambda: run_sentry(
        args, extra=["--dns", "none", "--net-allow", f"{remote}.0/24:8083"], timeout=300))
    assert out.stdout.decode() == "rounds 3000\n" and heard == 0, (out.stderr.decode(), heard)
    args[-1] = "30000"
    out, heard = _count_datagrams(remote, 8084, lambda: subprocess.run(args, capture_output=True, timeout=60))
    assert out.stdout.decode() == "rounds 30000\n" and heard > 0


HTTP_CLIENTS = """
curl -s http://$1:8090/page.txt
curl -s -o /dev/null -w '%{local_ip} %{remote_ip}:%{remote_port}\\n' http://$1:8090/page.txt
wget -q -O- http://$1:8090/page.txt
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())' \\
    http://$1:8090/page.txt
python3 -c 'import asyncio, sys
async def get(host):
    r, w = await asyncio.open_connection(host, 8090)
    w.write(b"GET /page.txt HTTP/1.0\\r\\n\\r\\n")
    print((await r.read()).decode().split("\\r\\n\\r\\n", 1)[1].strip())
asyncio.run(get(sys.argv[1]))' $1
"""


def test_outbound_http_clients(remote, tmp_path):
    """curl, wget, python's urllib and asyncio (a non-blocking connect)
    fetch a page from an HTTP server outside as from the host, and curl's
    idea of its own address (it asks getsockname) is the sandbox's."""
    (tmp_path / "page.txt").write_text("a page from outside\n")
    srv = subprocess.Popen(["ip", "netns", "exec", f"sntest{os.getpid()}", sys.executable, "-m", "http.server",
                            "8090", "--bind", f"{remote}.2", "--directory", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        native = ""
        for _ in range(50):
            native = subprocess.run(["sh", "-c", HTTP_CLIENTS, "sh", f"{remote}.2"], capture_output=True,
                                    text=True).stdout
            if native.startswith("a page"):
                break
            import time
            time.sleep(0.1)
        assert native.splitlines()[1] == f"{remote}.1 {remote}.2:8090" \
            and native.count("a page from outside") == 4, native
        r = run_sentry(["sh", "-c", HTTP_CLIENTS, "sh", f"{remote}.2"], extra=["--dns", "none"])
        assert r.stdout.decode() == native.replace(f"{remote}.1 ", "10.0.2.15 "), r.stderr.decode()
    finally:
        srv.kill()
        srv.wait()


LOW_PORTS = """
import os, socket
print(open('/proc/sys/net/ipv4/ip_unprivileged_port_start').read().strip(), os.getuid())
for fam, addr, port in ((socket.AF_INET, '127.0.0.1', 80), (socket.AF_INET6, '::1', 443),
                        (socket.AF_INET, '0.0.0.0', 1023), (socket.AF_INET, '0.0.0.0', 1024),
                        (socket.AF_INET, '0.0.0.0', 0)):
    s = socket.socket(fam)
    try:
        s.bind((addr, port))
        print(port, 'bound', s.getsockname()[1] == port or port == 0)
    except OSError as e:
        print(port, e.strerror)
"""
# who runs it: as the sandbox's --uid / setpriv options, and natively in a new network namespace
LOW_PORT_USERS = {"root": ([], []),
                  "uid 1000": (["--uid", "1000"], ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
                                                   "--inh-caps=-all", "--bounding-set=-all"]),
                  "uid 1000 with CAP_NET_BIND_SERVICE": (
                      [], ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=+net_bind_service",
                           "--ambient-caps=+net_bind_service"])}


@pytest.mark.parametrize("mode", ISOLATED)
@pytest.mark.parametrize("who", list(LOW_PORT_USERS))
def test_low_ports_need_cap_net_bind_service(mode, who):
    """A port below ip_unprivileged_port_start (80, 443) is bound by root,
    or by anyone holding CAP_NET_BIND_SERVICE, and refused (EACCES) to
    anyone else, as natively in a new network namespace: the guest holds
    no host capability, so the Sentry decides on its emulated ones.  The
    guest reads the namespace's threshold, 1024."""
    extra, setpriv = LOW_PORT_USERS[who]
    if who.endswith("SERVICE"):
        # setpriv inside, from root: the ambient set carries the capability past setuid
        r = run_sentry([*setpriv, "python3", "-c", LOW_PORTS], extra=[f"--network={mode}"])
    else:
        r = run_sentry(["python3", "-c", LOW_PORTS], extra=[f"--network={mode}", *extra])
    native = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up; exec \"$@\"", "sh", *setpriv,
                             sys.executable, "-c", LOW_PORTS], capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == native.stdout, (r.stdout.decode(), native.stdout)
    assert ("80 bound True" in native.stdout) == (who != "uid 1000")


@pytest.mark.parametrize("mode", ISOLATED)
def test_low_port_bind_races_a_thread_changing_the_port(cbin, outside_tmp, mode):
    """A thread turns the port of a bind's address from 8080 to 80 while a
    guest without CAP_NET_BIND_SERVICE binds: before the Sentry's check the
    bind is refused, after it the kernel binds the port that was checked
    (the staged copy); no socket ever ends up on port 80."""
    from conftest import shown_copy
    prog = shown_copy(cbin, outside_tmp, "lowport_race")
    seen = []
    # the flips must land on both sides of the check: a longer spread where
    # the trap is slow (a loaded machine) and every flip came before it
    for spread in (400000, 4000000, 40000000):
        r = run_sentry([prog, "300", str(spread)], extra=[f"--network={mode}", "--uid", "1000"], timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        words = r.stdout.decode().split()
        counts = dict(zip(words[::2], map(int, words[1::2])))
        assert counts["low"] == 0 and counts["other"] == 0, counts
        assert counts["high"] + counts["refused"] == 300, counts
        seen.append(counts)
        if counts["high"] and counts["refused"]:
            break
    assert seen[-1]["high"] and seen[-1]["refused"], seen
