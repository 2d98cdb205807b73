"""How the kernel reads a syscall's six argument registers: each by its C type.

A register is 64 bits wide, but an `int` argument is its low 32 bits (the
kernel's SYSCALL_DEFINE wrappers cast every register to the declared type), a
`umode_t` its low 16.  Every handler sees its arguments decoded here, once,
from the declared types in the syscall table (syscalls/table.py), so that no
check can compare bits the kernel ignores: `seccomp(0x100000001, …)` is
`seccomp(1, …)` to the kernel and must be to the Sentry.

Kinds: "i32" (int, pid_t, clockid_t …: sign-extended low half), "u32"
(unsigned int, uid_t …), "u16" (umode_t), "i64" (long, loff_t), "u64"
(pointers, unsigned long, size_t: the whole register).
"""

_I32 = {"int", "pid_t", "clockid_t", "key_t", "key_serial_t", "mqd_t", "timer_t"}
_U32 = {"unsigned int", "unsigned", "uid_t", "gid_t", "qid_t", "u32", "__u32", "rwf_t"}
_U16 = {"umode_t"}
_I64 = {"long", "loff_t", "off_t", "ssize_t", "__kernel_old_time_t"}


def kind_of(ctype):
    """The decoding kind of one declared argument type."""
    ctype = ctype.strip()
    if "*" in ctype:
        return "u64"
    base = ctype.replace("const ", "")
    if base in _I32:
        return "i32"
    if base in _U32:
        return "u32"
    if base in _U16:
        return "u16"
    if base in _I64:
        return "i64"
    return "u64"


def _i32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _u32(v):
    return v & 0xFFFFFFFF


def _u16(v):
    return v & 0xFFFF


def _i64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _u64(v):
    return v


_DECODE = {"i32": _i32, "u32": _u32, "u16": _u16, "i64": _i64, "u64": _u64}


def decoder(kinds):
    """The function that turns six raw registers into typed arguments for a
    call declared with `kinds` (missing ones are read whole)."""
    fns = tuple(_DECODE[k] for k in kinds) + (_u64,) * (6 - len(kinds))
    f0, f1, f2, f3, f4, f5 = fns

    def decode(raw):
        return (f0(raw[0]), f1(raw[1]), f2(raw[2]), f3(raw[3]), f4(raw[4]), f5(raw[5]))
    return decode


RAW = decoder(())
