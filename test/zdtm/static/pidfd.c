// SPDX-License-Identifier: GPL-2.0
/*
 * pidfds: of the task itself (one with PIDFD_THREAD on the leader), of a
 * live child (PIDFD_NONBLOCK), of a zombie child, and two of a child that
 * exited and was reaped. After the restore each still refers to its
 * process: the child is signalled and waited through its pidfd, the
 * zombie is reaped through its pidfd with its exit status; the dead ones
 * say Pid -1, refer to one process (one pidfs inode) and are readable.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned int flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

/* The "Pid:" of pidfd @fd, as fdinfo shows it. */
static int pidfd_pid(int fd)
{
	char path[64], line[128];
	FILE *f;
	int pid = -2;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	if (f)
		fclose(f);
	return pid;
}

int main(int argc, char **argv)
{
	int self, self_thread, kid_fd, zombie_fd, dead1, dead2, st, sig;
	struct stat s1, s2;
	struct pollfd pfd;
	siginfo_t si = {};
	sigset_t set;
	pid_t kid, gone, zombie;

	test_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kid = fork();
	if (kid == 0) {
		sigwait(&set, &sig);
		_exit(7);
	}
	gone = fork();
	if (gone == 0)
		_exit(0);
	zombie = fork();
	if (zombie == 0)
		_exit(5);
	zombie_fd = pidfd_open(zombie, 0);
	if (zombie_fd < 0 || waitid(P_PID, zombie, &si, WEXITED | WNOWAIT))
		return fail_errno("zombie"), 1;
	self = pidfd_open(getpid(), 0);
	self_thread = pidfd_open(getpid(), PIDFD_THREAD);
	kid_fd = pidfd_open(kid, PIDFD_NONBLOCK);
	dead1 = pidfd_open(gone, 0);
	dead2 = pidfd_open(gone, 0);
	if (self < 0 || kid_fd < 0 || dead1 < 0 || dead2 < 0)
		return fail_errno("pidfd_open"), 1;
	if (self_thread < 0 && errno != EINVAL)
		return fail_errno("pidfd_open(PIDFD_THREAD)"), 1;
	if (waitpid(gone, &st, 0) != gone)
		return fail_errno("waitpid"), 1;
	if (wait_in_sigwait(kid, SIGUSR1))
		return fail("the child never reached sigwait()"), 1;
	test_daemon();
	test_waitsig();

	if (pidfd_pid(self) != getpid() || (self_thread >= 0 && pidfd_pid(self_thread) != getpid()))
		return fail("the pidfd of the task itself says pid %d", pidfd_pid(self)), 1;
	if (syscall(SYS_pidfd_send_signal, self, 0, NULL, 0))
		return fail_errno("pidfd_send_signal to itself"), 1;
	if (pidfd_pid(kid_fd) != kid || !(fcntl(kid_fd, F_GETFL) & O_NONBLOCK))
		return fail("the child's pidfd says pid %d", pidfd_pid(kid_fd)), 1;
	if (syscall(SYS_pidfd_send_signal, kid_fd, SIGUSR1, NULL, 0))
		return fail_errno("pidfd_send_signal to the child"), 1;
	pfd = (struct pollfd){ .fd = kid_fd, .events = POLLIN };
	if (poll(&pfd, 1, -1) != 1)
		return fail_errno("poll of the child's pidfd"), 1;
	if (waitid(P_PIDFD, kid_fd, &si, WEXITED) || si.si_pid != kid || si.si_status != 7)
		return fail("waitid through the pidfd: pid %d status %d", si.si_pid, si.si_status), 1;
	if (pidfd_pid(zombie_fd) != zombie)
		return fail("the zombie's pidfd says pid %d", pidfd_pid(zombie_fd)), 1;
	si = (siginfo_t){};
	if (waitid(P_PIDFD, zombie_fd, &si, WEXITED) || si.si_pid != zombie || si.si_status != 5)
		return fail("waitid of the zombie: pid %d status %d", si.si_pid, si.si_status), 1;
	if (pidfd_pid(dead1) != -1 || pidfd_pid(dead2) != -1)
		return fail("dead pidfds say %d and %d", pidfd_pid(dead1), pidfd_pid(dead2)), 1;
	if (fstat(dead1, &s1) || fstat(dead2, &s2) || s1.st_ino != s2.st_ino)
		return fail("the two dead pidfds refer to different processes"), 1;
	pfd = (struct pollfd){ .fd = dead1, .events = POLLIN };
	if (poll(&pfd, 1, 0) != 1)
		return fail("a dead pidfd is not readable"), 1;
	if (syscall(SYS_pidfd_send_signal, dead1, 0, NULL, 0) == 0 || errno != ESRCH)
		return fail("a dead pidfd still reaches a process"), 1;
	pass();
	return 0;
}
