// SPDX-License-Identifier: MIT
/*
 * The console (/dev/console, 5:1) and the virtual terminals (/dev/ttyN,
 * 4:0..63; /dev/tty0 is the current one), as CRIU saves them: a
 * tty_info_entry per device (termios, locked termios, window size,
 * TIOCEXCL, and the session and foreground group whose controlling
 * terminal it is), with CRIU's ids (console 2004, the first VT 2008, more
 * VTs 2014..2048: CRIU's restore takes ids up to 2048), a regular file
 * entry with the device's path (regf_id) and a tty_file_entry per
 * description.
 *
 * Restore: each description is a new open of that path with its saved
 * flags, the settings set again (a VT's are reset when its last file
 * closes), and a session leader takes the device back as its controlling
 * terminal with its foreground group. A VT restored with --shell-job is
 * the shell's terminal instead (tty.c), as in CRIU; the console never is.
 */
#define LOG_PREFIX "tty: "
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "tty.pb-c.h"

#define TTY_MAJOR_NR	 4
#define TTYAUX_MAJOR_NR	 5
#define VT_MINORS	 64
#define CONSOLE_INFO_ID	 2004 /* CRIU's CONSOLE_INDEX 1002 << 1 */
#define VT_INFO_ID	 2008 /* CRIU's VT_INDEX 1004 << 1 */
#define VT_MORE_INFO_ID	 2014 /* after CRIU's CTTY_INDEX (2012) */
#define CRIU_MAX_INFO_ID 2048 /* CRIU refuses a tty info id above (MAX_TTYS << 1) */

bool files_tty_is_console(dev_t rdev)
{
	return major(rdev) == TTYAUX_MAJOR_NR && minor(rdev) == 1;
}

bool files_tty_is_vt(dev_t rdev)
{
	return major(rdev) == TTY_MAJOR_NR && minor(rdev) < VT_MINORS;
}

/* A description of the device is opened again at restore (else: the shell's terminal). */
bool files_tty_reopened(const TtyInfoEntry *ti, bool shell_job)
{
	return ti->type == TTY_TYPE__CONSOLE || (ti->type == TTY_TYPE__VT && !shell_job);
}

static const char *dev_name(dev_t rdev)
{
	return files_tty_is_console(rdev) ? "the console" : "a virtual terminal";
}

/* ---- dump ---- */

/*
 * The session whose controlling terminal is the tty behind @fd (TIOCGDEV:
 * the console's real device), and its foreground group, from the tree's
 * /proc/PID/stat. -EBUSY if a task of the tree has it as controlling
 * terminal but its session's leader is outside the tree.
 */
static int dev_session(struct files_dump_ctx *fc, const struct fd_desc *d, int fd, uint32_t *sid,
		       uint32_t *pgrp)
{
	unsigned int real = 0;
	pid_t dangling = 0;

	*sid = *pgrp = 0;
	if (ioctl(fd, TIOCGDEV, &real)) {
		pr_perror("fd %d of pid %d (%s): TIOCGDEV", d->fd, d->pid, d->link);
		return -errno;
	}
	for (int i = 0; i < fc->nr_tree_pids; i++) {
		cleanup_free char *buf = read_proc(fc->tree_pids[i], "stat", NULL);
		char *p = buf ? strrchr(buf, ')') : NULL;
		unsigned long tty_nr;
		int session, tpgid;
		bool leader_in = false;

		if (!p || sscanf(p + 1, " %*c %*d %*d %d %lu %d", &session, &tty_nr, &tpgid) != 3 ||
		    tty_nr != real)
			continue;
		for (int j = 0; j < fc->nr_tree_pids; j++)
			leader_in |= fc->tree_pids[j] == session;
		if (!leader_in) {
			dangling = session;
			continue;
		}
		*sid = fc->pids ? pid_map_ns(fc->pids, session) : (pid_t)session;
		*pgrp = tpgid <= 0 ? 0 : fc->pids ? pid_map_ns(fc->pids, tpgid) : (pid_t)tpgid;
		return 0;
	}
	if (!dangling)
		return 0;
	if (files_tty_is_vt(d->st.st_rdev) && fc->shell_job) {
		/* the shell's terminal: its restore with --shell-job gives amber's (tty.c) */
		*sid = fc->pids ? pid_map_ns(fc->pids, dangling) : dangling;
		return 0;
	}
	pr_err("fd %d of pid %d is %s (%s), the controlling terminal of session %d whose leader "
	       "is outside the tree: dump the session's leader too%s\n",
	       d->fd, d->pid, dev_name(d->st.st_rdev), d->link, dangling,
	       files_tty_is_vt(d->st.st_rdev) ? " (or pass --shell-job)" : "");
	return -EBUSY;
}

