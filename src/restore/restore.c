// SPDX-License-Identifier: MIT
/*
 * amber restore: load and check the images, make the shared objects, clone
 * the root with its saved pid and trace the tree while it rebuilds itself.
 * Each thread ends in the restorer with a SIGSTOP; amber then lets it run
 * its rt_sigreturn, unmaps the blob with a remote syscall and detaches.
 * Any failure kills every task created so far.
 */
#define LOG_PREFIX "restore: "
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fault.h"
#include "files/files.h"
#include "image/image.h"
#include "lazy/lazy.h"
#include "base/log.h"
#include "base/remote.h"
#include "restore/creds.h"
#include "restore/restore.h"
#include "restore/seccomp.h"
#include "restore/stop.h"
#include "restore/task.h"
#include "base/util.h"

enum th_state { TH_RUNNING, TH_STOPPED, TH_IN_SIGRETURN, TH_DONE };

struct tracked {
	pid_t tid;
	enum th_state state;
};

struct tracer {
	struct rst_ctx *rc;
	struct tracked *th;
	int nr_th;
	int nr_expected;
	struct rst_blob_info *blobs;
	int nr_blobs;
};

/*
 * 'Z' or 'X': @path's task exited and waits for its parent to reap it
 * (right after a dump killed the tree, its parent or init may not have yet).
 */
