"""--console-socket: the container's terminal.  A pty of the host's devpts
(as runc makes one): its master goes to the engine over the AF_UNIX socket
with SCM_RIGHTS (conmon copies the user's terminal to it and resizes
through it), its slave becomes the container process's stdin, stdout,
stderr and controlling terminal, inherited by the guest as a terminal
handed to `sentry run` is."""
import array
import fcntl
import os
import socket
import struct
import termios


class ConsoleError(Exception):
    pass


def open_pty(size=None):
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    if size:
        rows, cols = int(size.get("height", 0)), int(size.get("width", 0))
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


def send_master(path, master, slave):
    """Hand the master to the engine; runc sends the slave's name with it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        name = os.ttyname(slave)
        s.sendmsg([name.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
    except OSError as e:
        raise ConsoleError(f"console socket {path}: {e.strerror}")
    finally:
        s.close()


def become_terminal_session(slave):
    """In the container process: a session of its own whose controlling
    terminal is the slave, which is its stdio too."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
