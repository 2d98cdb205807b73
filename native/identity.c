/*
 * The identity fast path: getpid and its kin answered without Python.
 *
 * These calls only read the caller's own ids, which the guest asks for all
 * the time (glibc, shells, every logger).  The Sentry's answer is virtual (a
 * pid in the sandbox's namespace, an emulated uid), so they trap; Python keeps
 * one row per task here, current at every change (sentry/kernel/publish.py
 * publishes it), and a task without a row goes to Python, which knows it too.
 * Calls that return a host pid (fork's parent, wait4, set_tid_address) run
 * and have their result translated at their syscall-exit stop, here too;
 * the kill family's targets are translated on the way in (signal_call).
 * A process's row outlives it until it is reaped: wait4 names zombies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracer.h"
#include "tidtable.h"

#define IDENT_TABLE 16384
/* exit_pid: the call in progress returns a host pid, to be given back as
 * the sandbox's at its syscall-exit stop (fork, wait4, set_tid_address);
 * child, vchild: a fork's child and its name, which Python told: the child
 * may be gone, and its row with it, by the time its parent's fork returns;
 * restore: the argument registers (bit k: the k-th, rdi first) the call in
 * progress was given in place of the guest's -- host pids, a staging
 * address -- which get the guest's own (args) back at that stop (kill,
 * tkill, tgkill, clone3, wait4 of one pid, and any rewrite of Python's that
 * needs nothing else there: sn_restore_args_at_exit);
 * python_signals: the task's signal-delivery stops are Python's (a call
 * the Sentry injected is on its way, or signals it held back meanwhile are
 * being delivered again); start: its first stop is C's (sn_start_child),
 * start_regs: and gives it back rdi and rsi there (a clone3 child) */
static struct {
	int tid; int exit_pid; unsigned restore; int child, vchild; uint64_t args[6]; sn_ident id;
	int python_signals; int start; uint64_t start_addr; int start_value;
	int start_regs; uint64_t start_rdi, start_rsi;
} rows[IDENT_TABLE];
/* The sandbox's name of each row's task -> its host tid (the kill family
 * names its target so); a row's name goes with its row. */
static struct { int vtid; int tid; } names[IDENT_TABLE];

static int row_index(int tid)
{
	return tid_find(rows, sizeof rows[0], IDENT_TABLE, tid);
}

static void name_drop(int vtid, int tid)
{
	int k = vtid > 0 ? tid_find(names, sizeof names[0], IDENT_TABLE, vtid) : -1;
	if (k >= 0 && names[k].tid == tid) names[k].vtid = -1;     /* tombstone */
}

static void name_put(int vtid, int tid)
{
	if (vtid <= 0) return;
	int k = tid_find(names, sizeof names[0], IDENT_TABLE, vtid);
	if (k < 0) k = tid_claim(names, sizeof names[0], IDENT_TABLE, vtid);
	if (k >= 0) names[k].tid = tid;
}

void sn_set_ident(int tid, const sn_ident *id)
{
	int i = row_index(tid);
	if (i >= 0 && id) {
		if (rows[i].id.vtid != id->vtid) name_drop(rows[i].id.vtid, tid);
		rows[i].id = *id;
		name_put(id->vtid, tid);
		return;
	}
	if (i >= 0) {
		name_drop(rows[i].id.vtid, tid);
		rows[i].exit_pid = rows[i].restore = rows[i].python_signals = rows[i].start = 0;
		rows[i].tid = -1;               /* tombstone */
	}
	if (!id) return;
	i = tid_claim(rows, sizeof rows[0], IDENT_TABLE, tid);
	if (i >= 0) {                       /* full: this task's calls go to Python */
		rows[i].exit_pid = rows[i].restore = rows[i].python_signals = rows[i].start = 0;
		rows[i].id = *id;
		name_put(id->vtid, tid);
	}
}

