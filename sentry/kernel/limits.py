"""The sandbox's resource view: --cpus and --memory.

--cpus N is real: the first process is bound to N of the Sentry's CPUs
(sched_setaffinity, inherited by every guest), and the files programs count
CPUs from (/proc/cpuinfo, /proc/stat, /sys/devices/system/cpu) show those N,
numbered from 0.  --memory is reported, not enforced (that needs a cgroup):
/proc/meminfo and sysinfo(2) show it as the total, and what the sandbox's
processes hold resident as used, so that programs size themselves to it.
"""
import os
import re


class Limits:
    def __init__(self, cpus=None, memory=None):
        self.memory = memory                     # bytes, or None
        allowed = sorted(os.sched_getaffinity(0))
        self.cpus = allowed[:cpus] if cpus else None   # host CPU numbers, or None

    # ---- CPUs ---------------------------------------------------------------

    def bind(self):
        """In the first guest, before exec: run on the sandbox's CPUs only."""
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def cpu_range(self):
        """online/possible/present as sysfs writes them."""
        n = len(self.cpus)
        return "0\n" if n == 1 else f"0-{n - 1}\n"

    def cpuinfo(self, data):
        if not self.cpus:
            return data
        blocks = [b for b in data.decode().split("\n\n") if b.strip()]
        keep = []
        for block in blocks:
            m = re.search(r"^processor\s*:\s*(\d+)", block, re.M)
            if m and int(m.group(1)) in self.cpus:
                new = len(keep)
                block = re.sub(r"^(processor\s*:\s*)\d+", rf"\g<1>{new}", block, flags=re.M)
                keep.append(block)
        return ("\n\n".join(keep) + "\n\n").encode()

    def stat(self, data):
        if not self.cpus:
            return data
        out = []
        for line in data.decode().splitlines():
            m = re.match(r"cpu(\d+) ", line)
            if m:
                if int(m.group(1)) not in self.cpus:
                    continue
                line = f"cpu{self.cpus.index(int(m.group(1)))} " + line[m.end():]
            out.append(line)
        return ("\n".join(out) + "\n").encode()

    # ---- memory ---------------------------------------------------------------

    def meminfo(self, data, used):
        """/proc/meminfo with --memory as the total; `used`: the sandbox's
        resident bytes.  The page cache is the host's: not shown."""
        if not self.memory:
            return data
        free = max(0, self.memory - used) // 1024
        values = {"MemTotal": self.memory // 1024, "MemFree": free, "MemAvailable": free,
                  "Buffers": 0, "Cached": 0, "SReclaimable": 0, "SwapCached": 0}
        out = []
        for line in data.decode().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                line = f"{key}:{str(values[key]).rjust(len(rest) - 3)} kB"
            out.append(line)
        return ("\n".join(out) + "\n").encode()

    def sysinfo(self, totalram, freeram, unit, used):
        """(totalram, freeram) in `unit`-byte units as the guest sees them."""
        if not self.memory:
            return totalram, freeram
        unit = unit or 1
        return self.memory // unit, max(0, self.memory - used) // unit


UNLIMITED = 1 << 63


def host_soft_limit(tid, name):
    """A task's soft limit as the host keeps it (those it passes through:
    "Max file size", "Max nice priority"...), from /proc/<tid>/limits;
    UNLIMITED for "unlimited".  OSError: the task is gone."""
    with open(f"/proc/{tid}/limits") as f:
        for line in f:
            if line.startswith(name + " "):
                soft = line[len(name):].split()[0]
                return UNLIMITED if soft == "unlimited" else int(soft)
    return UNLIMITED


def parse_bytes(text):
    """'512m', '2G', '1048576' -> bytes; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise ValueError(text)
    return int(m.group(1)) << (10 * " kmgt".index(m.group(2) or " "))


class PidsLimit:
    """The sandbox's tasks at most (0: no limit), as a pids cgroup's
    pids.max: a fork past it is EAGAIN (kernel/clone.py).  With fd, a file
    that may change it while the sandbox runs (the OCI runtime's `update`,
    sentry/oci/commands.py): WIDTH decimal characters and a newline at
    offset 0, rewritten in place by one pwrite (write_to), read back at every
    fork, so the Sentry needs no channel of its own for it.  A read that does
    not parse (torn by a write in flight) keeps the last value read."""
    WIDTH = 20

    def __init__(self, value=0, fd=None):
        self.value = value
        self.fd = fd

    def current(self):
        if self.fd is not None:
            try:
                value = int(os.pread(self.fd, self.WIDTH + 1, 0))
                if value >= 0:
                    self.value = value
            except (OSError, ValueError):
                pass
        return self.value

    @classmethod
    def write_to(cls, fd, value):
        """Set the limit a running Sentry reads from fd's file."""
        text = f"{value:>{cls.WIDTH}}\n".encode()
        if os.pwrite(fd, text, 0) != len(text):
            raise OSError(f"short write of the pids limit")
