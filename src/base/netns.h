/* SPDX-License-Identifier: MIT */
#ifndef AMBER_NETNS_H
#define AMBER_NETNS_H

/*
 * The calling thread's network namespace. setns(CLONE_NEWNET) is per
 * thread and allowed in a threaded process: amber's thread enters the
 * tree's namespace for the whole dump (sockets, sock_diag, the network
 * lock, rtnetlink all answer for the namespace their socket was made
 * in), and the restore's thread makes the new one and stays in it while
 * the tree is made. Every other thread keeps amber's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Enters the network namespace of @pid; *@home: an fd of the one left. 0 or -errno. */
int netns_enter_pid(pid_t pid, int *home);
/* Back into @home, which is closed (-1: nothing to do). 0 or -errno. */
int netns_return(int home);
/* The inode of the calling thread's network namespace, 0 if it can't be read. */
uint64_t netns_self_ino(void);

#endif
