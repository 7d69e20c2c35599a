// SPDX-License-Identifier: GPL-2.0
/*
 * An anonymous shared mapping shared with a forked child.  After restore
 * the parent writes new data and the child must see it: the mapping is
 * still one shared object, not two copies.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (8UL << 20)

struct ctl {
	volatile int go;
	uint32_t crc;
};

int main(int argc, char **argv)
{
	struct ctl *ctl;
	uint32_t crc = 7;
	int status;
	char *mem;
	pid_t pid;

	test_init(argc, argv);
	ctl = mmap(NULL, SIZE + 4096, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		return fail_errno("mmap"), 1;
	mem = (char *)ctl + 4096;
	datagen(mem, SIZE, &crc);
	ctl->crc = crc;
	pid = fork();
	if (pid < 0)
		return fail_errno("fork"), 1;
	if (pid == 0) {
		futex_wait_while(&ctl->go, 0);
		_exit(datachk(mem, SIZE, &ctl->crc) ? 1 : 0);
	}
	test_daemon();
	test_waitsig();

	if (datachk(mem, SIZE, &crc)) {
		kill(pid, SIGKILL);
		return fail("parent: shared data mismatch"), 1;
	}
	crc = 99; /* New contents the child can only see through sharing. */
	datagen(mem, SIZE, &crc);
	ctl->crc = crc;
	ctl->go = 1;
	futex_wake_all(&ctl->go);
	if (waitpid(pid, &status, 0) != pid)
		return fail_errno("waitpid"), 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail("child did not see the new data (%#x)", status), 1;
	pass();
	return 0;
}
