"""linux.resources written to the container's cgroup (cgroup.py), at create
and at `update`, as runc writes them: memory (limit, swap, reservation,
swappiness, disableOOMKiller), cpu (shares, quota, period, burst, the
real-time runtime and period; cpus and mems, the cpuset), blockIO (weight,
weightDevice, the four throttles), hugepageLimits and, on cgroup v2,
`unified` (v2's own files by name), in cgroup v1's files or v2's.  The cgroup holds the whole sandbox, so a limit
covers the Sentry and its helpers as well as the guests.  The pids limit is
the Sentry's own count of the guest's tasks (kernel/limits.py PidsLimit),
not the cgroup's, which would count the Sentry's tasks too.

And what the memory controller tells back: its OOM kills (v1's
memory.oom_control, v2's memory.events), which `events` reports."""
import os
import re

from sentry.oci import cgroup

# what apply() writes; anything else in linux.resources is named as not applied
THROTTLES = {"throttleReadBpsDevice": ("read_bps", "rbps"), "throttleWriteBpsDevice": ("write_bps", "wbps"),
             "throttleReadIOPSDevice": ("read_iops", "riops"), "throttleWriteIOPSDevice": ("write_iops", "wiops")}
APPLIED = {"memory": ("limit", "reservation", "swap", "swappiness", "disableOOMKiller"),
           "cpu": ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "cpus", "mems"),
           "blockIO": ("weight", "weightDevice", *THROTTLES),
           "hugepageLimits": (), "unified": ()}    # (): applied whole
HUGEPAGES = "/sys/kernel/mm/hugepages"


class ResourceError(Exception):
    pass


def _int(res, kind, field, low=None):
    v = (res.get(kind) or {}).get(field)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or (low is not None and v < low):
        raise ResourceError(f"linux.resources.{kind}.{field} {v!r}: a number"
                            + (f" of at least {low}" if low is not None else ""))
    return v


def check(res):
    """The fields apply() writes, checked and decoded as runc decodes them
    (0 or absent: unset, -1: unlimited); raises ResourceError in one line."""
    if not isinstance(res, dict):
        raise ResourceError("linux.resources: an object (LinuxResources)")
    for kind, fields in APPLIED.items():
        if fields and res.get(kind) is not None and not isinstance(res[kind], dict):
            raise ResourceError(f"linux.resources.{kind}: an object")
    mem = {f: _int(res, "memory", f, -1) for f in ("limit", "reservation", "swap")}
    mem["swappiness"] = _int(res, "memory", "swappiness", 0)
    if mem["swappiness"] is not None and mem["swappiness"] > 100:
        raise ResourceError(f"linux.resources.memory.swappiness {mem['swappiness']}: 0 to 100")
    oom = (res.get("memory") or {}).get("disableOOMKiller")
    if oom is not None and not isinstance(oom, bool):
        raise ResourceError(f"linux.resources.memory.disableOOMKiller {oom!r}: true or false")
    mem["disableOOMKiller"] = oom
    limit, swap = mem["limit"] or 0, mem["swap"] or 0
    if swap > 0 and limit > 0 and swap < limit:
        raise ResourceError("memory+swap limit should be >= memory limit")
    cpu = {f: _int(res, "cpu", f, low) for f, low in (("shares", 0), ("quota", -1), ("period", 0), ("burst", 0),
                                                      ("realtimeRuntime", -1), ("realtimePeriod", 0))}
    for field in ("cpus", "mems"):
        v = (res.get("cpu") or {}).get(field)
        if v is not None and (not isinstance(v, str) or (v and not CPU_LIST.fullmatch(v))):
            raise ResourceError(f"linux.resources.cpu.{field} {v!r}: a list of numbers and ranges (0-2,4)")
        cpu[field] = v or None
    blkio = {"weight": _int(res, "blockIO", "weight", 0),
             "weightDevice": _devices(res, "weightDevice", ("major", "minor"), ("weight", "leafWeight"))}
    for field in THROTTLES:
        blkio[field] = _devices(res, field, ("major", "minor", "rate"))
    return {"memory": mem, "cpu": cpu, "blockIO": blkio, "hugepageLimits": _hugepages(res),
            "unified": _unified(res)}


