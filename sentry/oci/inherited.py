"""What the container process sets on itself before it forks the Sentry, so
that the whole sandbox inherits it -- the Sentry, its helpers and every
guest, as all of runc's container processes share what its init was given:
process.oomScoreAdj, process.ioPriority, process.scheduler (policy,
priority, nice) and linux.personality.  A guest reads them back through
calls the Sentry passes on with host pids (ioprio_get, getpriority,
sched_getscheduler) or that run natively (personality); uname's machine
follows the Sentry's own personality (i686 under LINUX32).

check() at create, in the caller; apply() in the container process, where a
value the kernel refuses fails create in runc's words."""
import os

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
SYS_IOPRIO_SET = 251
POLICIES = {"SCHED_OTHER": os.SCHED_OTHER, "SCHED_FIFO": os.SCHED_FIFO, "SCHED_RR": os.SCHED_RR,
            "SCHED_BATCH": os.SCHED_BATCH, "SCHED_IDLE": os.SCHED_IDLE}
PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}


class InheritedError(Exception):
    """config.json asks for what cannot be set: one line."""


def _int(v, low, high, what):
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise InheritedError(f"{what} {v!r}: between {low} and {high}")
    return v


def check(spec):
    """The values apply() sets, decoded: {"oom": int|None, "ioprio": int|None,
    "sched": (policy, priority, nice)|None, "personality": int|None};
    InheritedError for what sentry cannot give."""
    process = spec.get("process") or {}
    out = {"oom": None, "ioprio": None, "sched": None, "personality": None}
    if process.get("oomScoreAdj") is not None:
        out["oom"] = _int(process["oomScoreAdj"], -1000, 1000, "process.oomScoreAdj")
    io = process.get("ioPriority")
    if io is not None:
        if not isinstance(io, dict) or io.get("class") not in IOPRIO_CLASSES:
            raise InheritedError(f"process.ioPriority {io!r}: a class of {', '.join(IOPRIO_CLASSES)}")
        prio = _int(io.get("priority", 0), 0, 7, "process.ioPriority.priority")
        out["ioprio"] = IOPRIO_CLASSES[io["class"]] << IOPRIO_CLASS_SHIFT | prio
    sched = process.get("scheduler")
    if sched is not None:
        out["sched"] = _scheduler(sched)
    pers = (spec.get("linux") or {}).get("personality")
    if pers is not None:
        if not isinstance(pers, dict) or pers.get("domain") not in PERSONALITIES:
            raise InheritedError(f"linux.personality {pers!r}: a domain of LINUX or LINUX32")
        if pers.get("flags"):
            raise InheritedError(f"linux.personality.flags {pers['flags']!r}: not supported by sentry")
        out["personality"] = PERSONALITIES[pers["domain"]]
    return out


def _scheduler(s):
    if not isinstance(s, dict):
        raise InheritedError("process.scheduler: an object (policy, nice, priority …)")
    policy = s.get("policy")
    if policy == "SCHED_DEADLINE":
        # a deadline task cannot fork (EAGAIN), and the sandbox's first
        # process is the Sentry's fork
        raise InheritedError("process.scheduler.policy SCHED_DEADLINE: not supported by sentry "
                             "(its processes fork, which a deadline task may not)")
    if policy not in POLICIES:
        raise InheritedError(f"process.scheduler.policy {policy!r}: one of {', '.join(POLICIES)}")
    if s.get("flags"):
        # reset-on-fork would leave every guest without it: the container's
        # first process is a fork of the one that takes it
        raise InheritedError(f"process.scheduler.flags {s['flags']!r}: not supported by sentry")
    realtime = policy in ("SCHED_FIFO", "SCHED_RR")
    priority = _int(s.get("priority", 0), 1 if realtime else 0, 99 if realtime else 0,
                    f"process.scheduler.priority for {policy}")
    nice = _int(s.get("nice", 0), -20, 19, "process.scheduler.nice")
    return POLICIES[policy], priority, nice


def apply(values):
    """Set what check() decoded on the calling process (the container
    process, before it forks); InheritedError in runc's words when the
    kernel refuses (lowering oom_score_adj without CAP_SYS_RESOURCE …)."""
    prefix = "sentry create failed: unable to start container process: "
    if values["oom"] is not None:
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(values["oom"]))
        except OSError as e:
            raise InheritedError(f"{prefix}write /proc/self/oom_score_adj: {e.strerror.lower()}")
    if values["sched"] is not None:
        policy, priority, nice = values["sched"]
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            os.sched_setscheduler(0, policy, os.sched_param(priority))
        except OSError as e:
            raise InheritedError(f"{prefix}error setting scheduler: {e.strerror.lower()}")
    if values["ioprio"] is not None:
        err = _libc_call("syscall", SYS_IOPRIO_SET, IOPRIO_WHO_PROCESS, 0, values["ioprio"])
        if err:
            raise InheritedError(f"{prefix}failed to set io priority: {os.strerror(err).lower()}")
    if values["personality"] is not None:
        err = _libc_call("personality", values["personality"])
        if err:
            raise InheritedError(f"{prefix}unable to set personality: {os.strerror(err).lower()}")


def _libc_call(name, *args):
    """libc's `name`(args): 0, or the errno it failed with (ctypes only
    for a spec that asks: no start pays its import)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = getattr(libc, name)(*[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if r == -1 else 0
