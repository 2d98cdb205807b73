"""Two network namespaces side by side: a parent's TCP server on 127.0.0.1,
its abstract unix name and its namespace are not a child's in a new network
namespace (nor is an abstract name the child binds on a socketpair's end the
parent's) (unshare(2) in a fork, and clone(2) with CLONE_NEWNET), whose own
server on the same port the parent does not reach either
(tests/test_netns.py runs it in `unshare -rn` natively and inside)."""
import ctypes, errno, os, socket, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, SIGCHLD = 0x40000000, 17


def outcome(f):
    try:
        return f()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def connect(addr, family=socket.AF_INET):
    s = socket.socket(family)
    s.settimeout(5)
    try:
        s.connect(addr)
        return "connected"
    finally:
        s.close()


def bind_listen(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
server = bind_listen(0)
port = server.getsockname()[1]
abstract = socket.socket(socket.AF_UNIX)
abstract.bind(b"\0sentry-netns-isolation")
abstract.listen(1)
mine = os.readlink("/proc/self/ns/net")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    if libc.unshare(CLONE_NEWNET):
        print("unshare", errno.errorcode[ctypes.get_errno()], flush=True)
        os._exit(1)
    print("child ns differs", os.readlink("/proc/self/ns/net") != mine, flush=True)
    print("child before lo up", outcome(lambda: connect(("127.0.0.1", port))), flush=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print("child to the parent's port", outcome(lambda: connect(("127.0.0.1", port))), flush=True)
    print("child to the parent's abstract name",
          outcome(lambda: connect(b"\0sentry-netns-isolation", socket.AF_UNIX)), flush=True)
    own = bind_listen(port)
    print("child bound the same port", own.getsockname()[1] == port, flush=True)
    print("child to its own server", outcome(lambda: connect(("127.0.0.1", port))), flush=True)
    pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    pair[0].bind(b"\0sentry-netns-pair")
    print("child's pair in its /proc/net/unix", any("@sentry-netns-pair" in l for l in open("/proc/net/unix")),
          flush=True)
    print("child listeners in /proc/net/tcp", sum(l.split()[3] == "0A" for l in open("/proc/net/tcp").readlines()[1:]),
          flush=True)
    os.write(w, b"x")
    import time
    time.sleep(1.5)                       # its server stays while the parent connects
    os._exit(0)
os.close(w)
os.read(r, 1)
print("parent sees the child's ns apart", os.readlink(f"/proc/{pid}/ns/net") != mine, flush=True)
print("parent to its port", outcome(lambda: connect(("127.0.0.1", port))), flush=True)
print("parent to the child's pair", outcome(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(
    b"x", b"\0sentry-netns-pair")), flush=True)
print("child's pair in the parent's /proc/net/unix",
      any("@sentry-netns-pair" in l for l in open("/proc/net/unix")), flush=True)
server.settimeout(5)
print("parent's server's client", outcome(lambda: server.accept()[1][0]), flush=True)
os.waitpid(pid, 0)
# clone(2) with CLONE_NEWNET: its child starts with lo down
child = libc.syscall(56, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0)
if child == 0:
    os._exit({"ENETUNREACH": 7}.get(outcome(lambda: connect(("127.0.0.1", port))), 9))
_, status = os.waitpid(child, 0)
print("cloned child's connect: exit", os.waitstatus_to_exitcode(status), flush=True)
print("parent's port still its own", outcome(lambda: connect(("127.0.0.1", port))), flush=True)
