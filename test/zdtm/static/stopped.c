// SPDX-License-Identifier: GPL-2.0
/*
 * A stopped process: a child with two threads stops itself with SIGSTOP
 * (a group stop) while a blocked SIGUSR1 and a blocked real-time signal
 * with a value are pending, and then gets a SIGUSR2 it does not block.
 * After the restore it is stopped again, every thread of it, and the
 * SIGUSR2 handler has not run (it may only after SIGCONT); SIGCONT lets
 * it go on with its memory, its thread and the same pending signals.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zdtm.h"

#define RT_SIG (SIGRTMIN + 3)

static uint64_t data[4096];
static volatile int go_on, spinner_blocked;
static volatile int *phase;	/* shared: 1 once the parent sends SIGCONT */
static volatile int usr2_phase = -1;

static void on_usr2(int sig __attribute__((unused)))
{
	usr2_phase = *phase;
}

static void *spinner(void *arg __attribute__((unused)))
{
	sigset_t usr2;

	/* SIGUSR2 is the main thread's: its handler runs before main goes on. */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	spinner_blocked = 1;
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
	signal(SIGUSR2, on_usr2);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, RT_SIG);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&th, NULL, spinner, NULL))
		return 2;
	/*
	 * Stop only once the spinner blocks SIGUSR2: else it may take the
	 * signal after SIGCONT, its handler running after main's check.
	 */
	while (!spinner_blocked)
		usleep(1000);
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
	if (usr2_phase != 1)
		return 6; /* the handler ran before SIGCONT, or never */
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
	phase = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (phase == MAP_FAILED)
		return fail_errno("mmap"), 1;
	pid = fork();
	if (pid < 0)
		return fail_errno("fork"), 1;
	if (pid == 0)
		_exit(child());
	if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st))
		return fail("the child did not stop (%#x)", st), 1;
	kill(pid, SIGUSR2); /* pending while stopped */
	test_daemon();
	test_waitsig();

	if (!all_stopped(pid))
		return fail("the child is not stopped with both threads"), 1;
	*phase = 1;
	kill(pid, SIGCONT);
	do {
		if (waitpid(pid, &st, WUNTRACED | WCONTINUED) != pid)
			return fail_errno("waitpid"), 1;
	} while (WIFSTOPPED(st) || WIFCONTINUED(st));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return fail("the child ended with %#x%s", st,
			    WIFEXITED(st) && WEXITSTATUS(st) == 6 ?
			    " (its SIGUSR2 handler ran before SIGCONT)" : ""), 1;
	pass();
	return 0;
}