static char task_state_at(const char *path, pid_t *ppid)
{
	char stat[64], buf[512], *close_paren;
	char state = 0;
	int fd, n;

	snprintf(stat, sizeof(stat), "%s/stat", path);
	fd = open(stat, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	close_paren = strrchr(buf, ')');
	if (close_paren && sscanf(close_paren + 1, " %c %d", &state, ppid) != 2)
		state = 0;
	return state;
}

static int check_pids_free(struct rst_ctx *rc)
{
	if (rc->ns.new_pid)
		return 0; /* its pids are in a namespace of its own, made afresh */
	for (int i = 0; i < rc->nr_tasks; i++) {
		PstreeEntry *pe = rc->tasks[i].pe;

		for (size_t j = 0; j < pe->n_threads; j++) {
			char path[32], state = 0;
			pid_t ppid = 0;
			int waited;

			snprintf(path, sizeof(path), "/proc/%u", pe->threads[j]);
			/* a zombie is given 2 s to be reaped: `amber dump && amber restore` */
			for (waited = 0; access(path, F_OK) == 0; waited++) {
				state = task_state_at(path, &ppid);
				if ((state != 'Z' && state != 'X') || waited == 200)
					break;
				usleep(10000);
			}
			if (access(path, F_OK))
				continue;
			if (state == 'Z' || state == 'X')
				pr_err("pid %u is in use by a zombie its parent %d has not reaped: "
				       "can't restore with the same pid\n", pe->threads[j], ppid);
			else
				pr_err("pid %u is in use: can't restore with the same pid (is the "
				       "dumped tree still running?)\n", pe->threads[j]);
			return -EBUSY;
		}
	}
	return 0;
}

static int move_fd_up(int *fd, int base)
{
	int n = fcntl(*fd, F_DUPFD_CLOEXEC, base);

	if (n < 0)
		return -errno;
	close(*fd);
	*fd = n;
	return 0;
}

/* Image fds the tasks read from must survive their own fds being put back. */
static int move_pages_fds_up(struct rst_ctx *rc)
{
	int ret = 0;

	for (int i = 0; i < rc->nr_tasks && !ret; i++) {
		struct pm_chain *pc = &rc->tasks[i].pages;

		for (int k = 0; k < pc->nr_layers && !ret; k++)
			ret = move_fd_up(&pc->layers[k].pages_fd, rc->svc_fd_base);
	}
	for (int i = 0; i < rc->nr_shmems && !ret; i++)
		if (rc->shmems[i].pages.pages_fd >= 0)
			ret = move_fd_up(&rc->shmems[i].pages.pages_fd, rc->svc_fd_base);
	return ret;
}

/* The empty object behind @s, s->size long: a memfd, or anonymous shared memory. */
static int shmem_create(struct rst_shmem *s)
{
	char name[64];
	void *p;
	int fd;

	if (s->memfd) {
		fd = memfd_create(s->memfd->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd >= 0 && ftruncate(fd, s->size)) {
			close(fd);
			return -errno;
		}
		return fd < 0 ? -errno : fd;
	}
	p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	snprintf(name, sizeof(name), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + s->size);
	fd = open(name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	munmap(p, s->size);
	return fd;
}

/* Reads the saved runs into the object, checking each run's checksum. */
static int shmem_fill(struct rst_ctx *rc, struct rst_shmem *s, int fd)
{
	void *p;
	int ret = 0;

	if (!s->pages.nr)
		return 0;
	p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (int j = 0; !ret && j < s->pages.nr; j++) {
		const struct pm_ent *e = &s->pages.ents[j];
		size_t len = e->nr_pages * PAGE_SIZE;

		if (pread_full(s->pages.pages_fd, (char *)p + e->vaddr, len, e->off) ||
		    (e->csum_ver &&
		     amber_csum_ver((char *)p + e->vaddr, len, e->vaddr, e->csum_ver) != e->csum)) {
			pr_err("shared memory %llu: data at %#llx is short or fails its checksum\n",
			       (unsigned long long)s->shmid, (unsigned long long)e->vaddr);
			ret = -EINVAL;
		}
	}
	munmap(p, s->size);
	return ret;
}

/* A memfd's exact size, owner and seals, once its contents are in. */
static int memfd_finish(int fd, const MemfdInodeEntry *m)
{
	if (ftruncate(fd, m->size) || fchown(fd, m->uid, m->gid) ||
	    (m->seals && fcntl(fd, F_ADD_SEALS, m->seals))) {
		pr_perror("can't restore memfd %s (size, owner or seals %#x)", m->name, m->seals);
		return -errno;
	}
	return 0;
}

static int shmem_prepare(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_shmems; i++) {
		struct rst_shmem *s = &rc->shmems[i];
		int ret, fd = shmem_create(s);

		if (fd < 0) {
			pr_err("can't create shared memory %llx: %s\n", (unsigned long long)s->shmid,
			       strerror(-fd));
			return fd;
		}
		ret = shmem_fill(rc, s, fd);
		if (!ret && s->memfd)
			ret = memfd_finish(fd, s->memfd);
		if (!ret) {
			/* Not O_CLOEXEC: the restoring tasks use it, the restorer closes it. */
			s->fd = fcntl(fd, F_DUPFD, rc->svc_fd_base);
			if (s->fd < 0)
				ret = -errno;
		}
		close(fd);
		if (ret)
			return ret;
	}
	return 0;
}

/* A thread of the tree in its own pid namespace, first seen: its pid there. */
static int map_new_thread(struct rst_ctx *rc, pid_t tid)
{
	pid_t pids[PIDNS_MAX_LEVELS], ns = 0;
	int levels, ret;

	if (!rc->pids.own_ns)
		return 0;
	/* The root's namespace is one below amber's; nested ones further (pidns.c). */
	ret = proc_ns_pids(tid, pids, PIDNS_MAX_LEVELS, &levels);
	if (!ret && levels < 2)
		ret = -EINVAL;
	if (!ret)
		ns = pids[1];
	if (!ret)
		ret = pid_map_add(&rc->pids, tid, ns);
	if (!ret)
		pr_debug("thread %d is %d in the tree's pid namespace\n", tid, ns);
	return ret;
}

static struct tracked *tracked_find(struct tracer *tr, pid_t tid, bool add)
{
	for (int i = 0; i < tr->nr_th; i++)
		if (tr->th[i].tid == tid)
			return &tr->th[i];
	if (!add || map_new_thread(tr->rc, tid))
		return NULL;
	struct tracked *n = xrealloc_array(tr->th, tr->nr_th + 1, sizeof(*n));

	if (!n)
		return NULL;
	tr->th = n;
	n[tr->nr_th].tid = tid;
	n[tr->nr_th].state = TH_RUNNING;
	return &n[tr->nr_th++];
}

static void read_blob_infos(struct tracer *tr)
{
	struct rst_blob_info bi;

	while (read(tr->rc->info_fd, &bi, sizeof(bi)) == sizeof(bi)) {
		struct rst_blob_info *n = xrealloc_array(tr->blobs, tr->nr_blobs + 1, sizeof(*n));

		if (!n)
			return;
		tr->blobs = n;
		n[tr->nr_blobs++] = bi;
	}
}

static void report_task_errors(struct rst_ctx *rc)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(rc->status_fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = 0;
		pr_err("%s", buf);
	}
}

