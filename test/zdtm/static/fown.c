// SPDX-License-Identifier: GPL-2.0
/*
 * File owners and signals: a pipe with O_ASYNC owned by the task itself
 * with F_SETSIG (a write after the restore queues that signal, with the
 * fd in si_fd), an eventfd owned by the leader thread (F_OWNER_TID), a
 * regular file owned by the process group, and a socket owned by a child.
 * After the restore each has the same owner, kind and signal.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

#define SIG (SIGRTMIN + 3)

static int owner(int fd, int type, pid_t pid, int sig, const char *what)
{
	struct f_owner_ex own = {};

	if (fcntl(fd, F_GETOWN_EX, &own) || (int)own.type != type || own.pid != pid)
		return fail("%s: owner %d:%d, want %d:%d", what, own.type, own.pid, type, pid), -1;
	if (fcntl(fd, F_GETSIG) != sig)
		return fail("%s: signal %d, want %d", what, fcntl(fd, F_GETSIG), sig), -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct f_owner_ex tid, grp;
	int p[2], efd, file, sk[2], st, sig;
	struct timespec zero = {};
	siginfo_t si;
	sigset_t set;
	pid_t kid;

	test_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIG);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kid = fork();
	if (kid == 0) {
		sigdelset(&set, SIG);
		sigwait(&set, &sig);
		_exit(0);
	}
	if (wait_in_sigwait(kid, SIGUSR1))
		return fail("the child never reached sigwait()"), 1;
	tid = (struct f_owner_ex){ F_OWNER_TID, syscall(SYS_gettid) };
	grp = (struct f_owner_ex){ F_OWNER_PGRP, getpgrp() };
	efd = eventfd(0, 0);
	file = open("fown_file", O_RDWR | O_CREAT, 0644);
	if (pipe(p) || efd < 0 || file < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sk))
		return fail_errno("fds"), 1;
	if (fcntl(p[0], F_SETOWN, getpid()) || fcntl(p[0], F_SETSIG, SIG) ||
	    fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) || fcntl(efd, F_SETOWN_EX, &tid) ||
	    fcntl(file, F_SETOWN_EX, &grp) || fcntl(file, F_SETSIG, SIGUSR1) ||
	    fcntl(sk[0], F_SETOWN, kid))
		return fail_errno("F_SETOWN"), 1;
	test_daemon();
	test_waitsig();

	if (owner(p[0], F_OWNER_PID, getpid(), SIG, "pipe") ||
	    owner(efd, F_OWNER_TID, tid.pid, 0, "eventfd") ||
	    owner(file, F_OWNER_PGRP, grp.pid, SIGUSR1, "file") ||
	    owner(sk[0], F_OWNER_PID, kid, 0, "socket"))
		return 1;
	if (!(fcntl(p[0], F_GETFL) & O_ASYNC))
		return fail("the pipe lost O_ASYNC"), 1;
	if (write(p[1], "x", 1) != 1)
		return fail_errno("write"), 1;
	sigemptyset(&set);
	sigaddset(&set, SIG);
	if (sigtimedwait(&set, &si, &zero) != SIG || si.si_fd != p[0])
		return fail("no %d for the pipe after a write (si_fd %d)", SIG, si.si_fd), 1;
	kill(kid, SIGUSR1);
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		return fail("child exited with %#x", st), 1;
	pass();
	return 0;
}
