# In a network namespace of the caller's own: one thread flips a send buffer
# between an RTM_NEWADDR of a loopback address and one of 10.9.9.9 on lo,
# while another sends it to the kernel again and again.  Prints the IPv4
# addresses lo ends with.
import socket, struct, subprocess, threading, time

def newaddr(ip, seq=1):
    a = socket.inet_aton(ip)
    attrs = struct.pack("=HH", 8, 2) + a + struct.pack("=HH", 8, 1) + a
    body = struct.pack("=BBBBI", socket.AF_INET, 8, 0, 0, 1) + attrs
    return struct.pack("=IHHII", 16 + len(body), 20, 0x405, seq, 0) + body

good, bad = newaddr("127.0.0.9"), newaddr("10.9.9.9")
buf = bytearray(good)
stop = time.time() + 2
def flip():
    while time.time() < stop:
        buf[:] = bad
        buf[:] = good
t = threading.Thread(target=flip)
t.start()
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.setblocking(False)
sent = 0
while time.time() < stop:
    try:
        s.sendto(buf, (0, 0))
        sent += 1
    except OSError:
        pass
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
t.join()
out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
print(sorted(line.split()[3] for line in out.splitlines()))
