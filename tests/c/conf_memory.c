/* Conformance: mmap anon/file private/shared, mprotect + SIGSEGV handler,
 * mremap grow/move, madvise DONTNEED, brk, mlock, msync,
 * MAP_FIXED_NOREPLACE, partial munmap.  Deterministic transcript: addresses
 * only as relations.
 * Usage: conf_memory SCRATCH */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transcript.h"
#define M(expr) mreport(#expr, (expr))
static void *mreport(const char *what, void *p)
{
	if (p == MAP_FAILED) printf("%s = MAP_FAILED %s\n", what, strerrorname_np(errno));
	else printf("%s = ok\n", what);
	errno = 0;
	return p;
}



static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code, fault_sig;
static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	fault_sig = sig; fault_code = si->si_code; fault_addr = si->si_addr;
	siglongjmp(jb, 1);
}

static const char *codename(int sig, int code)
{
	if (sig == SIGSEGV) return code == SEGV_MAPERR ? "SEGV_MAPERR" : code == SEGV_ACCERR ? "SEGV_ACCERR" : "SEGV_?";
	if (sig == SIGBUS) return code == BUS_ADRERR ? "BUS_ADRERR" : "BUS_?";
	return "?";
}

/* try a read or write at p; print what happened */
static void probe(const char *what, volatile char *p, int write)
{
	fault_sig = 0;
	if (sigsetjmp(jb, 1) == 0) {
		if (write) *p = 'w'; else (void)*p;
		printf("%s: %s ok\n", what, write ? "write" : "read");
	} else {
		printf("%s: %s %s at the address: %d\n", what, sigabbrev_np(fault_sig), codename(fault_sig, fault_code), fault_addr == (void *)p);
	}
}

