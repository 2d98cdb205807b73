"""--console-socket: the container's terminal.  A pty (the sandbox's own
devpts instance's for `create`, sandbox/start.py; the host's for `exec`):
its master goes to the engine over the AF_UNIX socket with SCM_RIGHTS
(conmon copies the user's terminal to it and resizes through it), its slave
becomes the container process's stdin, stdout, stderr and controlling
terminal, inherited by the guest as a terminal handed to `sentry run` is."""
import array
import fcntl
import os
import socket
import struct
import termios


class ConsoleError(Exception):
    pass


def open_pty(size=None):
    """A pty of the host's devpts, sized: (master, slave)."""
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    set_size(master, size)
    return master, slave


def set_size(master, size):
    """consoleSize ({"height", "width"}) on the pty, if given."""
    if size:
        rows, cols = int(size.get("height", 0)), int(size.get("width", 0))
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def hand_over(path, size, master, name):
    """The create's console: sized, its master sent to the engine."""
    set_size(master, size)
    send_master(path, master, name)


def send_master(path, master, name):
    """Hand the master to the engine, with the slave's name as runc sends it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendmsg([name.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
    except OSError as e:
        raise ConsoleError(f"console socket {path}: {e.strerror}")
    finally:
        s.close()


def become_terminal_session(slave):
    """In a new process: a session of its own whose controlling terminal is
    the slave, which is its stdio too."""
    os.setsid()
    become_terminal(slave)


def become_terminal(slave):
    """For a session leader: the slave as its controlling terminal and stdio."""
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
