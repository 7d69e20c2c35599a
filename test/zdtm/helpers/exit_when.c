// SPDX-License-Identifier: MIT
/*
 * exit_when FILE CODE: polls for FILE every 10 ms, then exits with CODE
 * (a negative CODE raises that signal instead). Checkpointed while it
 * polls, it lets a test make the *restored* process exit with a chosen
 * status without racing the restore (test_restore_status.py).
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int code;

	if (argc != 3)
		return 100;
	code = atoi(argv[2]);
	while (access(argv[1], F_OK))
		usleep(10000);
	if (code < 0)
		raise(-code);
	_exit(code);
}
