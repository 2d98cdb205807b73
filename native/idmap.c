/* Host ids as the guest sees them, when it runs in a one-id user namespace
 * (sentry/kernel/idmap.py): a stat the Sentry makes for the guest, in C or
 * in Python, is the Sentry's view, which the kernel would have mapped for a
 * call made in the guest itself.  Every such stat passes through here. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "tracer.h"

#define OVERFLOW_ID 65534
#define STATX_UID 20            /* struct statx: stx_uid, stx_gid */
#define STATX_GID 24

static struct { int on; uint32_t guest_uid, host_uid, guest_gid, host_gid; } map;

void sn_set_idmap(uint32_t guest_uid, uint32_t host_uid, uint32_t guest_gid, uint32_t host_gid)
{
	map.on = 1;
	map.guest_uid = guest_uid; map.host_uid = host_uid;
	map.guest_gid = guest_gid; map.host_gid = host_gid;
}

static void map_ids(char *raw, size_t uid_at, size_t gid_at)
{
	uint32_t id;
	if (!map.on) return;
	memcpy(&id, raw + uid_at, 4);
	id = id == map.host_uid ? map.guest_uid : OVERFLOW_ID;
	memcpy(raw + uid_at, &id, 4);
	memcpy(&id, raw + gid_at, 4);
	id = id == map.host_gid ? map.guest_gid : OVERFLOW_ID;
	memcpy(raw + gid_at, &id, 4);
}

void sn_map_stat_ids(void *raw144)
{
	map_ids(raw144, offsetof(struct stat, st_uid), offsetof(struct stat, st_gid));
}

void sn_map_statx_ids(void *raw256)
{
	map_ids(raw256, STATX_UID, STATX_GID);
}

/* A guest's chown argument (a uid, or a gid with is_gid) as the host id to
 * give the file, as sentry/kernel/idmap.py's IdMap.host_ids has it for the
 * map set here: (uint32_t)-1 ("keep") stays, an id the one-id namespace does
 * not map is -EINVAL (tests/test_fastmeta.py compares the two). */
long sn_idmap_host(int is_gid, uint32_t guest)
{
	if (guest == 0xFFFFFFFFu || !map.on) return guest;
	if (guest != (is_gid ? map.guest_gid : map.guest_uid)) return -22;    /* EINVAL */
	return is_gid ? map.host_gid : map.host_uid;
}