/* @pid: as amber sees it */
static bool is_zombie_task(struct rst_ctx *rc, pid_t pid)
{
	struct rst_task *t = rst_find_task(rc, pid_map_ns(&rc->pids, pid));

	return t && t->zombie;
}

/*
 * The SIGSTOP a lazy task in a user namespace of its own sends itself
 * before its blob, its new uffd in the place of /dev/userfaultfd
 * (blob.c, make_own_uffd()): amber, in the host's namespace, gives it
 * the features only CAP_SYS_PTRACE there may ask for (the fork event).
 * 1: done; 0: not that stop (the final one: the blob has closed every
 * service fd; or a thread's, which no pidfd names); or a negative errno.
 */
static int give_uffd_features(struct rst_ctx *rc, pid_t pid)
{
	struct uffdio_api api = { .api = UFFD_API, .features = rc->uffd_features };
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), fd, ret;
	struct stat st;

	/* EINVAL: a thread's stop, not a process's; anything else is a failure. */
	if (pidfd < 0) {
		if (errno == EINVAL)
			return 0;
		pr_perror("task %d: pidfd_open", pid);
		return -errno;
	}
	if (fault_injected("restore-uffd-getfd")) {
		fd = -1;
		errno = EMFILE;
	} else {
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, rc->uffd_dev_fd, 0);
	}
	ret = fd < 0 ? -errno : 0;
	close(pidfd);
	if (ret == -EBADF)
		return 0; /* the final stop: no device's place */
	/* Else the task would be taken as at its final stop, its uffd unusable. */
	if (ret) {
		pr_err("task %d: can't take its userfaultfd: %s\n", pid, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) || S_ISCHR(st.st_mode)) {
		ret = 0; /* the device still: this task made no uffd */
	} else {
		if (fault_injected("restore-uffd-api"))
			ret = -EIO;
		else if (ioctl(fd, UFFDIO_API, &api))
			ret = -errno;
		else
			ret = 1;
		if (ret < 0)
			pr_err("task %d: UFFDIO_API of its userfaultfd: %s\n", pid, strerror(-ret));
	}
	close(fd);
	return ret;
}

