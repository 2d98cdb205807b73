"""A new network namespace as a program sees it: interfaces, addresses, routes,
/proc/net, if_nameindex, connects and datagrams with lo down, up and down
again, a server on port 80 with its clients (tests/test_netns.py runs it in
`unshare -n` natively and inside)."""
import errno, os, socket, subprocess, threading
def sh(cmd):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    print(f"$ {cmd}\n{r.stdout}{r.stderr}rc={r.returncode}", flush=True)
def attempt(fam, addr, kind=socket.SOCK_STREAM):
    s = socket.socket(fam, kind)
    s.settimeout(5)
    try:
        if kind == socket.SOCK_DGRAM:
            s.sendto(b"x", addr)
            return "sent"
        s.connect(addr)
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
def probes(when):
    for fam, addr, kind in ((socket.AF_INET, ("127.0.0.1", 9), socket.SOCK_STREAM),
                            (socket.AF_INET6, ("::1", 9), socket.SOCK_STREAM),
                            (socket.AF_INET, ("8.8.8.8", 80), socket.SOCK_STREAM),
                            (socket.AF_INET, ("10.0.2.2", 80), socket.SOCK_STREAM),
                            (socket.AF_INET, ("169.254.169.254", 80), socket.SOCK_STREAM),
                            (socket.AF_INET, ("8.8.8.8", 53), socket.SOCK_DGRAM),
                            (socket.AF_INET, ("127.0.0.1", 9), socket.SOCK_DGRAM)):
        print(when, addr, "udp" if kind == socket.SOCK_DGRAM else "tcp", attempt(fam, addr, kind), flush=True)
def show():
    sh("ip -o link; ip -o addr; ip route; ip -6 route; ip route show table local")
    sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1; cat /proc/net/route; cat /proc/net/if_inet6 | cut -c33-")
    print("if_nameindex", socket.if_nameindex(), flush=True)
show()
probes("down")
sh("ip link set lo up")
show()
probes("up")
srv = socket.socket(socket.AF_INET6)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", 80))
srv.listen(4)
sh("ss -tlnH; netstat -tln | tail -n +3; grep -c ' 0A ' /proc/net/tcp6")
for addr in (("127.0.0.1", 80), ("::1", 80)):
    c = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
    c.connect(addr)
    a, peer = srv.accept()
    print("accepted", peer[0], a.getsockname()[:2], c.getpeername()[:2], flush=True)
    a.sendall(b"hello")
    print(c.recv(10), flush=True)
    a.close(); c.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v.sendto(b"ping", u.getsockname())
data, frm = u.recvfrom(10)
print("udp", data, frm[0], flush=True)
sh("ip link set lo down; ip -o link show lo | cut -d' ' -f2-9")
probes("down-again")
