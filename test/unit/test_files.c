// SPDX-License-Identifier: MIT
/*
 * Unit test of src/files/ without the rest of amber, through its narrow
 * contexts (files_dump_ctx, files_rst_ctx): a child and a grandchild hold
 * one of each supported kind of fd; they are frozen with ptrace, dumped
 * with files_dump_*() into a temp dir, the images are decoded with crit,
 * then two forked processes restore the two fd tables with
 * files_load/files_prepare_shared/files_restore_task and check what they
 * got. Also: an eventfd with a file owner (F_SETOWN), a socket to outside
 * the tree, an epoll whose target only a process outside the tree holds
 * and a tty without --shell-job make the dump fail, and a truncated image makes files_load
 * fail.
 *
 * The cases run in order from one table (later ones use the images of the
 * first); each prints its name and ok or FAIL. A failed check in amber's
 * own process ends its case (longjmp), in a forked process that process.
 */
#define LOG_PREFIX "test: "
#include <errno.h>
#include <setjmp.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files.h"

#define SVC_BASE 100
#define RES_FD	 (SVC_BASE + 60) /* restored tasks report here */
#define GO_FD	 (SVC_BASE + 61)

static char dir[64], work[128];
static jmp_buf case_end;
static bool in_child; /* a forked process: die() exits it */

/* A dumped task: what files_dump_task() fills in. */
struct dtask {
	pid_t pid;
	uint32_t files_id;
};

static struct dtask tree[2]; /* the child and the grandchild of case "dump" */

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (in_child)
		exit(1);
	longjmp(case_end, 1);
}

static void put(int fd, int to)
{
	if (fd < 0 || dup2(fd, to) < 0)
		die("dup2 %d -> %d: %m\n", fd, to);
	if (fd != to)
		close(fd);
}