/* Runs the tree until every thread sits at its final SIGSTOP. */
static int trace_until_stopped(struct tracer *tr)
{
	int nr_stopped = 0, st;

	while (nr_stopped < tr->nr_expected) {
		pid_t pid = waitpid(-1, &st, __WALL);
		struct tracked *t;

		if (pid < 0) {
			pr_perror("waitpid");
			return -errno;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (is_zombie_task(tr->rc, pid))
				continue;
			pr_err("task %d died during restore (%s %d)\n", pid,
			       WIFEXITED(st) ? "exit" : "signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			return -ECHILD;
		}
		int ev = st >> 16, sig = WSTOPSIG(st);

		t = tracked_find(tr, pid, true);
		if (!t)
			return -ENOMEM;
		if (ev == 0 && sig == SIGSTOP && t->state == TH_RUNNING &&
		    tr->rc->uffd_dev_fd >= 0) {
			int r = give_uffd_features(tr->rc, pid);

			if (r < 0)
				return r;
			if (r > 0 && ptrace(PTRACE_CONT, pid, 0, 0)) {
				pr_perror("can't resume %d", pid);
				return -errno;
			}
			if (r > 0)
				continue;
		}
		if (ev == 0 && sig == SIGSTOP && t->state == TH_RUNNING) {
			t->state = TH_STOPPED;
			nr_stopped++;
			continue;
		}
		if (ev == 0 && (sig == SIGILL || sig == SIGSEGV || sig == SIGBUS)) {
			struct user_regs_struct r = { 0 };

			ptrace(PTRACE_GETREGS, pid, 0, &r);
			pr_warn("task %d: signal %d at %#llx during restore\n", pid, sig, r.rip);
		}
		/* fork/clone events, the new tasks' first stops, stray signals */
		if (ptrace(PTRACE_CONT, pid, 0, (ev || sig == SIGSTOP || sig == SIGTRAP) ? 0 : sig)) {
			pr_perror("can't resume %d", pid);
			return -errno;
		}
	}
	return 0;
}

/* Lets each stopped thread run its rt_sigreturn and stops it right after. */
static int trace_sigreturns(struct tracer *tr)
{
	int done = 0, st;

	for (int i = 0; i < tr->nr_th; i++)
		if (tr->th[i].state == TH_STOPPED && ptrace(PTRACE_SYSCALL, tr->th[i].tid, 0, 0))
			return -errno;
	while (done < tr->nr_expected) {
		pid_t pid = waitpid(-1, &st, __WALL);
		struct tracked *t;

		if (pid < 0)
			return -errno;
		if (!WIFSTOPPED(st)) {
			if (is_zombie_task(tr->rc, pid))
				continue;
			pr_err("task %d died in its last restore step\n", pid);
			return -ECHILD;
		}
		t = tracked_find(tr, pid, false);
		if (!t || WSTOPSIG(st) != (SIGTRAP | 0x80)) {
			ptrace(PTRACE_SYSCALL, pid, 0, 0);
			continue;
		}
		if (t->state == TH_STOPPED) {
			t->state = TH_IN_SIGRETURN;
			if (ptrace(PTRACE_SYSCALL, pid, 0, 0))
				return -errno;
		} else if (t->state == TH_IN_SIGRETURN) {
			t->state = TH_DONE;
			done++;
		}
	}
	return 0;
}

static int unmap_blobs(struct tracer *tr)
{
	read_blob_infos(tr);
	for (int i = 0; i < tr->nr_blobs; i++) {
		struct remote r;
		long ret;
		int err = remote_init_bare(&r, rst_host_pid(tr->rc, tr->blobs[i].pid));

		if (err)
			return err;
		err = remote_syscall(&r, SYS_munmap, &ret, tr->blobs[i].start, tr->blobs[i].len, 0,
				     0, 0, 0);
		remote_fini(&r);
		if (err || ret) {
			pr_err("can't unmap the restorer from %d\n", r.pid);
			return -EIO;
		}
	}
	return 0;
}

/* Detaches every thread of the tasks that are (@stopped) or are not stopped ones. */
static void detach_all(struct rst_ctx *rc, struct tracer *tr, bool stopped)
{
	for (int i = 0; i < rc->nr_tasks; i++) {
		struct rst_task *t = &rc->tasks[i];

		if (t->zombie || !!t->stop_sig != stopped)
			continue;
		for (int j = 0; j < t->nr_threads; j++) {
			pid_t tid = rst_host_pid(rc, t->pe->threads[j]);

			if (tid && tracked_find(tr, tid, false))
				ptrace(PTRACE_DETACH, tid, 0, 0);
		}
	}
}

static void kill_all(struct rst_ctx *rc)
{
	int st;
	pid_t pid;

	/*
	 * Parents first (pstree order): a task with SIGKILL pending forks no
	 * more, so no child is born after its kill was tried. In its own pid
	 * namespace the init's death takes every other task.
	 */
	for (int i = 0; i < rc->nr_tasks; i++) {
		pid = rst_host_pid(rc, rc->tasks[i].pid);
		if (pid > 0) /* never 0: our own process group */
			kill(pid, SIGKILL);
	}
	/* A task we traced but never knew (its fork raced the kills) stops: kill it too. */
	while ((pid = waitpid(-1, &st, __WALL)) > 0)
		if (WIFSTOPPED(st))
			kill(pid, SIGKILL);
}

static int count_threads(struct rst_ctx *rc)
{
	int n = 0;

	for (int i = 0; i < rc->nr_tasks; i++)
		if (!rc->tasks[i].zombie)
			n += rc->tasks[i].nr_threads;
	return n;
}

static int setup_pipes(struct rst_ctx *rc, int go[2])
{
	int st[2], info[2];

	if (pipe2(st, O_NONBLOCK) || pipe2(info, O_NONBLOCK) || pipe(go))
		return -errno;
	/* Tasks keep the write ends (>= base, closed by the restorer). */
	rc->status_fd = fcntl(st[1], F_DUPFD, rc->svc_fd_base);
	rc->info_fd = fcntl(info[1], F_DUPFD, rc->svc_fd_base);
	close(st[1]);
	close(info[1]);
	if (move_fd_up(&st[0], rc->svc_fd_base) || move_fd_up(&info[0], rc->svc_fd_base) ||
	    move_fd_up(&go[0], rc->svc_fd_base) || move_fd_up(&go[1], rc->svc_fd_base))
		return -EMFILE;
	return st[0] << 16 | info[0];
}

/* The caller's hook at one of CRIU's notification points (restore_opts.notify). */
/* The new master of the terminal whose master was the caller's goes to it. */
static int hand_orphan_master(struct rst_ctx *rc)
{
	int fd = files_orphan_master(&rc->files), ret;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	ret = rc->opts->orphan_pts(rc->opts->orphan_pts_arg, fd);
	close(fd);
	if (ret)
		pr_err("the caller did not take the terminal's new master: %s\n",
		       strerror(ret < 0 ? -ret : ret));
	return ret < 0 ? ret : ret ? -ECANCELED : 0;
}

static int notify_stage(struct rst_ctx *rc, const char *stage, pid_t root)
{
	int ret;

	if (!rc->opts->notify)
		return 0;
	ret = rc->opts->notify(rc->opts->notify_arg, stage, root);
	if (ret)
		pr_err("the caller's %s hook failed (%d)\n", stage, ret);
	return ret ? (ret < 0 ? ret : -ECANCELED) : 0;
}

/*
 * A task in a user namespace of its own can't lower its oom_score_adj
 * (that needs CAP_SYS_RESOURCE of the host's): amber writes every saved
 * one, the tasks stopped.
 */
static int set_oom_score_adjs(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_tasks; i++) {
		const TaskCoreEntry *tc = rc->tasks[i].cores ? rc->tasks[i].cores[0]->tc : NULL;
		char path[64], buf[16];
		int fd, n, ret = 0;

		if (!tc || !tc->has_oom_score_adj || rc->tasks[i].zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/oom_score_adj",
			 rst_host_pid(rc, rc->tasks[i].pid));
		n = snprintf(buf, sizeof(buf), "%d", tc->oom_score_adj);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, buf, n) != n) {
			ret = -errno;
			pr_perror("can't write %s", path);
		}
		if (fd >= 0)
			close(fd);
		if (ret)
			return ret;
	}
	return 0;
}

