/*
 * The exec stop's check, fast path (sentry/loader/image.py says why).
 *
 * At PTRACE_EVENT_EXEC: /proc/<tid>/exe is the file (dev, ino), AT_BASE is
 * 0 (the kernel mapped no interpreter) and every file mapping in
 * /proc/<tid>/maps is that file.  Answers 1 only when all of this holds;
 * 0 for anything else (another file, a device number maps shows another
 * way, an unreadable file), and then Python's check decides and says why.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tracer.h"

#define AT_NULL_ 0
#define AT_BASE_ 7

/* Reads a /proc file into buf (NUL-terminated); its length, or -1
 * (unreadable, or longer than the buffer).  Reading stops at the end of
 * the file, or after a line that starts with `last`: nothing can follow
 * it, and a read past it would cost as much as the first. */
static long read_all(int dir, const char *name, char *buf, size_t size, const char *last)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	size_t len = 0, at = 0;
	if (fd < 0) return -1;
	for (;;) {
		if (len == size - 1) { len = (size_t)-1; break; }
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0) { len = (size_t)-1; break; }
		if (n == 0) break;
		len += n;
		buf[len] = 0;
		if (!last) continue;
		for (char *nl; (nl = memchr(buf + at, '\n', len - at)); at = nl + 1 - buf)
			if (!strncmp(buf + at, last, strlen(last)) && nl + 1 == buf + len) goto done;
	}
done:
	close(fd);
	if (len != (size_t)-1) buf[len] = 0;
	return (long)len;
}

static int no_interpreter(int dir)
{
	uint64_t auxv[512];
	long n = read_all(dir, "auxv", (char *)auxv, sizeof auxv, NULL);
	if (n < 0) return 0;
	for (long i = 0; i + 1 < n / 8; i += 2) {
		if (auxv[i] == AT_NULL_) return 1;
		if (auxv[i] == AT_BASE_ && auxv[i + 1]) return 0;
	}
	return 0;       /* cut short */
}

/* The x86-64 vsyscall page, above any mapping: when maps shows it, it is
 * its last line. */
#define VSYSCALL_LINE "ffffffffff600000-"

/* Each line: "start-end perms offset major:minor inode [name]".  The file
 * must be mapped at least once (an ELF always is). */
static int only_the_file(int dir, uint64_t dev, uint64_t ino)
{
	static char maps[1 << 16];
	int seen = 0;
	if (read_all(dir, "maps", maps, sizeof maps, VSYSCALL_LINE) < 0) return 0;
	for (char *line = maps; *line; ) {
		char *end = strchr(line, '\n'), *p = line;
		if (!end) return 0;
		for (int field = 0; field < 3; field++) {           /* range, perms, offset */
			while (p < end && *p != ' ') p++;
			while (p < end && *p == ' ') p++;
		}
		char *q;
		unsigned long major = strtoul(p, &q, 16);
		if (q == p || *q != ':') return 0;
		p = q + 1;
		unsigned long minor = strtoul(p, &q, 16);
		if (q == p || *q != ' ') return 0;
		p = q + 1;
		unsigned long long inode = strtoull(p, &q, 10);
		if (q == p || (*q != ' ' && *q != '\n')) return 0;
		if (major || minor || inode) {
			if (makedev(major, minor) != dev || inode != ino) return 0;
			seen = 1;
		}
		line = end + 1;
	}
	return seen;
}

int sn_image_ok(int tid, uint64_t dev, uint64_t ino)
{
	char path[32];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d", tid);
	int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) return 0;
	int ok = !fstatat(dir, "exe", &st, 0) && st.st_dev == dev && st.st_ino == ino
		&& no_interpreter(dir) && only_the_file(dir, dev, ino);
	close(dir);
	return ok;
}