static int write_ids(int tid, sn_regs *r, uint32_t a, uint32_t b, uint32_t c)
{
	uint64_t addr[3] = { r->rdi, r->rsi, r->rdx };
	uint32_t val[3] = { a, b, c };
	for (int i = 0; i < 3; i++)
		if (sn_write_vm(tid, addr[i], &val[i], 4) != 4) return -EFAULT;
	return 0;
}

/* Fails closed: a task without a row (not published yet, or lost) has its
 * file calls checked in Python, never waved through unchecked. */
int sn_ident_checks_files(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.checks_files;
}

/* Fails closed as well: a task that may have a root of its own has its
 * paths resolved from that root in Python (syscalls/lookup.py). */
int sn_ident_chrooted(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.chrooted;
}

/* Fails closed too: an O_CREAT open that may create goes to Python, which
 * gives the new file its creator's ids (syscalls/owner.py). */
int sn_ident_foreign_creator(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.foreign_creator;
}

/* Fails closed: a task without a row has its chown checked in Python. */
int sn_ident_chown_any(int tid)
{
	int i = row_index(tid);
	return i >= 0 && rows[i].id.chown_any;
}

/* Fails closed: a task without a row has its ids shown by Python. */
int sn_ident_id_view(int tid)
{
	int i = row_index(tid);
	return i < 0 || rows[i].id.id_view;
}

/* Fails closed: a task without a row may share its fd table. */
int sn_ident_files_alone(int tid)
{
	int i = row_index(tid);
	return i >= 0 && rows[i].id.files_alone;
}

int sn_exit_pending(int tid)
{
	int i = row_index(tid);
	return i >= 0 && (rows[i].exit_pid || rows[i].restore);
}

/* Python answers the exit of the call in progress itself (a callback set
 * at an event stop: a refused fork): the registers a rewrite changed are
 * handed over in saved[0..5], and the mask of them returned (0: none). */
unsigned sn_exit_to_python(int tid, uint64_t saved[6])
{
	int i = row_index(tid);
	if (i < 0) return 0;
	unsigned had = rows[i].restore;
	memcpy(saved, rows[i].args, sizeof rows[i].args);
	rows[i].restore = rows[i].exit_pid = rows[i].child = 0;
	return had;
}

/* Python asks for the exit of the call in progress (a fork it saw, whose
 * child `child` the caller names `vchild`). */
int sn_exit_pid(int tid, int child, int vchild)
{
	int i = row_index(tid);
	if (i < 0 || rows[i].id.nested_pidns) return 0;
	rows[i].exit_pid = 1;
	rows[i].child = child;
	rows[i].vchild = vchild;
	return 1;
}

static int dumping_signal(int sig)
{
	switch (sig) {
	case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGBUS: case SIGFPE:
	case SIGSEGV: case SIGXCPU: case SIGXFSZ: case SIGSYS:
		return 1;
	}
	return 0;
}

/* A wait status the kernel wrote at `addr`: a death by a core-dumping
 * signal gets the core-dump bit (WCOREDUMP) that Linux would have set had
 * it written the core the child's RLIMIT_CORE allowed.  The status word is
 * the guest's own memory: a thread changing it meanwhile changes only what
 * it reads itself. */
void sn_mark_core_dump(int tid, uint64_t addr)
{
	int st;
	if (sn_read_mem(tid, addr, &st, sizeof st) != sizeof st) return;
	int sig = st & 0x7f;
	if (sig == 0 || sig == 0x7f || !dumping_signal(sig) || (st & 0x80)) return;
	st |= 0x80;
	sn_write_vm(tid, addr, &st, sizeof st);
}

/* At a syscall-exit stop: the argument registers a C rewrite changed come
 * back (the kill family, clone3, wait4 of one pid), and a host pid result
 * becomes the sandbox's (0 for a process the sandbox does not know, as
 * Linux shows one outside the namespace).  Returns 1 when answered here. */
