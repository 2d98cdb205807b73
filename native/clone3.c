/* clone3(2) on the fast path.
 *
 * Its arguments are a struct in the caller's memory: the filter cannot read
 * them, and a racing thread could change them between a check and the
 * kernel's copy.  So the struct is copied to the caller's staging slot
 * (read-only to the guest) and the call pointed at the copy; the guest's
 * rdi and rsi follow the copy there, for Python to give a new child back
 * (sentry/kernel/clone.py), and come back to the caller at its syscall exit
 * (identity.c), where its child's pid is also translated.
 *
 * Answered here only when the copy asks for nothing a Python rule decides:
 * no new namespace, no CLONE_UNTRACED, no set_tid or cgroup, no flag the
 * kernel does not know, and the struct no longer than this kernel's.  The
 * rest goes to Python (syscalls/process.py sys_clone3), which stages the
 * same way and checks the errors in the kernel's order. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "tracer.h"

#define CLONE_UNTRACED 0x00800000ULL
/* NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET, and NEWTIME (0x80,
 * the exit signal's byte in clone(2), a flag in clone3) */
#define CLONE_NEW_ALL 0x7E020080ULL
#define CLONE_CLEAR_SIGHAND (1ULL << 32)

int sn_fast_clone3(int tid, sn_regs *r)
{
	if (r->orig_rax != SYS_clone3 || !sn_fast_enabled()) return 0;
	uint64_t size = r->rsi;                 /* a size_t: all 64 bits */
	if (size < SN_CLONE_ARGS_VER0 || size > SN_CLONE_ARGS_SIZE) return 0;
	unsigned char blob[SN_CLONE3_STAGED];
	memset(blob, 0, sizeof blob);
	if (sn_read_mem(tid, r->rdi, blob, size) != (long)size) return 0;
	uint64_t flags, set_tid = 0, set_tid_size = 0;
	memcpy(&flags, blob, 8);
	memcpy(&set_tid, blob + 64, 8);
	memcpy(&set_tid_size, blob + 72, 8);
	if (flags & ~(0xFFFFFFFFULL | CLONE_CLEAR_SIGHAND)) return 0;
	if (flags & (CLONE_UNTRACED | CLONE_NEW_ALL) || set_tid || set_tid_size) return 0;
	uint64_t slot = sn_slot_of(tid);
	if (!slot) return 0;
	memcpy(blob + SN_CLONE_ARGS_SIZE, &r->rdi, 8);
	memcpy(blob + SN_CLONE_ARGS_SIZE + 8, &r->rsi, 8);
	if (sn_stage(tid, slot, blob, sizeof blob)) return 0;
	if (!sn_ident_restore_at_exit(tid, r->rdi, r->rsi)) return 0;
	r->rdi = slot;
	if (ptrace(PTRACE_SETREGS, tid, 0, r)) return 0;   /* gone: its row goes too */
	ptrace(PTRACE_SYSCALL, tid, 0, 0);
	return 1;
}
