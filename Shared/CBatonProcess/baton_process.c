#define _GNU_SOURCE
#include "baton_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int baton_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

/* In a forked child: every descriptor from 3 up closes on exec (so that the child holds none of the parent's
 * sockets), while the ones it still uses until then stay open. Async-signal-safe. */
static void close_on_exec_from_3(void) {
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    struct rlimit limit;
    long highest = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? (long)limit.rlim_cur : 65536;
    if (highest > 65536) highest = 65536;
    for (long fd = 3; fd < highest; fd++) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
}

int baton_output_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int baton_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

pid_t baton_spawn(char *const argv[], char *const envp[], const char *directory, int output_fd) {
    /* The child reports a failed exec through this pipe, so the caller gets the errno instead of a mystery exit. */
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return -error;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        close(report[0]);
        int error = 0;
        if (setpgid(0, 0) != 0) error = errno;
        if (!error && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) error = errno;
        if (!error && getppid() != parent) _exit(127); /* the supervisor died before we got here */
        if (!error && (dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0)) error = errno;
        if (!error && directory != NULL && chdir(directory) != 0) error = errno;
        if (!error) close_on_exec_from_3();
        if (!error) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            for (int signal_number = 1; signal_number < NSIG; signal_number++) {
                if (signal_number != SIGKILL && signal_number != SIGSTOP) signal(signal_number, SIG_DFL);
            }
            execve(argv[0], argv, envp);
            error = errno;
        }
        ssize_t ignored = write(report[1], &error, sizeof error);
        (void)ignored;
        _exit(127);
    }
    close(report[1]);
    int error = 0;
    ssize_t got;
    do {
        got = read(report[0], &error, sizeof error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == sizeof error && error != 0) {
        /* The child has exited (or is about to); the caller's reaper collects it. */
        return -error;
    }
    return pid;
}