/* CRIU's id for the device's info: console 2004, VTs 2008, then 2014... */
static int dev_info_id(struct files_dump *st, dev_t rdev, uint32_t *id)
{
	uint32_t next = VT_MORE_INFO_ID;
	bool first_vt = true;

	if (files_tty_is_console(rdev)) {
		*id = CONSOLE_INFO_ID;
		return 0;
	}
	for (int i = 0; i < st->nr_ttys; i++) {
		if (!files_tty_is_vt(st->ttys[i].rdev) || st->ttys[i].index >= 0)
			continue;
		first_vt = false;
		if (st->ttys[i].info_id >= next)
			next = st->ttys[i].info_id + 2;
	}
	*id = first_vt ? VT_INFO_ID : next;
	return *id <= CRIU_MAX_INFO_ID ? 0 : -E2BIG;
}

static int write_dev_info(struct files_dump_ctx *fc, const struct fd_desc *d, int fd, uint32_t id)
{
	TtyInfoEntry ti = TTY_INFO_ENTRY__INIT;
	struct files_tty_settings s;
	int v = 0, ret = files_get_img(fc, &fc->st->tty_info, IMG_TTY_INFO);

	if (!ret)
		ret = files_tty_settings_dump(d, fd, &ti, &s);
	if (!ret)
		ret = dev_session(fc, d, fd, &ti.sid, &ti.pgrp);
	if (ret)
		return ret;
	ti.id = id;
	ti.type = files_tty_is_console(d->st.st_rdev) ? TTY_TYPE__CONSOLE : TTY_TYPE__VT;
	if (!ioctl(fd, TIOCGEXCL, &v))
		ti.exclusive = v;
	return img_write_msg(fc->st->tty_info, &ti.base);
}

