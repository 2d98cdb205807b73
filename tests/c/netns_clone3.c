/* clone3 with CLONE_NEWNET: the child is in a new network namespace (its
 * /proc/self/ns/net differs), whose lo is down: a loopback connect is
 * ENETUNREACH (tests/test_netns.py, natively and inside). */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
int main(void){
  char me[64]={0}; readlink("/proc/self/ns/net", me, 63);
  struct clone_args a; memset(&a,0,sizeof a); a.flags=CLONE_NEWNET; a.exit_signal=SIGCHLD;
  long p = syscall(SYS_clone3, &a, sizeof a);
  if (p==0){ char c[64]={0}; readlink("/proc/self/ns/net", c, 63);
    int s=socket(AF_INET,SOCK_STREAM,0); struct sockaddr_in sin={.sin_family=AF_INET,.sin_port=htons(9),.sin_addr.s_addr=htonl(0x7f000001)};
    int r=connect(s,(void*)&sin,sizeof sin);
    printf("child differs %d connect %d %s\n", strcmp(c,me)!=0, r, strerror(errno)); fflush(stdout); _exit(0);}
  if (p<0){perror("clone3"); return 1;}
  waitpid(p,0,0); return 0; }