int main(int argc, char **argv)
{
	long pg = sysconf(_SC_PAGESIZE);
	int st;
	char buf[64];
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);
	printf("page size %ld\n", pg);
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_fault; sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, 0); sigaction(SIGBUS, &sa, 0);

	printf("-- anonymous\n");
	char *a = M(mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	int zero = 1; for (long i = 0; i < 4 * pg; i++) zero &= a[i] == 0;
	printf("zero-filled: %d page-aligned: %d\n", zero, ((uintptr_t)a & (pg - 1)) == 0);
	memset(a, 'x', 4 * pg);
	M(mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	M(mmap(0, pg, PROT_READ, MAP_ANONYMOUS, -1, 0));
	M(mmap(0, pg, PROT_READ, MAP_PRIVATE, -1, 0));
	M(mmap(0, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1));
	M(mmap(0, (size_t)1 << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	M(mmap(0, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0));

	printf("-- mprotect and faults\n");
	T(mprotect(a, pg, PROT_READ));
	probe("read-only page", a, 0); probe("read-only page", a, 1);
	T(mprotect(a, pg, PROT_NONE)); probe("PROT_NONE page", a, 0);
	T(mprotect(a, pg, PROT_READ | PROT_WRITE)); probe("restored page", a, 1);
	T(mprotect(a + 1, pg, PROT_READ)); T(mprotect(a, pg, 0x1000)); T(mprotect(a, 0, PROT_READ));
	probe("NULL", (char *)0, 0);
	T(mprotect(a, pg, PROT_READ | PROT_EXEC));
	T(mprotect(a, pg, PROT_READ | PROT_WRITE));

	printf("-- partial munmap\n");
	T(munmap(a + pg, pg));
	probe("page 0", a, 1); probe("unmapped page 1", a + pg, 0); probe("page 2", a + 2 * pg, 1);
	T(munmap(a + pg, pg)); T(munmap(a + 1, pg)); T(munmap(a, 0));
	unsigned char vec[4];
	T(mincore(a, 3 * pg, vec)); T(mincore(a, pg, vec)); printf("resident: %d\n", vec[0] & 1);
	T(msync(a + pg, pg, MS_SYNC));
	T(madvise(a + pg, pg, MADV_DONTNEED));

	printf("-- MAP_FIXED and MAP_FIXED_NOREPLACE\n");
	char *f = M(mmap(a + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
	printf("placed at the hint: %d\n", f == a + pg);
	M(mmap(a, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
	M(mmap(a + pg / 2, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
	M(mmap(a + 1, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	char *g = M(mmap(a, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	printf("MAP_FIXED replaced: at hint %d, zeroed %d\n", g == a, a[0] == 0);
	T(munmap(a, 4 * pg));

	printf("-- file mappings\n");
	int fd = open("data", O_CREAT | O_RDWR | O_TRUNC, 0644);
	for (int i = 0; i < 3; i++) { memset(buf, 'a' + i, sizeof buf); for (long j = 0; j < pg; j += sizeof buf) write(fd, buf, sizeof buf); }
	char *pv = M(mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
	char *sh = M(mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	printf("contents: %c %c %c\n", pv[0], pv[pg], pv[2 * pg]);
	pv[0] = 'P'; sh[pg] = 'S';
	pread(fd, buf, 1, 0); printf("file after private write: %c\n", buf[0]);
	pread(fd, buf, 1, pg); printf("file after shared write: %c\n", buf[0]);
	printf("private view sees the shared write on an untouched page: %c\n", pv[pg]);
	pwrite(fd, "W", 1, 2 * pg);
	printf("write() seen by shared: %c, by untouched private: %c\n", sh[2 * pg], pv[2 * pg]);
	T(msync(sh, 3 * pg, MS_SYNC)); T(msync(sh, 3 * pg, MS_ASYNC)); T(msync(sh + 1, pg, MS_SYNC));
	T(msync(sh, pg, MS_SYNC | MS_ASYNC)); T(msync(sh, pg, MS_INVALIDATE));
	T(madvise(pv, pg, MADV_DONTNEED)); printf("private page after DONTNEED: %c\n", pv[0]);
	M(mmap(0, pg, PROT_READ, MAP_PRIVATE, fd, pg / 2));
	M(mmap(0, pg, PROT_READ, MAP_SHARED, 12345, 0));
	int ro = open("data", O_RDONLY);
	M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0));
	char *rop = M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0));
	char *ros = M(mmap(0, pg, PROT_READ, MAP_SHARED, ro, 0));
	T(mprotect(ros, pg, PROT_READ | PROT_WRITE));
	int wo = open("data", O_WRONLY);
	M(mmap(0, pg, PROT_READ, MAP_SHARED, wo, 0));
	close(wo);
	munmap(rop, pg); munmap(ros, pg); close(ro);
	/* past the end of the file: SIGBUS */
	char *past = M(mmap(0, 5 * pg, PROT_READ, MAP_SHARED, fd, 0));
	probe("within the file", past + 2 * pg, 0);
	probe("beyond EOF", past + 4 * pg, 0);
	munmap(past, 5 * pg);
	T(ftruncate(fd, pg)); probe("shared page after truncate", sh + 2 * pg, 0);
	munmap(pv, 3 * pg); munmap(sh, 3 * pg);
	int dir = open(".", O_RDONLY | O_DIRECTORY);
	M(mmap(0, pg, PROT_READ, MAP_PRIVATE, dir, 0));
	close(dir);
	int zf = open("/dev/zero", O_RDWR);
	char *z = M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, zf, 0)); printf("/dev/zero mapping reads %d\n", z[10]);
	munmap(z, pg); close(zf);

	printf("-- sharing across fork\n");
	char *shared = M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	char *priv = M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	strcpy(shared, "parent"); strcpy(priv, "parent");
	pid_t c = fork();
	if (c == 0) { strcpy(shared, "child"); strcpy(priv, "child"); _exit(0); }
	waitpid(c, &st, 0);
	printf("after child wrote: shared=%s private=%s\n", shared, priv);
	T(madvise(priv, pg, MADV_DONTFORK));
	c = fork();
	if (c == 0) { signal(SIGSEGV, SIG_DFL); priv[0] = 'x'; _exit(0); }
	waitpid(c, &st, 0); status("child touching a MADV_DONTFORK page", st);
	T(madvise(priv, pg, MADV_DOFORK));

	printf("-- madvise\n");
	char *d = M(mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	memset(d, 7, 2 * pg);
	T(madvise(d, pg, MADV_DONTNEED)); printf("after DONTNEED: %d %d\n", d[0], d[pg]);
	T(madvise(d, 2 * pg, MADV_WILLNEED)); T(madvise(d, 2 * pg, MADV_SEQUENTIAL)); T(madvise(d, 2 * pg, MADV_NORMAL));
	T(madvise(d, 2 * pg, 12345)); T(madvise(d + 1, pg, MADV_DONTNEED));
	T(madvise(d, 2 * pg, MADV_FREE));
	T(madvise(shared, pg, MADV_DONTNEED)); printf("shared anon after DONTNEED keeps data: %s\n", shared);

	printf("-- mremap\n");
	char *r = M(mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	memset(r, 'r', 2 * pg); munmap(r + 2 * pg, pg);
	char *guard = M(mmap(r + 2 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
	printf("guard placed after: %d\n", guard == r + 2 * pg);
	M(mremap(r, 2 * pg, 4 * pg, 0));
	char *r2 = M(mremap(r, 2 * pg, 4 * pg, MREMAP_MAYMOVE));
	printf("moved: %d contents kept: %d grown part zero: %d\n", r2 != r, r2[2 * pg - 1] == 'r', r2[3 * pg] == 0);
	probe("old address", r, 0);
	char *r3 = M(mremap(r2, 4 * pg, pg, 0)); printf("shrunk in place: %d\n", r3 == r2);
	probe("shrunk tail", r2 + 2 * pg, 0);
	char *tgt = mmap(0, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *r4 = M(mremap(r3, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, tgt)); printf("moved to fixed target: %d data %c\n", r4 == tgt, r4[0]);
	M(mremap(r4, pg, pg, MREMAP_FIXED, r));
	M(mremap(r4 + 1, pg, pg, MREMAP_MAYMOVE));
	M(mremap(r4, pg, 0, MREMAP_MAYMOVE));
	M(mremap(r, pg, 2 * pg, MREMAP_MAYMOVE));
	char *dup = M(mremap(shared, 0, pg, MREMAP_MAYMOVE)); printf("duplicate of a shared mapping sees: %s\n", dup);
	char *dc = M(mremap(r4, pg, pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
	if (dc != MAP_FAILED) printf("DONTUNMAP: new has data %c, old reads %d\n", dc[0], r4[0]);

	printf("-- brk\n");
	char *b0 = (char *)syscall(SYS_brk, 0);
	char *b1 = (char *)syscall(SYS_brk, b0 + 64 * 1024);
	printf("brk grew: %d\n", b1 == b0 + 64 * 1024);
	b0[0] = 1; b0[64 * 1024 - 1] = 2;
	printf("new heap usable: %d\n", b0[64 * 1024 - 1] == 2);
	char *b2 = (char *)syscall(SYS_brk, b0);
	printf("brk shrank back: %d\n", b2 == b0);
	probe("above shrunk brk", b0 + 32 * 1024, 0);
	char *b3 = (char *)syscall(SYS_brk, (char *)16);
	printf("brk below start refused (unchanged): %d\n", b3 == b0);
	void *s1 = sbrk(0); T(sbrk(4096) == s1); T(sbrk(-4096) != (void *)-1); T(sbrk(0) == s1);

	printf("-- mlock\n");
	char *l = M(mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	struct rlimit ml; getrlimit(RLIMIT_MEMLOCK, &ml);
	printf("RLIMIT_MEMLOCK at least one page: %d\n", ml.rlim_cur >= (rlim_t)pg);
	T(mlock(l, pg)); T(munlock(l, pg)); T(mlock2(l, pg, MLOCK_ONFAULT)); T(munlock(l, pg));
	T(mlock2(l, pg, 0x100)); T(mlock(l + 2 * pg + (1 << 20), pg));
	/* without CAP_IPC_LOCK, locking all of the address space may exceed RLIMIT_MEMLOCK */
	long lr = mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
	printf("mlockall as CAP_IPC_LOCK predicts: %d\n", has_cap(CAP_IPC_LOCK) ? lr == 0 : lr == 0 || errno == ENOMEM);
	T(munlockall()); T(mlockall(0));
	c = fork();
	if (c == 0) {
		struct rlimit zero_ml = { 0, 0 };
		if (setrlimit(RLIMIT_MEMLOCK, &zero_ml)) _exit(90);
		_exit(mlock(l, pg) == 0 ? 0 : errno);
	}
	waitpid(c, &st, 0);
	printf("mlock with RLIMIT_MEMLOCK 0 as CAP_IPC_LOCK predicts: %d\n", WEXITSTATUS(st) == (has_cap(CAP_IPC_LOCK) ? 0 : EPERM));

	printf("-- memfd\n");
	int mf = memfd_create("conf", MFD_ALLOW_SEALING | MFD_CLOEXEC); T(mf >= 0);
	T(ftruncate(mf, pg));
	char *mm = M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0)); strcpy(mm, "memfd");
	T(pread(mf, buf, 5, 0));
	T(fcntl(mf, F_ADD_SEALS, F_SEAL_WRITE));
	munmap(mm, pg);
	T(fcntl(mf, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW));
	T(fcntl(mf, F_GET_SEALS));
	T(write(mf, "x", 1)); T(ftruncate(mf, 2 * pg)); T(ftruncate(mf, 0));
	M(mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0));
	T(memfd_create("bad", 0x1000));
	close(mf);
	return 0;
}