int sn_ident_exit(int tid, sn_regs *r)
{
	int i = row_index(tid);
	if (i < 0 || !(rows[i].restore || rows[i].exit_pid)) return 0;
	uint64_t *reg[6] = { &r->rdi, &r->rsi, &r->rdx, &r->r10, &r->r8, &r->r9 };
	for (int k = 0; k < 6; k++)
		if (rows[i].restore & (1u << k)) *reg[k] = rows[i].args[k];
	long result = (long)r->rax;
	int j = rows[i].exit_pid && result > 0 ? row_index((int)result) : -1;
	if (rows[i].exit_pid && result > 0)
		r->rax = rows[i].child > 0 && result == rows[i].child ? (uint64_t)rows[i].vchild
			: j >= 0 ? (uint64_t)rows[j].id.vtid : 0;
	if (rows[i].restore || (rows[i].exit_pid && result > 0))
		ptrace(PTRACE_SETREGS, tid, 0, r);
	if (j >= 0 && rows[j].id.dumps_core && r->orig_rax == SYS_wait4 && r->rsi)
		sn_mark_core_dump(tid, r->rsi);
	rows[i].restore = rows[i].exit_pid = rows[i].child = 0;
	ptrace(PTRACE_CONT, tid, 0, 0);
	return 1;
}

/* From a seccomp stop: the call, rewritten, gets the guest's own argument
 * registers back at its syscall-exit stop, here, without Python -- those of
 * `mask` (bit k: the k-th argument) from args[k] -- and nothing else is
 * done there (a record left by a call whose exit never came is dropped).
 * 0 when the task has no row: Python's then. */
int sn_restore_args_at_exit(int tid, unsigned mask, const uint64_t args[6])
{
	int i = row_index(tid);
	if (i < 0 || (mask & ~0x3Fu)) return 0;
	rows[i].restore = mask;
	rows[i].exit_pid = rows[i].child = 0;
	memcpy(rows[i].args, args, sizeof rows[i].args);
	return 1;
}

/* A call C rewrote gets the guest's rdi and rsi back at its syscall-exit
 * stop (and, if Python asks, its pid result translated): 0 when the task
 * has no row here, or names pids in a namespace of its own (Python's). */
int sn_ident_restore_at_exit(int tid, uint64_t rdi, uint64_t rsi)
{
	int i = row_index(tid);
	if (i < 0 || rows[i].id.nested_pidns) return 0;
	uint64_t args[6] = { rdi, rsi };
	return sn_restore_args_at_exit(tid, 3, args);
}

/* ---- the kill family ------------------------------------------------------------
 *
 * kill(pid > 0), tkill and tgkill, as syscalls/signal.py sys_kill, sys_tkill
 * and sys_tgkill rewrite them: the guest's pids become the host's (its
 * registers given back at the syscall-exit stop, as Python's Rewrite(restore)
 * does: a host pid never stays in them), and the kernel signals, in the
 * guest's own context.  Only a target that is a live task the Sentry traces
 * now (TracerPid), so a row kept for a zombie or a reaped task (exit.py)
 * never names a host pid that may have been given to another process.
 * Declined, to Python: a bad signal (EINVAL), a name without a row (ESRCH,
 * zombies), the sandbox's init as target (it drops what it has no handler
 * for), a sender whose uids do not match the target's (CAP_KILL, SIGCONT
 * within a session, EPERM), tgkill's pair of another process (ESRCH). */

static int traced_by_me(int tid)
{
	char p[64], buf[512];
	snprintf(p, sizeof p, "/proc/%d/status", tid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);     /* TracerPid is the 8th line */
	close(fd);
	if (n <= 0) return 0;
	buf[n] = 0;
	char *t = strstr(buf, "\nTracerPid:\t");
	return t && strtol(t + 12, NULL, 10) == getpid();
}

static int row_named(int vtid)
{
	int k = vtid > 0 ? tid_find(names, sizeof names[0], IDENT_TABLE, vtid) : -1;
	return k >= 0 ? row_index(names[k].tid) : -1;
}