/* The service fds of the namespaces made before the root (they are inherited). */
static int move_user_ns_fds_up(struct rst_ctx *rc)
{
	if (move_fd_up(&rc->ns.user_fd, rc->svc_fd_base) ||
	    move_fd_up(&rc->ns.net.made_fd, rc->svc_fd_base))
		return -EMFILE;
	return 0;
}

/*
 * The root as init of a new pid namespace owned by the user namespace
 * made already: cloned by a child of amber's that joins that user
 * namespace first (amber can't: it would lose its own), with
 * CLONE_PARENT, so the root is amber's child as any root (or the
 * caller's, made with @flags' CLONE_PARENT: then so is that child, which
 * the caller reaps). It tells amber the root's pid and exits.
 */
static pid_t clone_in_user_pidns(struct rst_ctx *rc, uint64_t flags)
{
	int pp[2], err = 0;
	pid_t maker, pid = -1;

	if (pipe2(pp, O_CLOEXEC))
		return -1;
	maker = flags & CLONE_PARENT ? rst_clone_plain(CLONE_PARENT) : fork();
	if (maker == 0) {
		close(pp[0]);
		rc->ns.user_joined = true;
		pid = setns(rc->ns.user_fd, CLONE_NEWUSER) ? -1 : rst_clone_newpid(CLONE_PARENT);
		if (pid == 0) { /* the root, in the user namespace already */
			close(pp[1]);
			return 0;
		}
		if (pid < 0)
			pid = -errno;
		_exit(write(pp[1], &pid, sizeof(pid)) == sizeof(pid) ? 0 : 1);
	}
	err = errno;
	close(pp[1]);
	if (maker > 0 && read(pp[0], &pid, sizeof(pid)) != sizeof(pid))
		pid = -EIO;
	close(pp[0]);
	if (maker > 0 && !(flags & CLONE_PARENT))
		while (waitpid(maker, NULL, 0) < 0 && errno == EINTR)
			;
	if (maker < 0 || pid < 0) {
		errno = maker < 0 ? err : -pid;
		return -1;
	}
	return pid;
}