static char *wpath(const char *name)
{
	static char p[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", work, name);
	return p[i];
}

/* The fd table the dumped task has; fds 0-2 are files, not the test's tty. */
static void setup_fds(void)
{
	int p[2], sp[2], dp[2], fd;

	put(open("/dev/null", O_RDONLY), 0);
	put(open(wpath("out"), O_WRONLY | O_CREAT | O_APPEND, 0600), 1);
	dup2(1, 2);
	fd = open(wpath("reg"), O_RDWR);
	lseek(fd, 5, SEEK_SET);
	put(fd, 3);
	put(open(wpath("app"), O_WRONLY | O_APPEND), 4);
	fd = open(wpath("ghost"), O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (write(fd, "ghost-data", 10) != 10)
		die("write ghost\n");
	lseek(fd, 2, SEEK_SET);
	unlink(wpath("ghost"));
	put(fd, 5);
	if (pipe(p))
		die("pipe\n");
	put(p[0], 20);
	put(p[1], 7);
	put(20, 6);
	dup2(6, 12);
	if (write(7, "pipe-data", 9) != 9)
		die("write pipe\n");
	put(open(wpath("fifo"), O_RDONLY | O_NONBLOCK), 8);
	put(open(wpath("fifo"), O_WRONLY), 9);
	if (write(9, "fifo-data", 9) != 9)
		die("write fifo\n");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	put(sp[0], 20);
	put(sp[1], 11);
	put(20, 10);
	if (send(10, "s-to-11", 7, 0) != 7 || send(11, "s-to-10", 7, 0) != 7)
		die("send stream\n");
	socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
	put(dp[0], 20);
	put(dp[1], 14);
	put(20, 13);
	if (send(13, "d1", 2, 0) != 2 || send(13, "dgram-2", 7, 0) != 7)
		die("send dgram\n");
	put(open("/dev/null", O_WRONLY | O_CLOEXEC), 15);
	put(open(work, O_RDONLY | O_DIRECTORY), 16);
	/* A socketpair whose peer is gone, with data still queued. */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	if (send(sp[1], "orphan", 6, 0) != 6)
		die("send orphan\n");
	close(sp[1]);
	put(sp[0], 17);
}

/* ---- checks run in the restored tasks ---- */

static int nfail;
static char rep[4096];

static void check(int ok, const char *fmt, ...)
{
	va_list ap;
	size_t l = strlen(rep);

	if (ok)
		return;
	nfail++;
	va_start(ap, fmt);
	vsnprintf(rep + l, sizeof(rep) - l, fmt, ap);
	va_end(ap);
}

static void check_link(int fd, const char *want)
{
	char p[64], l[512] = "";

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (readlink(p, l, sizeof(l) - 1) < 0)
		strcpy(l, "(none)");
	check(!strcmp(l, want), "fd %d is %s, want %s\n", fd, l, want);
}

static void check_read(int fd, const char *want, int flags)
{
	char buf[64] = "";
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT | flags);

	if (n < 0 && errno == ENOTSOCK)
		n = read(fd, buf, sizeof(buf) - 1);
	check(n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "fd %d read %zd '%s', want '%s'\n",
	      fd, n, buf, want);
}

static void check_fds(bool reader)
{
	static const int want[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 };
	char buf[32] = "";
	struct stat a, b;
	int nfd = 0;

	for (int fd = 0; fd < SVC_BASE; fd++)
		nfd += fcntl(fd, F_GETFD) >= 0;
	check(nfd == ARRAY_SIZE(want), "%d fds below the base, want %zu\n", nfd, ARRAY_SIZE(want));
	check_link(0, "/dev/null");
	check_link(3, wpath("reg"));
	/* Task 1 runs concurrently with task 0, which moves fd 3 (shared) on. */
	check(!reader || lseek(3, 0, SEEK_CUR) == 5, "fd 3 pos %ld\n", (long)lseek(3, 0, SEEK_CUR));
	check((fcntl(3, F_GETFL) & O_ACCMODE) == O_RDWR, "fd 3 not O_RDWR\n");
	check(fcntl(4, F_GETFL) & O_APPEND, "fd 4 lost O_APPEND\n");
	check_link(5, wpath("ghost (deleted)"));
	check(lseek(5, 0, SEEK_CUR) == 2, "ghost pos %ld\n", (long)lseek(5, 0, SEEK_CUR));
	memset(buf, 0, sizeof(buf));
	check(pread(5, buf, 20, 0) == 10 && !strcmp(buf, "ghost-data"), "ghost has '%s'\n", buf);
	check(!fstat(5, &a) && (a.st_mode & 07777) == 0640, "ghost mode %o\n", a.st_mode);
	check(!fstat(6, &a) && !fstat(7, &b) && a.st_ino == b.st_ino && S_ISFIFO(a.st_mode),
	      "fds 6 and 7 are not one pipe\n");
	check(syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 6, 12) == 0, "fd 12 is not fd 6\n");
	check((fcntl(7, F_GETFL) & O_ACCMODE) == O_WRONLY, "fd 7 not the write end\n");
	check(fcntl(15, F_GETFD) == FD_CLOEXEC && fcntl(3, F_GETFD) == 0, "FD_CLOEXEC wrong\n");
	check_link(15, "/dev/null");
	check_link(16, work);
	check(fcntl(16, F_GETFL) & O_DIRECTORY, "fd 16 lost O_DIRECTORY\n");
	check(!fstat(8, &a) && S_ISFIFO(a.st_mode) && (fcntl(8, F_GETFL) & O_NONBLOCK),
	      "fd 8 not a nonblocking FIFO\n");
	check((fcntl(9, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY, "fd 9 flags wrong\n");
	if (!reader)
		return;
	check_read(6, "pipe-data", 0);
	check_read(8, "fifo-data", 0);
	check_read(11, "s-to-11", 0);
	check_read(10, "s-to-10", 0);
	check_read(14, "d1", 0);
	check_read(14, "dgram-2", 0);
	check_read(17, "orphan", 0);
	check(recv(17, buf, 1, MSG_DONTWAIT) == 0, "fd 17: no EOF after the orphan's data\n");
}

static int restore_one(struct files_rst_ctx *fc, int ti, int res, int go)
{
	int ret;

	put(res, RES_FD);
	put(go, GO_FD);
	ret = files_restore_task(fc, ti);
	if (ret)
		snprintf(rep, sizeof(rep), "task %d: files_restore_task: %d\n", ti, ret);
	else
		check_fds(ti == 0);
	if (ti == 0) {
		lseek(3, 7, SEEK_SET); /* task 1 must see it: one description */
	} else {
		char c;

		if (read(GO_FD, &c, 1) != 1)
			check(0, "no go\n");
		check(lseek(3, 0, SEEK_CUR) == 7, "task 1: fd 3 pos %ld, not shared\n",
		      (long)lseek(3, 0, SEEK_CUR));
	}
	if (write(RES_FD, rep, strlen(rep) + 1) < 0)
		return 1;
	return ret || nfail;
}

/* ---- the parent ---- */

static int outside_keep = -1;
static char pts[64];

/* kind 0: the full table (and a grandchild); 1: an owned eventfd; 2: a socket to outside;
 * 3: a tty; 4: an epoll whose target is held outside. */
static pid_t spawn(int ready, int kind)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	in_child = true;
	put(ready, 90); /* the parent waits for EOF: every holder has closed it */
	if (kind == 2 || kind == 4)
		put(outside_keep, 89);
	syscall(SYS_close_range, 3, kind == 2 || kind == 4 ? 88 : 89, 0);
	syscall(SYS_close_range, 91, ~0U, 0);
	if (kind == 0) {
		setup_fds();
		if (fork() == 0) {
			/* The grandchild's own fd 4: a description not shared. */
			put(open(wpath("app"), O_WRONLY | O_APPEND), 4);
			close(90);
			for (;;)
				pause();
		}
	} else {
		for (int i = 0; i < 3; i++)
			put(open("/dev/null", O_RDWR), i);
		if (kind == 1) {
			put(eventfd(0, 0), 30);
			fcntl(30, F_SETOWN, getpid());
		}
		if (kind == 3)
			put(open(pts, O_RDWR | O_NOCTTY), 30);
		if (kind == 4) {
			/* Its target stays open only in the test, outside the tree. */
			struct epoll_event ev = { .events = EPOLLIN };

			put(epoll_create1(0), 30);
			epoll_ctl(30, EPOLL_CTL_ADD, 89, &ev);
			close(89);
		}
	}
	close(90);
	for (;;)
		pause();
}

static void wait_ready(int *ready)
{
	char c;

	close(ready[1]);
	while (read(ready[0], &c, 1) > 0)
		;
	close(ready[0]);
}

static void freeze(pid_t pid)
{
	int st;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0) || ptrace(PTRACE_INTERRUPT, pid, 0, 0) ||
	    waitpid(pid, &st, __WALL) != pid)
		die("can't freeze %d: %m\n", pid);
}

