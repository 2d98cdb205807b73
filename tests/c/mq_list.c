/* A POSIX message queue as /dev/mqueue shows it: make one, list the
 * directory, read the queue's file, remove it, list again. */
#include <dirent.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void list(void)
{
    DIR *d = opendir("/dev/mqueue");
    if (!d) {
        perror("opendir /dev/mqueue");
        return;
    }
    struct dirent *e;
    printf("listing:");
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            printf(" %s", e->d_name);
    printf("\n");
    closedir(d);
}

int main(void)
{
    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 64};
    mqd_t q = mq_open("/sentry-q", O_CREAT | O_RDWR, 0600, &attr);
    if (q == (mqd_t)-1) {
        perror("mq_open");
        return 1;
    }
    if (mq_send(q, "hello", 5, 1) != 0)
        perror("mq_send");
    list();
    char buf[128] = {0};
    int fd = open("/dev/mqueue/sentry-q", O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) < 0)
        perror("read /dev/mqueue/sentry-q");
    else
        printf("%.*s\n", (int)strcspn(buf, " "), buf);
    mq_unlink("/sentry-q");
    list();
    return 0;
}
