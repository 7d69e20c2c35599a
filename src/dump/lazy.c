// SPDX-License-Identifier: MIT
/*
 * dump --lazy-pages: post-copy straight out of the frozen tree, as CRIU's.
 * The images are written without the private anonymous pages (PE_LAZY
 * entries: memory.c); then a page server serves the image directory (the
 * eagerly restored runs from its pages files) and the PE_LAZY runs from
 * the frozen tasks' memory (pageserver/server_lazy.c), until the
 * `amber lazy-pages --page-server` daemon on the other side has every page
 * and closes the session. Only then may the tree die.
 *
 * The server runs in a child, so that this process, the tracer, stays
 * free to catch SIGINT, SIGTERM and SIGHUP: they end the serving as a
 * failed dump (the tree runs on, its network lock is lifted) instead of
 * leaving it frozen for good.
 */
#define LOG_PREFIX "dump-lazy: "
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "dump/dump.h"
#include "pageserver/server.h"

/* In the child, once listening: the port on stdout, then a byte to the parent. */
static void announce(void *arg, const char *address, int port)
{
	int ready_fd = *(int *)arg;
	char c = 0;

	/* Like `amber page-server`: with --port 0 this is how the port is known. */
	printf("amber dump: serving lazy pages on %s:%d\n", address ?: "*", port);
	fflush(stdout);
	if (write(ready_fd, &c, 1) != 1)
		pr_perror("can't tell the dump the server is ready");
}

/* The child: serves until the daemon closes the session. */
static void __attribute__((noreturn)) serve(const struct dump_ctx *dc,
					    const struct ps_live_tree *live, int ready_fd,
					    pid_t parent)
{
	const struct dump_opts *o = dc->opts;
	struct ps_server_opts so = {
		.address = o->ps_address,
		.port = o->ps_port,
		.dir = o->dir,
		.lazy = true,
		.live = live,
		.max_connections = 1,
		.sec = o->ps_sec,
		.listening = announce,
		.listening_arg = &ready_fd,
	};

	/* Never outlive the dump: a killed dump's tree runs on, unserved. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(1);
	/* The dump's thread is in the tree's network namespace: serve from amber's. */
	if (dc->host_netns_fd >= 0 && setns(dc->host_netns_fd, CLONE_NEWNET)) {
		pr_perror("can't go back to amber's network namespace");
		_exit(1);
	}
	_exit(ps_server_run(&so) ? 1 : 0);
}

/* Tells whoever waits that the pages can be fetched: CRIU's status fd, the RPC. */
static int tell_ready(const struct dump_opts *o)
{
	char c = 0;
	int ret = 0;

	if (o->status_fd > 0) {
		if (write(o->status_fd, &c, 1) != 1)
			ret = -errno;
		close(o->status_fd);
		if (ret)
			pr_err("can't write to the status fd %d: %s\n", o->status_fd, strerror(-ret));
	}
	if (!ret && o->lazy_ready)
		ret = o->lazy_ready(o->lazy_ready_arg);
	return ret;
}

/* Waits for @child (and its ready byte on @ready_fd), or for a signal that ends it. */
static int wait_server(const struct dump_opts *o, int sfd, int ready_fd, pid_t child)
{
	struct pollfd pfd[2] = { { sfd, POLLIN, 0 }, { ready_fd, POLLIN, 0 } };
	struct signalfd_siginfo si;
	int status, stop_err = -EINTR; /* why serving stopped early: a signal unless set */

	for (;;) {
		if (poll(pfd, ready_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			stop_err = -errno;
			pr_perror("poll");
			break;
		}
		if (ready_fd >= 0 && pfd[1].revents) {
			char c;

			/* EOF without the byte: the child died, SIGCHLD says how */
			if (read(ready_fd, &c, 1) == 1) {
				int hook_err = tell_ready(o);

				if (hook_err) {
					stop_err = hook_err;
					break;
				}
			}
			ready_fd = -1;
		}
		if (!pfd[0].revents)
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGCHLD) {
			pr_err("serving stopped by signal %u: the tree runs on\n", si.ssi_signo);
			break;
		}
		/* A tracee's stop also raises SIGCHLD: only our child counts. */
		if (waitpid(child, &status, WNOHANG) == child) {
			if (WIFEXITED(status) && !WEXITSTATUS(status))
				return 0;
			pr_err("the page server failed (status %#x): the tree runs on\n", status);
			return -EIO;
		}
	}
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	return stop_err;
}

int dump_serve_lazy(struct dump_ctx *dc)
{
	cleanup_free pid_t *vpids = calloc(dc->nr_tasks + 1, sizeof(pid_t));
	cleanup_free pid_t *pids = calloc(dc->nr_tasks + 1, sizeof(pid_t));
	struct ps_live_tree live = { vpids, pids, 0 };
	sigset_t mask, old;
	pid_t child, self = getpid();
	int sfd, ret, ready[2];

	if (!vpids || !pids)
		return -ENOMEM;
	for (int i = 0; i < dc->nr_tasks; i++) {
		if (dc->tasks[i]->zombie)
			continue;
		vpids[live.nr] = dc->tasks[i]->vpid;
		pids[live.nr++] = dc->tasks[i]->pid;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, &old))
		return -errno;
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0 || pipe2(ready, O_CLOEXEC)) {
		ret = -errno;
		pr_perror("signalfd/pipe");
		if (sfd >= 0)
			close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return ret;
	}
	fflush(NULL);
	child = fork();
	if (child == 0) {
		close(sfd);
		close(ready[0]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		serve(dc, &live, ready[1], self);
	}
	close(ready[1]);
	if (child < 0) {
		ret = -errno;
		pr_perror("can't fork the page server");
	} else {
		pr_info("%d task(s) frozen; their pages are served by %d\n", live.nr, child);
		ret = wait_server(dc->opts, sfd, ready[0], child);
	}
	close(ready[0]);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (!ret)
		pr_info("every page was fetched: the tree may go\n");
	return ret;
}