/* The console or a VT: its info once per device; *info_id for the tty file. */
int files_tty_dev_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *info_id)
{
	struct files_dump *st = fc->st;
	struct dumped_tty *n;
	int fd, ret;

	for (int i = 0; i < st->nr_ttys; i++)
		if (st->ttys[i].index < 0 && st->ttys[i].rdev == d->st.st_rdev) {
			*info_id = st->ttys[i].info_id;
			return 0;
		}
	ret = dev_info_id(st, d->st.st_rdev, info_id);
	if (ret) {
		pr_err("fd %d of pid %d (%s): more virtual terminals than CRIU's tty ids can "
		       "number\n",
		       d->fd, d->pid, d->link);
		return ret;
	}
	for (int i = 0; i < st->nr_ttys; i++)
		if (st->ttys[i].info_id == *info_id) {
			pr_err("fd %d of pid %d (%s): its tty id %u is taken by /dev/pts/%d, whose "
			       "index is past CRIU's (1000)\n",
			       d->fd, d->pid, d->link, *info_id, st->ttys[i].index);
			return -EBUSY;
		}
	fd = files_getfd(d);
	if (fd < 0)
		return fd;
	ret = write_dev_info(fc, d, fd, *info_id);
	close(fd);
	if (ret)
		return ret;
	n = xrealloc_array(st->ttys, st->nr_ttys + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	st->ttys = n;
	n[st->nr_ttys++] = (struct dumped_tty){
	    .rdev = d->st.st_rdev, .info_id = *info_id, .index = -1, .pid = d->pid, .fd = -1};
	return 0;
}

/* ---- restore ---- */

static const char *dev_path(struct files_rst *fr, const FileEntry *fe)
{
	struct rfile *reg = fe->tty->has_regf_id ? files_rfile(fr, fe->tty->regf_id) : NULL;

	return reg && reg->fe->type == FD_TYPES__REG && reg->fe->reg && reg->fe->reg->name
		       ? reg->fe->reg->name
		       : NULL;
}

static bool task_in_images(struct files_rst *fr, uint32_t pid)
{
	for (int i = 0; i < fr->nr_tasks; i++)
		if (fr->tasks[i].pid == (pid_t)pid)
			return true;
	return false;
}

/*
 * At load, before any task exists: the entry names the console or a VT
 * (by type and device number), a path here that is that device, and a
 * session whose leader is in the images.
 */
int files_tty_dev_check(struct files_rst_ctx *fc, const FileEntry *fe, const TtyInfoEntry *ti)
{
	struct files_rst *fr = fc->st;
	const char *path = dev_path(fr, fe);
	bool ok = ti->type == TTY_TYPE__CONSOLE ? files_tty_is_console(ti->rdev)
						 : files_tty_is_vt(ti->rdev);
	struct stat st;
	bool missing;

	if (!ok || ti->pty) {
		pr_err("tty-info.img: entry %u (type %d) names device %u:%u, which is not %s\n",
		       ti->id, ti->type, major(ti->rdev), minor(ti->rdev),
		       ti->type == TTY_TYPE__CONSOLE ? "the console (5:1)"
						     : "a virtual terminal (4:0..63)");
		return -EINVAL;
	}
	if (!path) {
		pr_err("files.img: terminal file %u (%s) has no path entry\n", fe->id,
		       dev_name(ti->rdev));
		return -EINVAL;
	}
	missing = stat(path, &st) != 0;
	if (missing || !S_ISCHR(st.st_mode) || st.st_rdev != ti->rdev) {
		pr_err("files.img: terminal file %u is %s %s (%u:%u), which is %s here\n", fe->id,
		       dev_name(ti->rdev), path, major(ti->rdev), minor(ti->rdev),
		       missing ? "missing" : "another file");
		return -ENODEV;
	}
	if (ti->sid && !task_in_images(fr, ti->sid)) {
		pr_err("tty-info.img: %s %s is the controlling terminal of session %u, whose leader "
		       "is not in the images\n",
		       dev_name(ti->rdev), path, ti->sid);
		return -EINVAL;
	}
	return 0;
}

static bool same_termios(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag &&
	       a->c_cflag == b->c_cflag && a->c_lflag == b->c_lflag &&
	       a->c_line == b->c_line && !memcmp(a->c_cc, b->c_cc, TTY_NCC);
}

/*
 * Locked termios first: they limit what the termios may be set to. A
 * device may refuse a setting it already has (a VT on a console that
 * cannot resize refuses any TIOCSWINSZ): what it has is what is wanted.
 */
static int set_settings(int fd, const TtyInfoEntry *ti)
{
	struct termios t, now;
	struct winsize ws, ws_now;

	if (ti->termios_locked) {
		files_entry_to_termios(ti->termios_locked, &t);
		if (ioctl(fd, TIOCSLCKTRMIOS, &t) &&
		    (ioctl(fd, TIOCGLCKTRMIOS, &now) || !same_termios(&t, &now))) {
			pr_perror("TIOCSLCKTRMIOS");
			return -errno;
		}
	}
	if (ti->termios) {
		files_entry_to_termios(ti->termios, &t);
		if (tcsetattr(fd, TCSANOW, &t) && (tcgetattr(fd, &now) || !same_termios(&t, &now))) {
			pr_perror("tcsetattr");
			return -errno;
		}
	}
	if (ti->winsize) {
		files_entry_to_winsize(ti->winsize, &ws);
		if (ioctl(fd, TIOCSWINSZ, &ws) &&
		    (ioctl(fd, TIOCGWINSZ, &ws_now) || ws.ws_row != ws_now.ws_row ||
		     ws.ws_col != ws_now.ws_col)) {
			pr_perror("TIOCSWINSZ %ux%u", ws.ws_col, ws.ws_row);
			return -errno;
		}
	}
	if (ti->exclusive && ioctl(fd, TIOCEXCL)) {
		pr_perror("TIOCEXCL");
		return -errno;
	}
	return 0;
}

/* Before fork: a new description of the device, with the file's flags and the settings. */
int files_tty_dev_prepare(struct files_rst_ctx *fc, struct rfile *rf, const TtyInfoEntry *ti)
{
	const char *path = dev_path(fc->st, rf->fe);
	struct stat st;
	int fd, ret;

	fd = open(path, files_open_flags(rf->fe->tty->flags));
	if (fd < 0) {
		ret = -errno;
		pr_perror("terminal file %u: can't open %s %s", rf->fe->id, dev_name(ti->rdev),
			  path);
		return ret;
	}
	if (fstat(fd, &st) || st.st_rdev != ti->rdev) {
		pr_err("terminal file %u: %s is not device %u:%u any more\n", rf->fe->id, path,
		       major(ti->rdev), minor(ti->rdev));
		close(fd);
		return -ENODEV;
	}
	ret = set_settings(fd, ti);
	if (ret) {
		pr_err("terminal file %u: can't set %s's settings again: %s\n", rf->fe->id, path,
		       strerror(-ret));
		close(fd);
		return ret;
	}
	rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

/* Waits (up to 5 s) for process group @pgrp to exist: its leader may be a child still starting. */
static void wait_group(pid_t pgrp)
{
	for (int j = 0; j < 5000; j++) {
		struct timespec ms = {0, 1000000};

		if (kill(-pgrp, 0) == 0 || errno == EPERM)
			return;
		nanosleep(&ms, NULL);
	}
}

/*
 * In restored task @pid, its fds in place: a session leader takes its
 * console or VT back as controlling terminal, then its foreground group.
 */
int files_tty_dev_restore_ctty(struct files_rst_ctx *fc, pid_t pid)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; fr && i < fr->nr_files; i++) {
		const FileEntry *fe = fr->files[i].fe;
		const TtyInfoEntry *ti;
		const char *path;
		pid_t pgrp;
		int fd, ret = 0;

		if (fe->type != FD_TYPES__TTY)
			continue;
		ti = files_tty_info(fr, fe->tty->tty_info_id);
		if (!ti || !files_tty_reopened(ti, fc->shell_job) || ti->sid != (uint32_t)pid)
			continue;
		path = dev_path(fr, fe);
		fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, TIOCSCTTY, 0))
			ret = -errno;
		pgrp = ti->pgrp;
		if (!ret && pgrp && pgrp != pid)
			wait_group(pgrp);
		if (!ret && pgrp && ioctl(fd, TIOCSPGRP, &pgrp))
			ret = -errno;
		if (fd >= 0)
			close(fd);
		if (ret) {
			pr_err("%s: can't make it the terminal of session %d (group %d): %s\n", path,
			       pid, pgrp, strerror(-ret));
			return ret;
		}
		return 0; /* one controlling terminal per session */
	}
	return 0;
}