static int may_signal(const sn_ident *me, const sn_ident *t)
{
	return me->vpid == t->vpid || me->euid == t->suid || me->euid == t->ruid
		|| me->ruid == t->suid || me->ruid == t->ruid;
}

/* The call runs with host pids in rdi and rsi, and gets the guest's own
 * back at its syscall-exit stop (sn_ident_exit).  0 when the registers
 * could not be set: the call is Python's. */
static int run_with_pids(int i, int tid, sn_regs *r, uint64_t rdi, uint64_t rsi)
{
	rows[i].restore = 3;
	rows[i].args[0] = r->rdi;
	rows[i].args[1] = r->rsi;
	r->rdi = rdi;
	r->rsi = rsi;
	if (ptrace(PTRACE_SETREGS, tid, 0, r)) {
		rows[i].restore = rows[i].exit_pid = 0;
		return 0;
	}
	ptrace(PTRACE_SYSCALL, tid, 0, 0);
	return 1;
}

static int signal_call(int tid, sn_regs *r)
{
	int i = row_index(tid);
	if (i < 0) return 0;
	int tg = r->orig_rax == SYS_tgkill;
	int named = tg ? (int)r->rsi : (int)r->rdi;
	int sig = tg ? (int)r->rdx : (int)r->rsi;
	if (sig < 0 || sig >= 65 || named <= 0) return 0;
	int j = row_named(named);
	if (j < 0) return 0;
	const sn_ident *t = &rows[j].id;
	/* the sandbox's init, and either side in a namespace of its own: the
	 * rules of inits and the names there are Python's */
	if (t->vpid == 1 || t->nested_pidns || rows[i].id.nested_pidns || !may_signal(&rows[i].id, t))
		return 0;
	uint64_t first = (uint64_t)rows[j].tid, second = r->rsi;
	if (tg) {
		int leader = row_named((int)r->rdi);
		if ((int)r->rdi != t->vpid || leader < 0) return 0;
		first = (uint64_t)rows[leader].tid;      /* the kernel checks the pair */
		second = (uint64_t)rows[j].tid;
	}
	if (!traced_by_me(rows[j].tid)) return 0;
	return run_with_pids(i, tid, r, first, second);
}

/* wait4 of one child by its sandbox pid, as syscalls/process.py sys_wait4
 * rewrites it: the host pid of the task that name's row is now (a row's
 * name goes when its number is another task's, so a reaped child's name
 * leads to a host pid that is nobody's child: ECHILD, as the kernel says),
 * the guest's rdi back and the result translated at its exit stop.  A name
 * without a row (ECHILD in Python), a namespace of its own, and a task
 * whose calls the Sentry injects (Kernel.refuse reaps by host pid) are
 * Python's. */
static int wait_one(int i, int tid, sn_regs *r)
{
	int j = row_named((int)r->rdi);
	if (j < 0 || rows[i].python_signals || rows[j].id.nested_pidns) return 0;
	rows[i].exit_pid = 1;
	rows[i].child = 0;
	return run_with_pids(i, tid, r, (uint64_t)rows[j].tid, r->rsi);
}

