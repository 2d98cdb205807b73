/* An init that takes SIGTERM without a handler, as engines' inits do:
 * blocked, then waited for by signalfd (podman --init's catatonit) or
 * rt_sigtimedwait (tini), per argv[1]; says what came and exits 7. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int signo = 0;
    printf("ready\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "signalfd") == 0) {
        struct signalfd_siginfo si;
        int fd = signalfd(-1, &set, 0);
        if (read(fd, &si, sizeof si) == sizeof si)
            signo = si.ssi_signo;
    } else {
        siginfo_t info;
        signo = sigwaitinfo(&set, &info);
    }
    printf("got %d\n", signo);
    return 7;
}
