/*
 * What the supervisor needs from Linux that Swift cannot call directly: prctl (variadic) and a fork/exec that
 * sets PR_SET_PDEATHSIG in the child before it runs the command.
 */
#ifndef BATON_PROCESS_H
#define BATON_PROCESS_H

#include <spawn.h>
#include <sys/types.h>

/* A pipe whose both ends close on exec, for a child's output. 0, or -errno. */
int baton_output_pipe(int fds[2]);

/* Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER). 0, or -errno. */
int baton_set_child_subreaper(void);

/*
 * Starts `argv[0]` (a path) with `argv` and `envp` in `directory`, in a new process group of its own, with its
 * standard output and error on `output_fd`, its signal mask and dispositions reset, and SIGKILL sent to it when
 * the calling thread's process dies (PR_SET_PDEATHSIG). Call it from a thread that lives as long as the process:
 * the kernel sends the signal when the spawning thread exits. Returns the pid, or -errno.
 */
pid_t baton_spawn(char *const argv[], char *const envp[], const char *directory, int output_fd);

/*
 * Adds to `actions` the closing, in the child, of every descriptor from `lowest` up (glibc's
 * posix_spawn_file_actions_addclosefrom_np, which Swift cannot see without _GNU_SOURCE). A child must not inherit
 * the parent's sockets: a connection the parent closes stays open while a child holds a copy. 0, or an errno.
 */
int baton_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
