// SPDX-License-Identifier: GPL-2.0
/*
 * A stopped process: a child with two threads stops itself with SIGSTOP
 * (a group stop) while a blocked SIGUSR1 and a blocked real-time signal
 * with a value are pending. After the restore it is stopped again, every
 * thread of it; SIGCONT lets it go on with its memory, its thread and the
 * same pending signals.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

#define RT_SIG (SIGRTMIN + 3)

static uint64_t data[4096];
static volatile int go_on;

static void *spinner(void *arg __attribute__((unused)))
{
	while (!go_on)
		usleep(1000);
	return NULL;
}

static int child(void)
{
	union sigval v = { .sival_int = 4242 };
	struct timespec ts = { 1, 0 };
	uint32_t crc = 7;
	pthread_t th;
	siginfo_t si;
	sigset_t set;

	datagen(data, sizeof(data), &crc);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, RT_SIG);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&th, NULL, spinner, NULL))
		return 2;
	raise(SIGUSR1);
	sigqueue(getpid(), RT_SIG, v);
	kill(getpid(), SIGSTOP);

	/* continued */
	if (datachk(data, sizeof(data), &crc))
		return 3;
	if (sigtimedwait(&set, &si, &ts) != SIGUSR1)
		return 4;
	if (sigtimedwait(&set, &si, &ts) != RT_SIG || si.si_value.sival_int != 4242)
		return 5;
	go_on = 1;
	pthread_join(th, NULL);
	return 0;
}

/* Every thread of @pid (two) in state T, within a second. */
static int all_stopped(pid_t pid)
{
	char path[300], buf[512], *p;

	for (int tries = 0; tries < 100; tries++, usleep(10000)) {
		int n = 0, stopped = 0;
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		if (!d)
			return 0;
		while ((de = readdir(d))) {
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, de->d_name);
			f = fopen(path, "r");
			if (!f)
				continue;
			if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[2] == 'T')
				stopped++;
			n++;
			fclose(f);
		}
		closedir(d);
		if (n == 2 && stopped == 2)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pid_t pid;
	int st;

	test_init(argc, argv);
	pid = fork();
	if (pid < 0)
		return fail_errno("fork"), 1;
	if (pid == 0)
		_exit(child());
	if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st))
		return fail("the child did not stop (%#x)", st), 1;
	test_daemon();
	test_waitsig();

	if (!all_stopped(pid))
		return fail("the child is not stopped with both threads"), 1;
	kill(pid, SIGCONT);
	do {
		if (waitpid(pid, &st, WUNTRACED | WCONTINUED) != pid)
			return fail_errno("waitpid"), 1;
	} while (WIFSTOPPED(st) || WIFCONTINUED(st));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the child ended with %#x", st), 1;
	pass();
	return 0;
}
