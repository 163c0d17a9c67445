/*
 * The pod sandbox's first process for gxlib's locally built pause image.
 *
 * It holds the pod's namespaces open: it sleeps until SIGTERM or SIGINT asks it to stop, and, being PID 1
 * of the pod when the pod shares its PID namespace, it reaps every child that is re-parented to it so that
 * no zombie stays behind. It prints nothing unless called with -v (prints the version) and exits 0 on a
 * stop signal.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GX_PAUSE_VERSION
#define GX_PAUSE_VERSION "dev"
#endif

static volatile sig_atomic_t stop_requested = 0;

static void on_stop(int signo) {
    (void)signo;
    stop_requested = 1;
}

static void on_child(int signo) {
    (void)signo;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int install(int signo, void (*handler)(int)) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = (signo == SIGCHLD) ? (SA_NOCLDSTOP | SA_RESTART) : 0;
    return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        printf("gx-pause %s\n", GX_PAUSE_VERSION);
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "gx-pause: warning: not PID 1; orphans are reaped only by PID 1\n");
    }
    if (install(SIGTERM, on_stop) != 0 || install(SIGINT, on_stop) != 0 || install(SIGCHLD, on_child) != 0) {
        perror("gx-pause: sigaction");
        return 1;
    }
    /* Block the signals and wait for them with sigsuspend, which unblocks atomically: a stop signal that
       arrives between the check and the wait is not lost. */
    sigset_t blocked, waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &blocked, &waiting) != 0) {
        perror("gx-pause: sigprocmask");
        return 1;
    }
    while (!stop_requested) {
        sigsuspend(&waiting);
    }
    return 0;
}