static int run_tree(struct rst_ctx *rc)
{
	struct rst_task *root = &rc->tasks[0];
	struct tracer tr = { .rc = rc, .nr_expected = count_threads(rc) };
	int go[2], ret, rd, status_rd, info_rd;
	uint64_t flags;
	pid_t pid;
	char c = 0;

	rd = setup_pipes(rc, go);
	if (rd < 0)
		return rd;
	status_rd = rd >> 16;
	info_rd = rd & 0xffff;
	rc->pids.own_ns = rc->ns.new_pid;
	/* --rst-sibling (runc's): the root is the caller's child, as CRIU makes it. */
	/*
	 * A user namespace first: the pid namespace made with it is owned by
	 * it. Or the user namespace made already (rst_ns_make_user_net()):
	 * the root joins it, born in it if it is to be init of a pid
	 * namespace of its own.
	 */
	flags = (rc->opts->sibling ? CLONE_PARENT : 0) |
		(rc->ns.user && !rc->ns.user_made ? CLONE_NEWUSER : 0);
	if (rc->ns.user_made && rc->ns.new_pid)
		pid = clone_in_user_pidns(rc, flags);
	else
		pid = rc->ns.new_pid ? rst_clone_newpid(flags) : rst_clone_pid(root->pid, flags);
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		close(go[0]);
		rst_task_run(rc, root);
	}
	if (pid < 0) {
		int err = errno;

		pr_err("clone3 of root pid %d: %s%s\n", root->pid, strerror(err),
		       err == EPERM ? " (a chosen pid needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN "
				      "over the pid namespace)" : "");
		return -err;
	}
	rc->forked = true;
	if (pid_map_add(&rc->pids, pid, root->pid)) {
		kill(pid, SIGKILL);
		return -ENOMEM;
	}
	close(go[0]);
	/* The restored filters are suspended until the detach. */
	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE |
		   PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
		   (rst_has_seccomp(rc) ? PTRACE_O_SUSPEND_SECCOMP : 0))) {
		int err = errno;

		pr_perror("can't trace restored root %d%s", pid,
			  err == EPERM && rst_has_seccomp(rc) ?
				  " (a tree under seccomp: suspending its filters needs CAP_SYS_ADMIN)" : "");
		kill(pid, SIGKILL);
		return -err;
	}
	/* Before it runs: it makes its other namespaces and takes its ids in this one. */
	if (rc->ns.user && !rc->ns.user_made) {
		ret = rst_ns_write_user_maps(rc, pid);
		if (ret) {
			kill(pid, SIGKILL);
			return ret;
		}
	}
	if (write(go[1], &c, 1) != 1)
		return -EIO;
	close(go[1]);
	/* Our copies of the write ends would hide a task's death from reads. */
	close(rc->status_fd);
	close(rc->info_fd);
	rc->status_fd = status_rd;
	rc->info_fd = info_rd;

	ret = trace_until_stopped(&tr);
	if (!ret)
		ret = rst_ns_check_net_owner(rc, pid);
	if (!ret && rc->ns.user)
		ret = set_oom_score_adjs(rc);
	/* Every task exists and is stopped: none runs a step in the wrong cgroup. */
	if (!ret)
		ret = rst_cgroup_apply(rc);
	if (!ret)
		ret = notify_stage(rc, "setup-namespaces", pid);
	if (!ret)
		ret = hand_orphan_master(rc);
	rc->files.root_pid = pid;
	if (!ret)
		ret = files_finish_shared(&rc->files);
	/*
	 * Every socket is in place: the peers may reach them again. A lock
	 * that can't be removed is reported, with the way to retry, but the
	 * restore goes on: killing the tree now would lose the connections.
	 */
	if (!ret)
		netlock_unlock(&rc->netlock, rc->dirfd);
	if (!ret && fault_injected("restore-sigreturn"))
		ret = -EIO;
	if (!ret)
		ret = trace_sigreturns(&tr);
	/* Every segment is attached where it was: those saved as removed can go. */
	if (!ret)
		ret = rst_ipc_finish(rc, pid);
	if (!ret)
		ret = unmap_blobs(&tr);
	if (!ret)
		ret = notify_stage(rc, "post-restore", pid);
	/*
	 * The running tasks go first: a parent still traced would have the
	 * SIGCHLD of its child's stop queued even if it ignores it.
	 */
	if (!ret)
		detach_all(rc, &tr, false);
	if (!ret)
		ret = rst_stop_again(rc);
	if (ret) {
		report_task_errors(rc);
		kill_all(rc);
	} else {
		detach_all(rc, &tr, true);
	}
	free(tr.th);
	free(tr.blobs);
	return ret;
}