static pid_t grandchild(pid_t pid)
{
	char path[64];
	cleanup_free char *s = NULL;

	snprintf(path, sizeof(path), "task/%d/children", pid);
	s = read_proc(pid, path, NULL);
	return s ? atoi(s) : 0;
}

static int do_dump(struct dtask *tasks, int nr, bool expect_ok, bool shell_job)
{
	uint32_t next_id = 0, exe_id = 0;
	struct files_dump_ctx fc = { .shell_job = shell_job, .next_id = &next_id };
	int ret;

	fc.dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	ret = files_dump_init(&fc);
	for (int i = 0; !ret && i < nr; i++)
		ret = files_dump_task(&fc, tasks[i].pid, &tasks[i].files_id);
	if (!ret && expect_ok)
		ret = files_dump_path(&fc, tasks[0].pid, "exe", &exe_id);
	if (!ret)
		ret = files_dump_fini(&fc);
	files_dump_free(&fc);
	close(fc.dirfd);
	if (expect_ok && (ret || !exe_id))
		die("dump failed: %d\n", ret);
	return ret;
}

static void crit(const char *img)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "crit decode -i %s/%s --pretty > %s/%s.json 2>&1", dir, img,
		 work, img);
	if (system(cmd))
		die("crit can't decode %s (see %s/%s.json)\n", img, work, img);
}