int sn_ident_answer(int tid, sn_regs *r)
{
	long v;
	switch (r->orig_rax) {
	case SYS_getpid: case SYS_gettid: case SYS_getppid: case SYS_getpgrp:
	case SYS_getuid: case SYS_geteuid: case SYS_getgid: case SYS_getegid:
	case SYS_getresuid: case SYS_getresgid: case SYS_set_tid_address: case SYS_wait4:
		break;
	case SYS_kill: case SYS_tkill: case SYS_tgkill:
		return signal_call(tid, r);
	default:
		return 0;
	}
	int i = row_index(tid);
	/* a task of a PID namespace below the sandbox's names pids there: Python */
	if (i < 0 || rows[i].id.nested_pidns) return 0;
	if (r->orig_rax == SYS_set_tid_address || r->orig_rax == SYS_wait4) {
		/* wait4 for any child (-1) or one of the caller's group (0): no pid
		 * to translate on the way in; for one child, see wait_one; process
		 * groups (< -1) go to Python */
		if (r->orig_rax == SYS_wait4 && (int)r->rdi > 0) return wait_one(i, tid, r);
		if (r->orig_rax == SYS_wait4 && (int)r->rdi != -1 && (int)r->rdi != 0) return 0;
		rows[i].exit_pid = 1;
		rows[i].child = 0;
		ptrace(PTRACE_SYSCALL, tid, 0, 0);
		return 1;
	}
	const sn_ident *id = &rows[i].id;
	/* ids in a user namespace of its own: its view, Python's */
	if (id->id_view && r->orig_rax != SYS_getpid && r->orig_rax != SYS_gettid
	    && r->orig_rax != SYS_getppid && r->orig_rax != SYS_getpgrp) return 0;
	switch (r->orig_rax) {
	case SYS_getpid: v = id->vpid; break;
	case SYS_gettid: v = id->vtid; break;
	case SYS_getppid: v = id->vppid; break;
	case SYS_getpgrp: v = id->vpgrp; break;
	case SYS_getuid: v = id->ruid; break;
	case SYS_geteuid: v = id->euid; break;
	case SYS_getgid: v = id->rgid; break;
	case SYS_getegid: v = id->egid; break;
	case SYS_getresuid: v = write_ids(tid, r, id->ruid, id->euid, id->suid); break;
	default: v = write_ids(tid, r, id->rgid, id->egid, id->sgid); break;
	}
	sn_answer(tid, r, v);
	return 1;
}

/* ---- a new task's first stop, and SIGCHLD ----------------------------------------
 *
 * Per process the guest forks, two stops need nothing of Python's once
 * Python has seen the fork (kernel/clone.py): the child's first stop, where
 * it writes its own name where it asked for its tid (CLONE_CHILD_SETTID)
 * and runs, and the parent's SIGCHLD delivery, whose siginfo names the
 * child by host pid and host uid (kernel/signals.py, kernel/siginfo.py:
 * the same translation, from the rows).  Anything else stays Python's. */

/* Python has refused children (Kernel.phantoms): their SIGCHLD is dropped
 * there, and a refused child has no row of its own (its number's row may
 * be an older task's), so every SIGCHLD is Python's meanwhile. */
static int sigchld_python;
void sn_sigchld_to_python(int on) { sigchld_python = on; }

void sn_signals_to_python(int tid, int on)
{
	int i = row_index(tid);
	if (i >= 0) rows[i].python_signals = on;
}

/* After Python handled the fork of `tid` (its row published): at its first
 * stop, `value` is written at `addr` (0: nowhere), rdi and rsi are set to
 * the guest's own if `regs` (a clone3 child starts with the kernel's: the
 * staging copy's address), and it runs.  0: no row, the stop stays Python's. */
int sn_start_child(int tid, uint64_t addr, int value, int regs, uint64_t rdi, uint64_t rsi)
{
	int i = row_index(tid);
	if (i < 0) return 0;              /* no row (--strace): Python's */
	rows[i].start = 1;
	rows[i].start_addr = addr;
	rows[i].start_value = value;
	rows[i].start_regs = regs;
	rows[i].start_rdi = rdi;
	rows[i].start_rsi = rsi;
	return 1;
}

/* New tasks whose first stop came before Python saw their fork (the
 * kernel reports the child's stop first when both are pending): held
 * stopped here, not handed to Python, until Python has seen the fork
 * (sn_unpark) -- Python would only note it and wait, at the cost of a stop.
 * Only while rows are kept (not under --strace), and only a task with no
 * row: every task Python knows has one then. */
#define PARKED_MAX 256
static int parking, parked[PARKED_MAX], nparked;
void sn_park_first_stops(int on) { parking = on; }

static int park(int tid)
{
	if (!parking || nparked == PARKED_MAX) return 0;
	parked[nparked++] = tid;
	return 1;
}