static int wait_root(pid_t pid, int *wait_status)
{
	int st;

	if (waitpid(pid, &st, 0) != pid) {
		pr_perror("waitpid %d", pid);
		return -errno;
	}
	if (wait_status)
		*wait_status = st;
	return 0;
}

static int restore_netlock_load(struct rst_ctx *rc)
{
	enum netlock_method want = rc->opts->network_lock;
	int ret = netlock_load(&rc->netlock, rc->dirfd);

	if (ret)
		return ret;
	if (rc->netlock.locked && want != NETLOCK_NONE && want != NETLOCK_AUTO &&
	    want != rc->netlock.method)
		pr_warn("--network-lock %s is ignored: the images were locked with %s\n",
			netlock_method_name(want), netlock_method_name(rc->netlock.method));
	return 0;
}

int restore_run(const struct restore_opts *opts, pid_t *root_pid, int *wait_status)
{
	struct rst_ctx rc = { .opts = opts, .dirfd = -1, .status_fd = -1, .info_fd = -1,
			      .lazy_fd = -1, .uffd_dev_fd = -1 };
	int ret;

	rc.dirfd = open(opts->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (rc.dirfd < 0) {
		pr_perror("can't open image directory %s", opts->dir);
		return -errno;
	}
	remote_log_init();
	ret = restore_netlock_load(&rc);
	if (!ret && opts->lazy)
		ret = lazy_restore_connect(&rc);
	if (!ret)
		ret = rst_load(&rc);
	if (!ret && fault_injected("restore-images"))
		ret = -EIO;
	/* The loaded layers hold their own dups of what the daemon handed over. */
	lazy_restore_put_pages(&rc);
	if (!ret)
		ret = check_pids_free(&rc);
	if (!ret)
		ret = rst_check_creds(&rc);
	if (ret) {
		pr_err("images in %s refused; nothing was restored\n", opts->dir);
		goto out;
	}
	ret = rst_cgroup_prepare(&rc);
	if (ret)
		goto out;
	rc.svc_fd_base = max(files_max_fd(&rc.files) + 1, 256);
	ret = move_fd_up(&rc.dirfd, rc.svc_fd_base);
	if (!ret && rc.lazy_fd >= 0)
		ret = move_fd_up(&rc.lazy_fd, rc.svc_fd_base);
	if (!ret && rc.uffd_dev_fd >= 0)
		ret = move_fd_up(&rc.uffd_dev_fd, rc.svc_fd_base);
	if (!ret)
		ret = move_pages_fds_up(&rc);
	if (!ret)
		ret = rst_mnt_open_images(&rc, rc.svc_fd_base);
	if (!ret)
		ret = log_move_fd(rc.svc_fd_base);
	if (!ret)
		ret = shmem_prepare(&rc);
	/* Both moved or set above: the files code reads them from its context. */
	rc.files.dirfd = rc.dirfd;
	rc.files.svc_fd_base = rc.svc_fd_base;
	/* One its user namespace owns: both made now, before its sockets. */
	if (!ret)
		ret = rst_ns_make_user_net(&rc);
	if (!ret && rc.ns.user_made)
		ret = move_user_ns_fds_up(&rc);
	/* The tree's sockets are made in its network namespace. */
	if (!ret)
		ret = rst_net_enter(&rc);
	if (!ret)
		ret = files_prepare_shared(&rc.files);
	if (!ret && opts->lazy)
		ret = lazy_restore_hello(&rc);
	if (!ret && fault_injected("restore-prepared"))
		ret = -EIO;
	if (!ret)
		ret = run_tree(&rc);
	/* The tasks closed theirs: the keeper now knows every uffd has arrived. */
	if (rc.lazy_fd >= 0)
		close(rc.lazy_fd);
	rc.lazy_fd = -1;
	if (ret) {
		if (rc.forked)
			pr_err("restore failed; every task it created was killed\n");
		else
			pr_err("restore failed before any task was created\n");
		rst_cgroup_undo(&rc);
		goto out;
	}
	if (rc.ns.new_pid)
		pr_info("restored %d task(s), root %d (1 in its new pid namespace)\n", rc.nr_tasks,
			rst_host_pid(&rc, rc.tasks[0].pid));
	else
		pr_info("restored %d task(s), root %d\n", rc.nr_tasks, rc.tasks[0].pid);
	if (root_pid)
		*root_pid = rst_host_pid(&rc, rc.tasks[0].pid);
	if (!opts->detach)
		ret = wait_root(rst_host_pid(&rc, rc.tasks[0].pid), wait_status);
out:
	if (rc.lazy_fd >= 0)
		close(rc.lazy_fd); /* never introduced: the daemon waits for another restore */
	if (rc.uffd_dev_fd >= 0)
		close(rc.uffd_dev_fd);
	/* Every task is gone: nothing would ever answer the peers. */
	if (ret) {
		files_release_placed(&rc.files);
		netlock_unlock(&rc.netlock, rc.dirfd);
	}
	if (rst_net_leave(&rc) && !ret)
		ret = -EIO;
	netlock_free(&rc.netlock);
	pid_map_free(&rc.pids);
	rst_free(&rc);
	if (rc.dirfd >= 0)
		close(rc.dirfd);
	return ret > 0 ? -EINVAL : ret;
}