CPU_LIST = re.compile(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")


def _number(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _devices(res, field, needed, optional=()):
    """blockIO's per-device rules, as tuples of needed + optional fields
    (an optional one absent: None); None for none."""
    rules = (res.get("blockIO") or {}).get(field) or []
    names = " and ".join(needed + optional)
    if not isinstance(rules, list):
        raise ResourceError(f"linux.resources.blockIO.{field}: a list of {{{names}}}")
    out = []
    for r in rules:
        if (not isinstance(r, dict) or not all(_number(r.get(k)) for k in needed)
                or not all(r.get(k) is None or _number(r[k]) for k in optional)):
            raise ResourceError(f"linux.resources.blockIO.{field} {r!r}: {names}, numbers")
        out.append(tuple(r.get(k) for k in needed + optional))
    return out or None


def page_sizes():
    """The huge page sizes this kernel offers, as cgroup file names spell
    them (hugepages-2048kB: 2MB), as runc lists them."""
    out = []
    try:
        names = os.listdir(HUGEPAGES)
    except OSError:
        return out
    for name in names:
        m = re.fullmatch(r"hugepages-([0-9]+)kB", name)
        if m:
            kb = int(m.group(1))
            unit = next(i for i in (2, 1, 0) if kb % (1024 ** i) == 0)
            out.append(f"{kb // 1024 ** unit}{'KMG'[unit]}B")
    return sorted(out)


def _hugepages(res):
    """hugepageLimits as [(pageSize, limit)], each size one this kernel has
    (it names a cgroup file: nothing else may reach the path)."""
    rules = res.get("hugepageLimits") or []
    if not isinstance(rules, list):
        raise ResourceError("linux.resources.hugepageLimits: a list of {pageSize, limit}")
    out = []
    for r in rules:
        if not isinstance(r, dict) or not isinstance(r.get("pageSize"), str) or not _number(r.get("limit")):
            raise ResourceError(f"linux.resources.hugepageLimits {r!r}: pageSize (2MB) and limit, a number")
        if r["pageSize"] not in page_sizes():
            raise ResourceError(f"invalid hugepage size: {r['pageSize']} (this kernel has "
                                f"{', '.join(page_sizes()) or 'none'})")
        out.append((r["pageSize"], r["limit"]))
    return out or None


def _unified(res):
    """linux.resources.unified: cgroup v2 file name -> value, each a file
    of the container's own cgroup (no slash, a controller's prefix)."""
    u = res.get("unified") or {}
    if not isinstance(u, dict):
        raise ResourceError("linux.resources.unified: an object of cgroup v2 file names and values")
    for key, value in u.items():
        if "/" in key or "." not in key.strip(".") or not isinstance(value, str):
            raise ResourceError(f"linux.resources.unified {key!r}: a cgroup v2 file name "
                                "(controller.name, no slash) with a string value")
        if key in MANAGED:
            raise ResourceError(f"linux.resources.unified {key!r}: the cgroup's membership and state "
                                "are sentry's (create joins it, pause freezes it)")
    return dict(u) or None


# cgroup v2 files that say who is in the cgroup or what it is, not a limit
MANAGED = {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill", "cgroup.freeze",
           "cgroup.type"}


def not_applied(res):
    """The names of what linux.resources asks that apply() does not do:
    for a warning (devices are the sandbox's own /dev; pids the Sentry's)."""
    out = []
    for kind, v in (res or {}).items():
        if not v or kind in ("pids", "devices"):
            continue
        if kind not in APPLIED:
            out.append(kind)
        elif isinstance(v, dict) and APPLIED[kind]:
            out += [f"{kind}.{f}" for f, x in v.items() if f not in APPLIED[kind] and x not in (None, 0, "")]
    return sorted(out)


def merge(old, new):
    """update's resources over those applied before, field by field (what
    update leaves out stays, as with runc)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in (old or {}).items()}
    for kind, fields in (new or {}).items():
        if isinstance(fields, dict) and isinstance(out.get(kind), dict):
            out[kind].update(fields)
        else:
            out[kind] = fields
    return out


def limits_of(spec):
    """The part of config.json's linux.resources that apply() writes,
    checked (ResourceError), kept in the state for `update` to merge into."""
    res = (spec.get("linux") or {}).get("resources") or {}
    check(res)
    return {k: res[k] for k in APPLIED if res.get(k)}


def joined(path):
    """Whether the calling process is in cgroup `path` where the limits are
    written (v1's memory hierarchy, v2's one)."""
    kind = cgroup.layout()[0]
    return kind is not None and cgroup.own().get("memory" if kind == "v1" else "") == path


def wanted(res):
    """Whether res asks for anything apply() writes."""
    d = check(res)
    return any(v not in (None, 0) for part in d.values() if isinstance(part, dict) for v in part.values()) \
        or bool(d["hugepageLimits"] or d["unified"])


def apply(path, res):
    """Write res (checked) to cgroup `path`, which the sandbox is in.  Raises
    ResourceError when the cgroup cannot be written (not root, no delegated
    cgroup, a value the kernel refuses)."""
    d = check(res)
    kind = cgroup.layout()[0]
    if kind is None:
        raise ResourceError("no cgroup file system")
    if kind == "v1":
        if d["unified"]:
            raise ResourceError("linux.resources.unified: cgroup v2 files, and this host's cgroups are v1")
        _cpuset(cgroup.dir_of(path, "cpuset"), d["cpu"])
        _memory_v1(cgroup.dir_of(path, "memory"), d["memory"])
        _cpu_v1(cgroup.dir_of(path, "cpu"), d["cpu"])
        _blkio_v1(cgroup.dir_of(path, "blkio"), d["blockIO"])
        _hugetlb(cgroup.dir_of(path, "hugetlb"), d["hugepageLimits"], "limit_in_bytes")
    else:
        top = cgroup.dir_of(path, "")
        _cpuset(top, d["cpu"])
        _memory_v2(top, d["memory"])
        _cpu_v2(top, d["cpu"])
        _io_v2(top, d["blockIO"])
        _hugetlb(top, d["hugepageLimits"], "max")
        for key, value in (d["unified"] or {}).items():
            _write(top, key, value, create=False)


def _write(d, name, value, create=True):
    """Write value to file `name` of cgroup directory d; with create
    False, only a file that exists (a name from the spec)."""
    if d is None:
        raise ResourceError(f"{name}: the controller is not mounted")
    path = os.path.join(d, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_CREAT if create else 0),
                     0o644)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except FileNotFoundError as e:
        raise ResourceError(f"{path}: {e.strerror}" if create else f"{name}: no such file in the container's "
                            "cgroup (its controller is not enabled here)")
    except OSError as e:
        raise ResourceError(f"{path}: {e.strerror}")


def _cpuset(d, c):
    """cpus then mems, as runc writes them (v1: the cpuset hierarchy's
    directory, which join() filled from its parent; v2: the one)."""
    for field in ("cpus", "mems"):
        if c[field]:
            _write(d, f"cpuset.{field}", c[field])


def _hugetlb(d, limits, suffix):
    """Each size's limit, and its reservations' where the kernel accounts
    them (hugetlb.2MB.rsvd.*), as runc sets both."""
    for size, limit in limits or ():
        _write(d, f"hugetlb.{size}.{suffix}", limit)
        rsvd = f"hugetlb.{size}.rsvd.{suffix}"
        if d is not None and os.path.exists(os.path.join(d, rsvd)):
            _write(d, rsvd, limit)


def _read_int(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError, TypeError):
        return None


def _memory_v1(d, m):
    limit, swap = m["limit"] or 0, m["swap"] or 0
    has_swap = d is not None and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))
    if limit == -1 and swap == 0 and has_swap:
        swap = -1           # unlimited memory is unlimited swap too, as runc has it
    if limit or swap:
        writes = []
        if limit:
            writes.append(("memory.limit_in_bytes", limit))
        if swap and has_swap:
            writes.append(("memory.memsw.limit_in_bytes", swap))
        elif swap and swap != -1:
            raise ResourceError("memory.memsw.limit_in_bytes: swap accounting is off in this kernel")
        # memsw must stay >= the limit at every step: raise it first when it grows
        current = _read_int(d, "memory.limit_in_bytes")
        if limit and swap and (swap == -1 or (current is not None and current < swap)):
            writes.reverse()
        for name, value in writes:
            _write(d, name, value)
    if m["reservation"]:
        _write(d, "memory.soft_limit_in_bytes", m["reservation"])
    if m["swappiness"] is not None:
        _write(d, "memory.swappiness", m["swappiness"])
    if m["disableOOMKiller"] is not None:
        _write(d, "memory.oom_control", int(m["disableOOMKiller"]))


def _memory_v2(d, m):
    limit, swap = m["limit"] or 0, m["swap"] or 0
    if limit == -1 and swap == 0:
        swap = -1
    if swap not in (0, -1):
        if limit in (0, -1):
            raise ResourceError("unable to set swap limit without memory limit")
        swap -= limit       # v2's swap.max is the swap alone, v1's memsw memory and swap
    if swap:
        _write(d, "memory.swap.max", "max" if swap == -1 else swap)
    if limit:
        _write(d, "memory.max", "max" if limit == -1 else limit)
    if m["reservation"]:
        _write(d, "memory.low", "max" if m["reservation"] == -1 else m["reservation"])
    if m["disableOOMKiller"]:
        raise ResourceError("disableOOMKiller: cgroup v2 has no such switch")


def _cpu_v1(d, c):
    if c["shares"]:
        _write(d, "cpu.shares", c["shares"])
    if c["period"]:
        _write(d, "cpu.cfs_period_us", c["period"])
    if c["quota"]:
        _write(d, "cpu.cfs_quota_us", c["quota"])
    if c["burst"] is not None:
        _write(d, "cpu.cfs_burst_us", c["burst"])
    if c["realtimePeriod"]:
        _write(d, "cpu.rt_period_us", c["realtimePeriod"])
    if c["realtimeRuntime"]:
        _write(d, "cpu.rt_runtime_us", c["realtimeRuntime"])


def _cpu_v2(d, c):
    if c["shares"]:
        # runc's mapping of v1's shares (2..262144) onto v2's weight (1..10000)
        _write(d, "cpu.weight", 1 + ((c["shares"] - 2) * 9999) // 262142)
    if c["quota"] or c["period"]:
        value = str(c["quota"]) if c["quota"] and c["quota"] > 0 else "max"
        if c["period"]:
            value += f" {c['period']}"
        _write(d, "cpu.max", value)
    if c["burst"] is not None:
        _write(d, "cpu.max.burst", c["burst"])
    if c["realtimePeriod"] or c["realtimeRuntime"]:
        raise ResourceError("cpu.realtimeRuntime, realtimePeriod: cgroup v2 has no real-time CPU limits")


def _weight_file(d, names, what="blockIO.weight"):
    """The first of names the I/O scheduler offers (BFQ's, else CFQ's)."""
    for name in names:
        if d is not None and os.path.exists(os.path.join(d, name)):
            return name
    raise ResourceError(f"{what}: this kernel's I/O scheduler has no weight")


def _blkio_v1(d, b):
    if b["weight"]:
        _write(d, _weight_file(d, ("blkio.bfq.weight", "blkio.weight")), b["weight"])
    for major, minor, weight, leaf in b["weightDevice"] or ():
        if weight:
            _write(d, _weight_file(d, ("blkio.bfq.weight_device", "blkio.weight_device")),
                   f"{major}:{minor} {weight}")
        if leaf:
            _write(d, _weight_file(d, ("blkio.leaf_weight_device",), "blockIO.weightDevice.leafWeight"),
                   f"{major}:{minor} {leaf}")
    for field, (name, _) in THROTTLES.items():
        for major, minor, rate in b[field] or ():
            _write(d, f"blkio.throttle.{name}_device", f"{major}:{minor} {rate}")


def _io_v2(d, b):
    if b["weight"] or b["weightDevice"]:
        name = _weight_file(d, ("io.bfq.weight", "io.weight"))
        # runc's mapping of v1's weight (10..1000) onto v2's io.weight (1..10000); BFQ's takes v1's
        scaled = (lambda w: w) if name == "io.bfq.weight" else (lambda w: 1 + (w - 10) * 9999 // 990)
        if b["weight"]:
            _write(d, name, scaled(b["weight"]))
        for major, minor, weight, _ in b["weightDevice"] or ():
            if weight:
                _write(d, name, f"{major}:{minor} {scaled(weight)}")
    for field, (_, key) in THROTTLES.items():
        for major, minor, rate in b[field] or ():
            _write(d, "io.max", f"{major}:{minor} {key}={rate if rate else 'max'}")


def oom_kills(path):
    """How many processes of cgroup `path` the kernel's OOM killer has
    killed (its limit reached); None where there is no memory cgroup."""
    kind = cgroup.layout()[0]
    d = cgroup.dir_of(path, "memory")
    name = "memory.oom_control" if kind == "v1" else "memory.events"
    try:
        with open(os.path.join(d, name)) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError, TypeError):
        return None
    return 0


class OomWatch:
    """The OOM events of cgroup `path` from now on, as runc reports them.
    cgroup v1: an eventfd the kernel signals when the cgroup hits its limit
    (cgroup.event_control on memory.oom_control), and when the cgroup is
    removed: an OOM that ends the container is seen even if the cgroup goes
    right after.  Else the oom_kill count, read at each take()."""

    def __init__(self, path):
        self.fd = None
        d = cgroup.dir_of(path, "memory")
        if cgroup.layout()[0] == "v1" and d is not None:
            self.control = os.path.join(d, "cgroup.event_control")
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            try:
                ofd = os.open(os.path.join(d, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    with open(self.control, "w") as f:
                        f.write(f"{efd} {ofd}")
                finally:
                    os.close(ofd)
                self.fd = efd
            except OSError:
                os.close(efd)
        self.path = path
        self.count = oom_kills(path)

    def fileno(self):
        """What to select on to wake at an OOM (None: poll take())."""
        return self.fd

    def take(self):
        """How many OOM events came since the last take()."""
        if self.fd is not None:
            try:
                n = os.eventfd_read(self.fd)
            except BlockingIOError:
                return 0
            if not os.path.exists(self.control):
                # the cgroup was removed, which signals once too
                os.close(self.fd)
                self.fd = None
                return 0 if n == 1 else 1
            return 1
        now = oom_kills(self.path)
        if now is None or self.count is None:
            self.count = now if now is not None else self.count
            return 0
        new, self.count = max(0, now - self.count), now
        return new