/* Python is told of a new task: 1 if its first stop was held here (the
 * task is stopped, and Python must start it: sn_ident_first_stop). */
int sn_unpark(int tid)
{
	for (int k = 0; k < nparked; k++)
		if (parked[k] == tid) {
			parked[k] = parked[--nparked];
			return 1;
		}
	return 0;
}

/* The task is gone: what was pending for its stops goes with it (its row
 * stays while it is a zombie, and its number may name a new task's first
 * stop before Python has seen that fork). */
void sn_ident_gone(int tid)
{
	int i = row_index(tid);
	if (i >= 0) rows[i].start = rows[i].python_signals = 0;
	sn_unpark(tid);
}

/* The continuation of an event or signal stop, keeping a syscall-exit stop
 * C asked for (Kernel.resume). */
static void resume_from_stop(int i, int tid, int sig)
{
	int to_exit = i >= 0 && (rows[i].exit_pid || rows[i].restore);
	ptrace(to_exit ? PTRACE_SYSCALL : PTRACE_CONT, tid, 0, (void *)(long)sig);
}

/* A new task's first stop (or, from Python, a task whose first stop is
 * held: its start now).  0: the stop is Python's. */
int sn_ident_first_stop(int tid)
{
	int i = row_index(tid);
	if (i < 0) return park(tid);
	if (!rows[i].start) return 0;
	rows[i].start = 0;
	if (rows[i].start_regs) {
		sn_regs r;
		/* gone meanwhile: nothing to give back; the exit event follows */
		if (sn_getregs(tid, &r) == 0) {
			r.rdi = rows[i].start_rdi;
			r.rsi = rows[i].start_rsi;
			sn_setregs(tid, &r);
		}
	}
	if (rows[i].start_addr)
		sn_write_vm(tid, rows[i].start_addr, &rows[i].start_value, 4);   /* a bad address: skipped, as the kernel does */
	ptrace(PTRACE_CONT, tid, 0, 0);
	return 1;
}

#define SI_PID_OFFSET 16          /* si_pid, then si_uid (kernel/siginfo.py) */
#define SI_STATUS_OFFSET 24       /* SIGCHLD's si_status */
#define CLD_KILLED_CODE 2
#define CLD_DUMPED_CODE 3

int sn_ident_sigchld(int tid)
{
	if (sigchld_python) return 0;
	int i = row_index(tid);
	/* a receiver in a user namespace of its own sees ids through its maps:
	 * Python's (its row's id_view) */
	if (i < 0 || rows[i].id.nested_pidns || rows[i].id.id_view || rows[i].python_signals) return 0;
	unsigned char raw[128];
	if (ptrace(PTRACE_GETSIGINFO, tid, 0, raw)) return 0;
	int32_t signo, code, pid, status;
	memcpy(&signo, raw, 4);
	memcpy(&code, raw + 8, 4);
	memcpy(&pid, raw + SI_PID_OFFSET, 4);
	memcpy(&status, raw + SI_STATUS_OFFSET, 4);
	/* CLD_* codes: the kernel named the child; SI_USER and the like (a
	 * kill, the Sentry's own sending for a guest) are Python's */
	if (signo != SIGCHLD || code <= 0 || pid <= 0 || pid == getpid()) return 0;
	int j = row_index(pid);
	if (j < 0 || rows[j].id.nested_pidns) return 0;
	const sn_ident *child = &rows[j].id;
	if (code == CLD_KILLED_CODE && dumping_signal(status) && child->dumps_core)
		code = CLD_DUMPED_CODE;
	int32_t vpid = child->vpid;
	uint32_t uid = child->ruid;
	memcpy(raw + 8, &code, 4);
	memcpy(raw + SI_PID_OFFSET, &vpid, 4);
	memcpy(raw + SI_PID_OFFSET + 4, &uid, 4);
	if (ptrace(PTRACE_SETSIGINFO, tid, 0, raw)) return 0;
	resume_from_stop(i, tid, SIGCHLD);
	return 1;
}
