/*
 * A minimal static `kill` for images that have no shell or coreutils (the Prometheus image: the operator's
 * reload is `kill -HUP 1` exec'd in the container).
 *
 *   kill [-SIGNAL | -s SIGNAL] PID...     SIGNAL is a name (HUP, SIGHUP) or a number; the default is TERM.
 *
 * Exits 0 when every PID was signalled, 1 otherwise (with one line on stderr per failure), 2 on bad usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct named_signal {
    const char *name;
    int number;
};

static const struct named_signal SIGNALS[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
};

static int usage(void) {
    fprintf(stderr, "usage: kill [-SIGNAL | -s SIGNAL] PID...\n");
    return 2;
}

/* The signal number for "HUP", "SIGHUP", "hup" or "1"; -1 when unknown. */
static int parse_signal(const char *text) {
    char *end = NULL;
    long number = strtol(text, &end, 10);
    if (*text != '\0' && *end == '\0') {
        return (number >= 0 && number < 65) ? (int)number : -1;
    }
    if (strncasecmp(text, "SIG", 3) == 0) {
        text += 3;
    }
    for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++) {
        if (strcasecmp(text, SIGNALS[i].name) == 0) {
            return SIGNALS[i].number;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    int signo = SIGTERM;
    int first = 1;
    if (first < argc && strcmp(argv[first], "-s") == 0) {
        if (first + 1 >= argc) {
            return usage();
        }
        signo = parse_signal(argv[first + 1]);
        first += 2;
    } else if (first < argc && argv[first][0] == '-' && argv[first][1] != '\0') {
        signo = parse_signal(argv[first] + 1);
        first += 1;
    }
    if (signo < 0 || first >= argc) {
        return usage();
    }
    int status = 0;
    for (int i = first; i < argc; i++) {
        char *end = NULL;
        long pid = strtol(argv[i], &end, 10);
        if (*argv[i] == '\0' || *end != '\0') {
            fprintf(stderr, "kill: %s: not a process id\n", argv[i]);
            status = 1;
            continue;
        }
        if (kill((pid_t)pid, signo) != 0) {
            fprintf(stderr, "kill: (%ld): %s\n", pid, strerror(errno));
            status = 1;
        }
    }
    return status;
}