/* Loads the images of case "dump" for its two tasks, as amber does before fork. */
static void load_tree(struct files_rst_ctx *fc)
{
	struct files_task t[2] = { { .pid = tree[0].pid, .files_id = tree[0].files_id },
				   { .pid = tree[1].pid, .files_id = tree[1].files_id } };

	*fc = (struct files_rst_ctx){ .status_fd = -1 };
	fc->dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (files_load(fc, t, 2))
		die("files_load\n");
}

static void unload(struct files_rst_ctx *fc)
{
	files_rst_free(fc);
	close(fc->dirfd);
}

static void case_max_fd(void)
{
	struct files_rst_ctx fc;

	load_tree(&fc);
	if (files_max_fd(&fc) != 17)
		die("files_max_fd %d\n", files_max_fd(&fc));
	unload(&fc);
}

static void case_open_reg_missing(void)
{
	struct files_rst_ctx fc;
	int ex;

	load_tree(&fc);
	ex = files_open_reg(&fc, 0, O_RDONLY);
	if (ex != -ENOENT)
		die("files_open_reg of id 0: %d\n", ex);
	unload(&fc);
}

/* Prints what the restored tasks reported through @fd. */
static void print_reports(int fd)
{
	for (;;) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		if (n <= 0)
			break;
		buf[n] = 0;
		for (char *p = buf; p < buf + n; p += strlen(p) + 1)
			fputs(p, stderr);
	}
}

static void case_restore(void)
{
	struct files_rst_ctx fc;
	int res[2], go[2], st, bad = 0;
	pid_t kids[2];

	load_tree(&fc);
	fc.svc_fd_base = SVC_BASE;
	if (files_prepare_shared(&fc))
		die("files_prepare_shared\n");
	/* A restore calls it once the tasks exist; no queued message here names one. */
	if (files_finish_shared(&fc))
		die("files_finish_shared\n");
	if (pipe(res) || pipe(go))
		die("pipe\n");
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (!kids[i]) {
			in_child = true;
			_exit(restore_one(&fc, i, res[1], go[0]));
		}
	}
	close(res[1]);
	waitpid(kids[0], &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	if (write(go[1], "g", 1) != 1)
		die("go\n");
	waitpid(kids[1], &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	print_reports(res[0]);
	close(res[0]);
	close(go[0]);
	close(go[1]);
	if (bad)
		die("restored tasks found problems (above)\n");
	unload(&fc);
}

static void case_truncated(void)
{
	char p[128];
	struct stat st;
	struct files_task t = {};
	struct files_rst_ctx fc = { .status_fd = -1 };

	snprintf(p, sizeof(p), "%s/pipes-data.img", dir);
	if (stat(p, &st) || truncate(p, st.st_size - 3))
		die("truncate %s\n", p);
	fc.dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (files_load(&fc, &t, 0) == 0)
		die("files_load accepted a truncated pipes-data.img\n");
	unload(&fc);
}

static void check_refused(int kind)
{
	int ready[2], sp[2];
	struct dtask t = {};

	if (pipe(ready) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		die("pipe\n");
	outside_keep = sp[0];
	t.pid = spawn(ready[1], kind);
	wait_ready(ready);
	freeze(t.pid);
	if (do_dump(&t, 1, false, false) == 0)
		die("dump of a %s succeeded\n", kind == 1 ? "owned eventfd" : kind == 2 ? "socket to outside" : kind == 4 ? "epoll with a target outside" : "tty without --shell-job");
	if (kind == 3) {
		struct files_task rt = { .pid = t.pid };
		struct files_rst_ctx fc = { .status_fd = -1 };

		do_dump(&t, 1, true, true);
		crit("tty-info.img");
		crit("files.img");
		rt.files_id = t.files_id;
		fc.dirfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (files_load(&fc, &rt, 1) == 0)
			die("files_load of a tty without --shell-job succeeded\n");
		unload(&fc);
	}
	kill(t.pid, SIGKILL);
	waitpid(t.pid, NULL, 0);
	close(sp[0]);
	close(sp[1]);
}

static void case_refuse_eventfd(void)
{
	check_refused(1);
}

static void case_refuse_outside_socket(void)
{
	check_refused(2);
}

/* kind 4: an epoll whose target only a process outside the tree holds. */
static void case_refuse_epoll_outside(void)
{
	check_refused(4);
}

/* kind 3: the dump needs --shell-job, and so does the load of its images. */
static void case_refuse_tty(void)
{
	int ptm = posix_openpt(O_RDWR | O_NOCTTY);

	if (ptm < 0 || grantpt(ptm) || unlockpt(ptm) || ptsname_r(ptm, pts, sizeof(pts)))
		die("no pty: %m\n");
	check_refused(3);
	close(ptm);
}

static void case_dump(void)
{
	int ready[2], fd;

	fd = open(wpath("reg"), O_RDWR | O_CREAT, 0600);
	if (write(fd, "0123456789abcdef", 16) != 16)
		die("write\n");
	close(fd);
	close(open(wpath("app"), O_WRONLY | O_CREAT, 0600));
	mkfifo(wpath("fifo"), 0600);
	if (pipe(ready))
		die("pipe\n");
	tree[0].pid = spawn(ready[1], 0);
	wait_ready(ready);
	tree[1].pid = grandchild(tree[0].pid);
	if (!tree[1].pid)
		die("no grandchild\n");
	freeze(tree[0].pid);
	freeze(tree[1].pid);
	do_dump(tree, 2, true, false);
	kill(tree[1].pid, SIGKILL);
	kill(tree[0].pid, SIGKILL);
	waitpid(tree[0].pid, NULL, 0);
	printf("  files_id %u and %u\n", tree[0].files_id, tree[1].files_id);
}

static void case_crit(void)
{
	char name[64];

	snprintf(name, sizeof(name), "fdinfo-%u.img", tree[0].files_id);
	const char *imgs[] = { "files.img", name, "pipes-data.img", "fifo-data.img",
			       "sk-queues.img" };
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++)
		crit(imgs[i]);
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "dump: a tree holding every supported kind of fd", case_dump },
	{ "crit decodes files, fdinfo, pipes-data, fifo-data, sk-queues", case_crit },
	{ "load: files_max_fd is the highest fd of any task", case_max_fd },
	{ "load: files_open_reg of an unknown id is -ENOENT", case_open_reg_missing },
	{ "restore: two tasks get their fd tables, shared where dumped so", case_restore },
	{ "load refuses a truncated pipes-data.img", case_truncated },
	{ "dump refuses an eventfd with a file owner (F_SETOWN)", case_refuse_eventfd },
	{ "dump refuses a unix socket connected outside the tree", case_refuse_outside_socket },
	{ "a tty needs --shell-job to dump and to load", case_refuse_tty },
	{ "dump refuses an epoll whose target is held outside the tree", case_refuse_epoll_outside },
};

int main(void)
{
	volatile int nfailed = 0;
	char cmd[128];

	setvbuf(stdout, NULL, _IOLBF, 0); /* case names in order with the log, once */
	log_init(NULL, getenv("V") ? atoi(getenv("V")) : 1, 0);
	snprintf(dir, sizeof(dir), "/tmp/amber-files-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(work, sizeof(work), "%s/work", dir);
	mkdir(work, 0700);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (setjmp(case_end)) {
			printf("FAIL %s\n", cases[i].name);
			nfailed++;
			continue;
		}
		cases[i].run();
		printf("ok   %s\n", cases[i].name);
	}
	snprintf(cmd, sizeof(cmd), getenv("KEEP") || nfailed ? "true %s" : "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	if (nfailed) {
		printf("FAIL test_files: %d of %zu cases (images kept in %s)\n", nfailed,
		       ARRAY_SIZE(cases), dir);
		return 1;
	}
	printf("PASS test_files\n");
	return 0;
}
