// SPDX-License-Identifier: MIT
/*
 * Pseudo-terminal pairs whose master is in the tree (tmux, screen, sshd,
 * script, expect...). Each side has a tty_info_entry with CRIU's id
 * (index << 1, + 1 for the master): termios and locked termios, window
 * size, packet mode, pty lock, TIOCEXCL, and the session and foreground
 * group of the slave. Data queued in either direction goes to
 * tty-data.img under the id of the side that would read it.
 *
 * Restore: the master is opened again with the same index, so /dev/pts/N,
 * the name the tasks know, is the same; each slave description is a new
 * open of that master's peer (TIOCGPTPEER: no path, no devpts lookup);
 * the session leader takes the slave as its controlling terminal and
 * gives it its foreground group (files_pty_restore_ctty()).
 *
 * A slave whose master is outside the tree is the shell's terminal
 * (--shell-job, tty.c), or a container's whose engine holds the master
 * (orphan_pts_master, runc's --console-socket): it gets a new pair of the
 * same index, made in the tree's devpts if it has its own mounts (by the
 * root, as that devpts is mounted: /dev/console is a bind of the slave),
 * and the new master goes to the caller (files_orphan_master()).
 *
 * In a tree with mounts of its own a pair whose master is in the tree
 * (tmux, sshd inside a container) is made by the root too, from its
 * devpts's ptmx as that devpts is mounted (a fresh instance: the indexes
 * are free), and its master is sent back to amber for files_pty_finish().
 */
#define LOG_PREFIX "pty: "
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/fdpass.h"
#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "tty.pb-c.h"

#define PTY_SLAVE_MAJOR 136
#define PTY_MAX_INDEX	(1 << 20)
/* Queued data kept per direction; the kernel's buffers hold less. */
#define PTY_MAX_DATA (1u << 20)
/* ptmx opened to reach an index (the lower free ones are held meanwhile). */
#define PTY_MAX_OPENS 4096

bool files_is_ptm(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 2;
}

bool files_is_pts(dev_t rdev)
{
	return major(rdev) >= PTY_SLAVE_MAJOR && major(rdev) <= PTY_SLAVE_MAJOR + 7;
}

static uint32_t pty_info_id(int index, bool master)
{
	return ((uint32_t)index << 1) + master;
}

/* tty_nr of /proc/PID/stat for the slave of @index (the kernel's new_encode_dev). */
static unsigned long pty_tty_nr(int index)
{
	unsigned int ma = PTY_SLAVE_MAJOR, mi = index;

	return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

/* ---- dump ---- */

/*
 * The session whose controlling terminal is the slave of @index, and its
 * foreground group, from the tree's /proc/PID/stat (as ps shows them).
 */
static void pty_session(struct files_dump_ctx *fc, int index, uint32_t *sid, uint32_t *pgrp)
{
	*sid = *pgrp = 0;
	for (int i = 0; i < fc->nr_tree_pids; i++) {
		cleanup_free char *buf = read_proc(fc->tree_pids[i], "stat", NULL);
		char *p = buf ? strrchr(buf, ')') : NULL;
		unsigned long tty_nr;
		int session, tpgid;

		if (!p || sscanf(p + 1, " %*c %*d %*d %d %lu %d", &session, &tty_nr, &tpgid) != 3)
			continue;
		if (tty_nr != pty_tty_nr(index) || session != fc->tree_pids[i])
			continue;
		/* the tree's own pids (0: a group outside its pid namespace) */
		*sid = fc->pids ? pid_map_ns(fc->pids, session) : (pid_t)session;
		*pgrp = tpgid <= 0 ? 0 : fc->pids ? pid_map_ns(fc->pids, tpgid) : (pid_t)tpgid;
		return;
	}
}

void files_termios_to_entry(const struct termios *t, TermiosEntry *te, uint32_t *cc)
{
	te->c_iflag = t->c_iflag;
	te->c_oflag = t->c_oflag;
	te->c_cflag = t->c_cflag;
	te->c_lflag = t->c_lflag;
	te->c_line = t->c_line;
	te->c_ispeed = cfgetispeed(t);
	te->c_ospeed = cfgetospeed(t);
	/* CRIU's layout: the c_cc bytes copied into the uint32s, four to an entry */
	memset(cc, 0, TTY_NCC * sizeof(*cc));
	memcpy(cc, t->c_cc, TTY_NCC);
	te->n_c_cc = TTY_NCC;
	te->c_cc = cc;
}

void files_winsize_to_entry(const struct winsize *ws, WinsizeEntry *we)
{
	we->ws_row = ws->ws_row;
	we->ws_col = ws->ws_col;
	we->ws_xpixel = ws->ws_xpixel;
	we->ws_ypixel = ws->ws_ypixel;
}

void files_entry_to_winsize(const WinsizeEntry *we, struct winsize *ws)
{
	*ws = (struct winsize){we->ws_row, we->ws_col, we->ws_xpixel, we->ws_ypixel};
}

void files_tty_info_device(TtyInfoEntry *ti, const struct fd_desc *d)
{
	ti->rdev = d->st.st_rdev;
	ti->has_dev = ti->has_uid = ti->has_gid = true;
	ti->dev = d->st.st_dev;
	ti->uid = d->st.st_uid;
	ti->gid = d->st.st_gid;
}

int files_tty_settings_dump(const struct fd_desc *d, int fd, TtyInfoEntry *ti,
			    struct files_tty_settings *s)
{
	struct termios tio, lck;
	struct winsize ws;

	if (tcgetattr(fd, &tio) || ioctl(fd, TIOCGLCKTRMIOS, &lck) || ioctl(fd, TIOCGWINSZ, &ws)) {
		pr_perror("fd %d of pid %d (%s): can't read the terminal's settings", d->fd, d->pid,
			  d->link);
		return -errno;
	}
	*s = (struct files_tty_settings){ .termios = TERMIOS_ENTRY__INIT,
					  .locked = TERMIOS_ENTRY__INIT,
					  .winsize = WINSIZE_ENTRY__INIT };
	files_tty_info_device(ti, d);
	files_termios_to_entry(&tio, &s->termios, s->cc);
	files_termios_to_entry(&lck, &s->locked, s->lcc);
	files_winsize_to_entry(&ws, &s->winsize);
	ti->termios = &s->termios;
	ti->termios_locked = &s->locked;
	ti->winsize = &s->winsize;
	return 0;
}

static int pty_write_info(struct files_dump_ctx *fc, const struct fd_desc *d, int fd,
			  struct dumped_tty *t)
{
	TtyInfoEntry ti = TTY_INFO_ENTRY__INIT;
	TtyPtyEntry pty = TTY_PTY_ENTRY__INIT;
	struct files_tty_settings s;
	int v = 0, ret = files_get_img(fc, &fc->st->tty_info, IMG_TTY_INFO);

	if (!ret)
		ret = files_tty_settings_dump(d, fd, &ti, &s);
	if (ret)
		return ret;
	ti.id = t->info_id;
	ti.type = TTY_TYPE__PTY;
	pty.index = t->index;
	ti.pty = &pty;
	pty_session(fc, t->index, &ti.sid, &ti.pgrp);
	if (t->master) {
		if (!ioctl(fd, TIOCGPTLCK, &v))
			ti.locked = v;
		if (!ioctl(fd, TIOCGPKT, &v))
			ti.packet_mode = v;
	}
	if (!ioctl(fd, TIOCGEXCL, &v))
		ti.exclusive = v;
	return img_write_msg(fc->st->tty_info, &ti.base);
}

/* Each side of pty pair @index is one info; *info_id for the tty_file_entry. */
int files_pty_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *info_id)
{
	struct files_dump *st = fc->st;
	bool master = files_is_ptm(d->st.st_rdev);
	struct dumped_tty *n;
	int fd, index, ret;

	fd = files_getfd(d);
	if (fd < 0)
		return fd;
	if (master) {
		if (ioctl(fd, TIOCGPTN, &index)) {
			ret = -errno;
			pr_perror("fd %d of pid %d: TIOCGPTN on pty master %s", d->fd, d->pid,
				  d->link);
			close(fd);
			return ret;
		}
	} else {
		index = (major(d->st.st_rdev) - PTY_SLAVE_MAJOR) * 256 + minor(d->st.st_rdev);
	}
	*info_id = pty_info_id(index, master);
	for (int i = 0; i < st->nr_ttys; i++)
		if (st->ttys[i].index == index && st->ttys[i].master == master) {
			close(fd);
			return 0;
		}
	n = xrealloc_array(st->ttys, st->nr_ttys + 1, sizeof(*n));
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	st->ttys = n;
	n += st->nr_ttys++;
	*n = (struct dumped_tty){.rdev = d->st.st_rdev,
				 .info_id = *info_id,
				 .index = index,
				 .master = master,
				 .pid = d->pid,
				 .fd = fd};
	return pty_write_info(fc, d, fd, n);
}

static struct dumped_tty *find_side(struct files_dump *st, int index, bool master)
{
	for (int i = 0; i < st->nr_ttys; i++)
		if (st->ttys[i].index == index && st->ttys[i].master == master)
			return &st->ttys[i];
	return NULL;
}

/* Reads what is queued for @fd to read, without blocking (FIONREAD first). */
static int read_queued(int fd, bool packet, uint8_t **out, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n = 0;

	for (;;) {
		int avail = 0;
		uint8_t *nb;
		ssize_t r;

		if (ioctl(fd, FIONREAD, &avail) || avail <= 0)
			break;
		if (n + avail + 1 > PTY_MAX_DATA) {
			free(buf);
			return -E2BIG;
		}
		nb = realloc(buf, n + avail + 1);
		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		r = read(fd, buf + n, avail + (packet ? 1 : 0));
		if (r <= 0)
			break;
		if (packet) {
			/* a status byte heads every read; control packets carry no data */
			if (buf[n] != 0)
				continue;
			memmove(buf + n, buf + n + 1, r - 1);
			r--;
		}
		n += r;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int write_data(struct files_dump_ctx *fc, uint32_t info_id, const uint8_t *data, size_t len)
{
	TtyDataEntry e = TTY_DATA_ENTRY__INIT;
	int ret = files_get_img(fc, &fc->st->tty_data, IMG_TTY_DATA);

	if (ret)
		return ret;
	e.tty_id = info_id;
	e.data.data = (uint8_t *)data;
	e.data.len = len;
	return img_write_msg(fc->st->tty_data, &e.base);
}

/*
 * Once every fd is dumped: a slave needs its master in the tree, or
 * --shell-job (it is then the shell's terminal), or orphan_pts (a
 * container's terminal, one only; what is queued in it is not saved: the
 * master is not ours to read it through); the data queued in each
 * direction of the pairs is read out (and put back if the tree runs on).
 */
int files_pty_dump_fini(struct files_dump_ctx *fc)
{
	struct files_dump *st = fc->st;
	int ret = 0, orphan = -1;

	for (int i = 0; i < st->nr_ttys && !ret; i++) {
		struct dumped_tty *s = &st->ttys[i], *m;
		int pkt = 0, peer;

		if (s->index < 0 || s->master)
			continue;
		m = find_side(st, s->index, true);
		if (!m && fc->orphan_pts) {
			/* the engine's terminal: its master is the caller's, one pair only */
			if (orphan >= 0 && orphan != s->index) {
				pr_err("pid %d holds /dev/pts/%d and /dev/pts/%d, whose masters are "
				       "outside the tree: only one such terminal can be saved\n",
				       s->pid, orphan, s->index);
				ret = -ENOTSUP;
			}
			orphan = s->index;
			continue;
		}
		if (!m) {
			if (!fc->shell_job) {
				pr_err(
				    "pid %d holds /dev/pts/%d, whose master is outside the tree: "
				    "pass --shell-job to dump it as the shell's terminal\n",
				    s->pid, s->index);
				ret = -ENOTSUP;
			}
			continue;
		}
		/* what the slave's readers would read: through a new slave description */
		peer = ioctl(m->fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (peer >= 0) {
			ret = read_queued(peer, false, &s->data, &s->len);
			close(peer);
		}
		if (!ret && ioctl(m->fd, TIOCGPKT, &pkt))
			pkt = 0;
		if (!ret)
			ret = read_queued(m->fd, pkt, &m->data, &m->len);
		if (ret == -E2BIG)
			pr_err("/dev/pts/%d: more than %u bytes queued\n", s->index, PTY_MAX_DATA);
		s->data_read = m->data_read = true;
		if (!ret && s->len)
			ret = write_data(fc, s->info_id, s->data, s->len);
		if (!ret && m->len)
			ret = write_data(fc, m->info_id, m->data, m->len);
		if (s->len || m->len)
			pr_info("/dev/pts/%d: %zu bytes queued for the slave, %zu for the master\n",
				s->index, s->len, m->len);
	}
	/* masters whose slaves no task holds: the data for the master only */
	for (int i = 0; i < st->nr_ttys && !ret; i++) {
		struct dumped_tty *m = &st->ttys[i];
		int pkt = 0;

		if (m->index < 0 || !m->master || m->data_read)
			continue;
		if (ioctl(m->fd, TIOCGPKT, &pkt))
			pkt = 0;
		ret = read_queued(m->fd, pkt, &m->data, &m->len);
		m->data_read = true;
		if (!ret && m->len)
			ret = write_data(fc, m->info_id, m->data, m->len);
	}
	if (!ret) {
		ret = img_close(st->tty_data);
		st->tty_data = NULL;
	}
	return ret;
}

/*
 * Puts @to_master (what the master reads) and @to_slave (what the slave
 * reads) back into the pair, as typed and written the first time: the
 * slave's output processing, echo and signals are off meanwhile, then
 * @final is set.
 */
static int pty_inject(int master, int slave, const struct termios *final, const uint8_t *to_master,
		      size_t mlen, const uint8_t *to_slave, size_t slen)
{
	struct termios raw = *final;
	int ret = 0;

	if (!mlen && !slen)
		return tcsetattr(slave, TCSANOW, final) ? -errno : 0;
	raw.c_oflag &= ~OPOST;
	raw.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOKE | ISIG | IEXTEN);
	raw.c_iflag &= ~(ICRNL | INLCR | IGNCR | IXON | ISTRIP | IUCLC);
	if (tcsetattr(slave, TCSANOW, &raw))
		return -errno;
	if (mlen && write(slave, to_master, mlen) != (ssize_t)mlen)
		ret = -EIO;
	if (!ret && slen && write(master, to_slave, slen) != (ssize_t)slen)
		ret = -EIO;
	/* The slave's line discipline takes its input in a worker: wait for it. */
	for (int i = 0; !ret && slen && i < 1000; i++) {
		int avail = 0;
		struct timespec ms = {0, 1000000};

		if (ioctl(slave, FIONREAD, &avail) || avail >= (int)slen)
			break;
		nanosleep(&ms, NULL);
	}
	if (tcsetattr(slave, TCSANOW, final) && !ret)
		ret = -errno;
	return ret;
}

/* The tree runs on: what was read out of the pairs goes back in. */
void files_pty_dump_resume(struct files_dump_ctx *fc)
{
	struct files_dump *st = fc->st;

	for (int i = 0; st && i < st->nr_ttys; i++) {
		struct dumped_tty *m = &st->ttys[i], *s;
		struct termios t;
		int peer, ret = -EIO;

		if (m->index < 0 || !m->master || !m->data_read)
			continue;
		s = find_side(st, m->index, false);
		if (!m->len && (!s || !s->len))
			continue;
		peer = ioctl(m->fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (peer >= 0 && !tcgetattr(peer, &t))
			ret = pty_inject(m->fd, peer, &t, m->data, m->len, s ? s->data : NULL,
					 s ? s->len : 0);
		if (peer >= 0)
			close(peer);
		if (ret)
			pr_warn("/dev/pts/%d: the queued data could not be put back: %s\n",
				m->index, strerror(-ret));
	}
}

void files_pty_dump_free(struct files_dump *st)
{
	for (int i = 0; i < st->nr_ttys; i++) {
		if (st->ttys[i].fd >= 0)
			close(st->ttys[i].fd);
		free(st->ttys[i].data);
	}
	img_close(st->tty_data);
	st->tty_data = NULL;
}

/* ---- restore ---- */

static bool termios_ok(const TermiosEntry *te)
{
	return !te || te->n_c_cc <= NCCS;
}

/*
 * CRIU 4.2 copies the c_cc bytes into the repeated uint32s with memcpy,
 * four to an entry, the entries after them uninitialized; amber does the
 * same since, zeroing the rest. Older amber images hold one byte an entry,
 * and VMIN, VSTART, VSTOP and the others past the fifth are rarely all 0.
 * Packed: an entry above 255, or nothing past the packed bytes.
 */
static bool cc_packed(const TermiosEntry *te)
{
	size_t packed = (TTY_NCC + 3) / 4;
	bool rest_zero = true;

	for (size_t i = 0; i < te->n_c_cc; i++) {
		if (te->c_cc[i] > 0xff)
			return true;
		if (i >= packed && te->c_cc[i])
			rest_zero = false;
	}
	return rest_zero;
}

void files_entry_to_termios(const TermiosEntry *te, struct termios *t)
{
	memset(t, 0, sizeof(*t));
	t->c_iflag = te->c_iflag;
	t->c_oflag = te->c_oflag;
	t->c_cflag = te->c_cflag;
	t->c_lflag = te->c_lflag;
	t->c_line = te->c_line;
	if (cc_packed(te))
		memcpy(t->c_cc, te->c_cc,
		       te->n_c_cc * sizeof(uint32_t) < TTY_NCC ? te->n_c_cc * sizeof(uint32_t) : TTY_NCC);
	else
		for (size_t i = 0; i < te->n_c_cc; i++)
			t->c_cc[i] = te->c_cc[i];
	/* CRIU saves no speeds (0): the baud rate is in c_cflag already, B0 is not meant */
	if (te->c_ispeed)
		cfsetispeed(t, te->c_ispeed);
	if (te->c_ospeed)
		cfsetospeed(t, te->c_ospeed);
}

TtyInfoEntry *files_tty_info(struct files_rst *fr, uint32_t id)
{
	for (int i = 0; i < fr->nr_tty_infos; i++)
		if (fr->tty_infos[i]->id == id)
			return fr->tty_infos[i];
	return NULL;
}

static struct rpty *find_rpty(struct files_rst *fr, uint32_t index)
{
	for (int i = 0; i < fr->nr_ptys; i++)
		if (fr->ptys[i].index == index)
			return &fr->ptys[i];
	return NULL;
}

/* The pair of a tty file, if its master is in the images (else NULL). */
struct rpty *files_rpty_of(struct files_rst *fr, const FileEntry *fe)
{
	TtyInfoEntry *ti = files_tty_info(fr, fe->tty->tty_info_id);
	struct rpty *p =
	    ti && ti->type == TTY_TYPE__PTY && ti->pty ? find_rpty(fr, ti->pty->index) : NULL;

	return p && p->master ? p : NULL;
}

static int load_infos(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct img *img = img_open_optional(fc->dirfd, IMG_TTY_INFO, 0);
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, &tty_info_entry__descriptor, &m)) == 1) {
		TtyInfoEntry *ti = (TtyInfoEntry *)m, **n;

		if (files_tty_info(fr, ti->id) || !termios_ok(ti->termios) ||
		    !termios_ok(ti->termios_locked) ||
		    (ti->type == TTY_TYPE__PTY && (!ti->pty || ti->pty->index >= PTY_MAX_INDEX))) {
			pr_err("tty-info.img: entry %u is malformed or repeated\n", ti->id);
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -EINVAL;
			break;
		}
		n = xrealloc_array(fr->tty_infos, fr->nr_tty_infos + 1, sizeof(*n));
		if (!n) {
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -ENOMEM;
			break;
		}
		fr->tty_infos = n;
		n[fr->nr_tty_infos++] = ti;
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

/* Every pty side a tty file of the images names. */
static int collect_ptys(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		const FileEntry *fe = fr->files[i].fe;
		TtyInfoEntry *ti;
		struct rpty *p;

		if (fe->type != FD_TYPES__TTY)
			continue;
		ti = files_tty_info(fr, fe->tty->tty_info_id);
		if (!ti) {
			/* amber's images of the shell's terminal before ptys had none */
			if (fc->shell_job)
				continue;
			pr_err("files.img: terminal file %u names tty info %u, which tty-info.img "
			       "lacks\n",
			       fe->id, fe->tty->tty_info_id);
			return -EINVAL;
		}
		if (ti->type != TTY_TYPE__PTY)
			continue;
		p = find_rpty(fr, ti->pty->index);
		if (!p) {
			p = xrealloc_array(fr->ptys, fr->nr_ptys + 1, sizeof(*p));
			if (!p)
				return -ENOMEM;
			fr->ptys = p;
			p += fr->nr_ptys++;
			*p = (struct rpty){.index = ti->pty->index, .master_fd = -1};
		}
		if (files_is_ptm(ti->rdev)) {
			if (p->master && p->master != ti) {
				pr_err("tty-info.img: two masters with index %u\n", p->index);
				return -EINVAL;
			}
			p->master = ti;
			p->master_file = fe->id;
		} else {
			if (p->slave && p->slave != ti) {
				pr_err("tty-info.img: two slaves with index %u\n", p->index);
				return -EINVAL;
			}
			p->slave = ti;
		}
	}
	return 0;
}

static int load_data(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct img *img = img_open_optional(fc->dirfd, IMG_TTY_DATA, 0);
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, &tty_data_entry__descriptor, &m)) == 1) {
		TtyDataEntry *e = (TtyDataEntry *)m;
		TtyInfoEntry *ti = files_tty_info(fr, e->tty_id);
		struct rpty *p = ti && ti->pty ? find_rpty(fr, ti->pty->index) : NULL;
		TtyDataEntry **slot = NULL;

		if (p && p->master)
			slot = ti == p->master ? &p->to_master : &p->to_slave;
		if (!slot || *slot || e->data.len > PTY_MAX_DATA) {
			pr_err("tty-data.img: data for tty %u has no pty pair, is repeated or too "
			       "large\n",
			       e->tty_id);
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -EINVAL;
			break;
		}
		*slot = e;
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

/* With orphan_pts: the one slave whose master is not in the images gets a pair. */
static int mark_orphan(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct rpty *found = NULL;

	for (int i = 0; fc->orphan_pts && i < fr->nr_ptys; i++) {
		struct rpty *p = &fr->ptys[i];

		if (p->master || !p->slave)
			continue;
		if (found) {
			pr_err("tty-info.img: /dev/pts/%u and /dev/pts/%u both lack their master: "
			       "only one terminal is handed to the caller\n",
			       found->index, p->index);
			return -EINVAL;
		}
		found = p;
		p->orphan = true;
		if (!p->slave->termios || !p->slave->winsize) {
			pr_err("tty-info.img: /dev/pts/%u has no settings saved\n", p->index);
			return -EINVAL;
		}
	}
	return 0;
}

int files_pty_load(struct files_rst_ctx *fc)
{
	int ret = load_infos(fc);

	if (!ret)
		ret = collect_ptys(fc);
	if (!ret)
		ret = mark_orphan(fc);
	if (!ret)
		ret = load_data(fc);
	return ret;
}

/* The pair made anew for a tty file whose master was the caller's, or NULL. */
struct rpty *files_rpty_orphan(struct files_rst *fr, const FileEntry *fe)
{
	TtyInfoEntry *ti = files_tty_info(fr, fe->tty->tty_info_id);
	struct rpty *p =
	    ti && ti->type == TTY_TYPE__PTY && ti->pty ? find_rpty(fr, ti->pty->index) : NULL;

	return p && p->orphan && p->slave == ti ? p : NULL;
}

/* @dirfd's ptmx until it gives @index; the lower free indexes are held meanwhile. */
static int open_ptmx_at(int dirfd, const char *ptmx, uint32_t index, int flags)
{
	int max = index < PTY_MAX_OPENS ? index + 1 : PTY_MAX_OPENS;
	cleanup_free int *held = calloc(max, sizeof(*held));
	int nr_held = 0, fd = -1, cur = -1, err = 0;

	if (!held)
		return -ENOMEM;
	for (;;) {
		fd = openat(dirfd, ptmx, flags);
		if (fd < 0 || ioctl(fd, TIOCGPTN, &cur)) {
			err = -errno;
			pr_perror("can't open %s", ptmx);
			break;
		}
		if ((uint32_t)cur == index)
			break;
		if ((uint32_t)cur > index || nr_held == max) {
			pr_err(
			    "/dev/pts/%u is taken on this host: the pty can't get its index back\n",
			    index);
			err = -EBUSY;
			break;
		}
		held[nr_held++] = fd; /* a lower index stays busy until ours is reached */
	}
	if (err && fd >= 0)
		close(fd);
	for (int i = 0; i < nr_held; i++)
		close(held[i]);
	return err ? err : fd;
}

static int open_ptmx_index(uint32_t index, int flags)
{
	return open_ptmx_at(AT_FDCWD, "/dev/ptmx", index, flags);
}

static uint32_t kdev_of(uint64_t dev)
{
	return major(dev) << 20 | minor(dev);
}

/* The devpts @p was saved on (the kernel's encoding), 0 if unknown. */
static uint32_t pty_kdev(const struct rpty *p)
{
	const TtyInfoEntry *ti = p->slave && p->slave->has_dev	  ? p->slave
				 : p->master && p->master->has_dev ? p->master
								   : NULL;

	return ti ? kdev_of(ti->dev) : 0;
}

/* (O_CLOEXEC passed to TIOCGPTPEER would stay in the file's f_flags) */
static int open_peer(int master, uint32_t flags)
{
	int fd = ioctl(master, TIOCGPTPEER, (files_open_flags(flags) & ~O_CLOEXEC) | O_NOCTTY);

	if (fd < 0)
		return -errno;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* @rf, a description of @p's slave that is not open yet (an orphan's are all its own). */
static bool is_slave_file(struct files_rst *fr, const struct rfile *rf, const struct rpty *p)
{
	if (rf->fe->type != FD_TYPES__TTY)
		return false;
	if (p->orphan)
		return files_rpty_orphan(fr, rf->fe) == p;
	return rf->svc_fd < 0 && files_tty_info(fr, rf->fe->tty->tty_info_id) == p->slave;
}

/* Every slave description of the images, opened from p->master_fd as a service fd. */
static int open_slave_files(struct files_rst_ctx *fc, struct rpty *p)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		int fd;

		if (!is_slave_file(fr, rf, p))
			continue;
		fd = open_peer(p->master_fd, rf->fe->tty->flags);
		if (fd < 0)
			return fd;
		rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
		if (rf->svc_fd < 0)
			return rf->svc_fd;
	}
	return 0;
}

/* @p's pair, from the ptmx @ptmx of @dirfd, with its settings and queued data. */
static int setup_pair(struct files_rst_ctx *fc, struct rpty *p, int dirfd, const char *ptmx)
{
	struct files_rst *fr = fc->st;
	struct rfile *mrf = files_rfile(fr, p->master_file);
	struct termios t, ms;
	int unlock = 0, slave, ret = 0;
	int flags = files_open_flags(mrf->fe->tty->flags) | O_NOCTTY | O_CLOEXEC;

	p->master_fd = open_ptmx_at(dirfd, ptmx, p->index, flags);
	if (p->master_fd < 0)
		return p->master_fd;
	p->master_fd = files_move_high(p->master_fd, fc->svc_fd_base);
	if (p->master_fd < 0)
		return p->master_fd;
	mrf->svc_fd = dup(p->master_fd);
	if (mrf->svc_fd < 0 || (mrf->svc_fd = files_move_high(mrf->svc_fd, fc->svc_fd_base)) < 0)
		return -EMFILE;
	if (ioctl(p->master_fd, TIOCSPTLCK, &unlock))
		return -errno;
	ret = open_slave_files(fc, p);
	if (ret)
		return ret;
	/* the settings go in through a slave of amber's own */
	slave = open_peer(p->master_fd, O_RDWR);
	if (slave < 0)
		return slave;
	if (p->master && p->master->termios) {
		files_entry_to_termios(p->master->termios, &ms);
		if (tcsetattr(p->master_fd, TCSANOW, &ms))
			ret = -errno;
	}
	if (!ret && tcgetattr(slave, &t))
		ret = -errno;
	if (!ret && p->slave && p->slave->termios)
		files_entry_to_termios(p->slave->termios, &t);
	if (!ret && p->slave && p->slave->winsize) {
		struct winsize ws;

		files_entry_to_winsize(p->slave->winsize, &ws);
		if (ioctl(slave, TIOCSWINSZ, &ws))
			ret = -errno;
	} else if (!ret && p->master->winsize) {
		struct winsize ws;

		files_entry_to_winsize(p->master->winsize, &ws);
		if (ioctl(p->master_fd, TIOCSWINSZ, &ws))
			ret = -errno;
	}
	if (!ret)
		ret = pty_inject(p->master_fd, slave, &t,
				 p->to_master ? p->to_master->data.data : NULL,
				 p->to_master ? p->to_master->data.len : 0,
				 p->to_slave ? p->to_slave->data.data : NULL,
				 p->to_slave ? p->to_slave->data.len : 0);
	if (!ret && p->slave && p->slave->termios_locked) {
		struct termios l;

		files_entry_to_termios(p->slave->termios_locked, &l);
		if (ioctl(slave, TIOCSLCKTRMIOS, &l))
			ret = -errno;
	}
	if (!ret && p->master->packet_mode) {
		int on = 1;

		if (ioctl(p->master_fd, TIOCPKT, &on))
			ret = -errno;
	}
	close(slave);
	if (ret)
		pr_err("/dev/pts/%u: can't restore its settings: %s\n", p->index, strerror(-ret));
	return ret;
}

/*
 * The new pair of the slave saved without its master (p->master_fd just
 * opened): every slave description of the images, the slave's settings.
 */
static int setup_orphan(struct files_rst_ctx *fc, struct rpty *p)
{
	struct termios t, l;
	struct winsize ws;
	int unlock = 0, slave, ret = 0;

	if (ioctl(p->master_fd, TIOCSPTLCK, &unlock))
		return -errno;
	ret = open_slave_files(fc, p);
	if (ret)
		return ret;
	slave = open_peer(p->master_fd, O_RDWR);
	if (slave < 0)
		return slave;
	files_entry_to_termios(p->slave->termios, &t);
	files_entry_to_winsize(p->slave->winsize, &ws);
	if (tcsetattr(slave, TCSANOW, &t) || ioctl(slave, TIOCSWINSZ, &ws))
		ret = -errno;
	if (!ret && p->slave->termios_locked) {
		files_entry_to_termios(p->slave->termios_locked, &l);
		if (ioctl(slave, TIOCSLCKTRMIOS, &l))
			ret = -errno;
	}
	close(slave);
	if (ret)
		pr_err("/dev/pts/%u: can't restore its settings: %s\n", p->index, strerror(-ret));
	else
		pr_info("/dev/pts/%u: a new pair for the terminal whose master was outside\n",
			p->index);
	return ret;
}

static struct rpty *find_orphan(struct files_rst *fr)
{
	for (int i = 0; fr && i < fr->nr_ptys; i++)
		if (fr->ptys[i].orphan)
			return &fr->ptys[i];
	return NULL;
}

/*
 * A way back from the root, which sends the masters it makes on sk[1]
 * (its service fds are closed before amber could take them from its fd
 * table).
 */
static int make_back_channel(struct files_rst_ctx *fc, int sk[2])
{
	int pair[2];

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair))
		return -errno;
	sk[0] = files_move_high(pair[0], fc->svc_fd_base);
	sk[1] = files_move_high(pair[1], fc->svc_fd_base);
	if (sk[0] < 0)
		return sk[0];
	return sk[1] < 0 ? sk[1] : 0;
}

/*
 * The orphan's pair: made now from amber's /dev/ptmx, or, in a tree with
 * mounts of its own, by the root in its devpts, which sends the master
 * back on orphan_sk.
 */
static int prepare_orphan(struct files_rst_ctx *fc, struct rpty *p)
{
	int fd;

	if (fc->defer_paths)
		return make_back_channel(fc, fc->orphan_sk);
	fd = open_ptmx_index(p->index, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	p->master_fd = files_move_high(fd, fc->svc_fd_base);
	return p->master_fd < 0 ? p->master_fd : setup_orphan(fc, p);
}

int files_pty_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct rpty *orphan = find_orphan(fr);
	int ret = 0, nr_in_tree = 0;

	fc->orphan_sk[0] = fc->orphan_sk[1] = fc->pty_sk[0] = fc->pty_sk[1] = -1;
	for (int i = 0; !ret && i < fr->nr_ptys; i++) {
		struct rpty *p = &fr->ptys[i];

		if (!p->master)
			continue;
		/* the root makes it in the tree's devpts (files_pty_devpts_mounted()) */
		p->in_tree = fc->defer_paths;
		nr_in_tree += p->in_tree;
		if (!p->in_tree)
			ret = setup_pair(fc, p, AT_FDCWD, "/dev/ptmx");
	}
	if (!ret && nr_in_tree)
		ret = make_back_channel(fc, fc->pty_sk);
	if (!ret && orphan)
		ret = prepare_orphan(fc, orphan);
	return ret;
}

/* In the root: the tree's pairs saved on devpts @kdev, now mounted at @dirfd. */
static int make_tree_pairs(struct files_rst_ctx *fc, int dirfd, uint32_t kdev)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_ptys; i++) {
		struct rpty *p = &fr->ptys[i];
		char byte = 0;
		ssize_t n;

		if (!p->in_tree || p->master_fd >= 0 || pty_kdev(p) != kdev)
			continue;
		ret = setup_pair(fc, p, dirfd, "ptmx");
		if (ret)
			break;
		n = fdpass_send(fc->pty_sk[1], &byte, 1, p->master_fd);
		ret = n == 1 ? 0 : n < 0 ? (int)n : -EIO;
		if (!ret)
			pr_info("/dev/pts/%u: made in the tree's devpts\n", p->index);
	}
	return ret;
}

int files_pty_devpts_mounted(struct files_rst_ctx *fc, int dirfd, uint32_t kdev)
{
	struct rpty *p = find_orphan(fc->st);
	int fd, ret;

	ret = make_tree_pairs(fc, dirfd, kdev);
	if (ret)
		return ret;

	if (!p || p->master_fd >= 0 || !p->slave->has_dev || kdev_of(p->slave->dev) != kdev)
		return 0;
	fd = open_ptmx_at(dirfd, "ptmx", p->index, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	p->master_fd = files_move_high(fd, fc->svc_fd_base);
	if (p->master_fd < 0)
		return p->master_fd;
	ret = setup_orphan(fc, p);
	/* to amber, which hands it to the caller (files_orphan_master()) */
	if (!ret) {
		char byte = 0;
		ssize_t n = fdpass_send(fc->orphan_sk[1], &byte, 1, p->master_fd);

		ret = n == 1 ? 0 : n < 0 ? (int)n : -EIO;
	}
	return ret;
}

int files_tree_pty_dev(struct files_rst_ctx *fc, int n, uint32_t *kdev, uint32_t *index)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; fr && i < fr->nr_ptys; i++) {
		struct rpty *p = &fr->ptys[i];

		if ((!p->orphan && !p->master) || n--)
			continue;
		*index = p->index;
		*kdev = pty_kdev(p);
		return *kdev ? 1 : -EINVAL;
	}
	return 0;
}

/* In amber: the masters of the pairs the root made in the tree's devpts. */
static int take_tree_masters(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int fd;

	while ((fd = fdpass_recv_queued(fc->pty_sk[0])) >= 0) {
		struct rpty *p = NULL;
		int index = -1;

		ioctl(fd, TIOCGPTN, &index);
		for (int i = 0; !p && i < fr->nr_ptys; i++)
			if (fr->ptys[i].in_tree && fr->ptys[i].master_fd < 0 &&
			    fr->ptys[i].index == (uint32_t)index)
				p = &fr->ptys[i];
		if (!p) {
			pr_err("the restored root sent a pty master of index %d, which no pair "
			       "waits for\n",
			       index);
			close(fd);
			return -EINVAL;
		}
		p->master_fd = files_move_high(fd, fc->svc_fd_base);
		if (p->master_fd < 0)
			return p->master_fd;
	}
	if (fd != -EAGAIN)
		return fd;
	for (int i = 0; i < fr->nr_ptys; i++)
		if (fr->ptys[i].in_tree && fr->ptys[i].master_fd < 0) {
			pr_err("/dev/pts/%u was not made in the tree's devpts\n", fr->ptys[i].index);
			return -ENOENT;
		}
	return 0;
}

int files_orphan_master(struct files_rst_ctx *fc)
{
	struct rpty *p = find_orphan(fc->st);
	int fd;

	if (!p)
		return -ENOENT;
	if (!fc->defer_paths) {
		fd = fcntl(p->master_fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	fd = fdpass_recv_queued(fc->orphan_sk[0]);
	if (fd < 0)
		pr_err("the restored root did not send the new pty master: %s\n", strerror(-fd));
	return fd;
}

/* Once every task has its fds: the lock and TIOCEXCL, which would stop the opens. */
int files_pty_finish(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	if (fc->pty_sk[0] > 0) {
		int ret = take_tree_masters(fc);

		if (ret)
			return ret;
	}

	for (int i = 0; i < fr->nr_ptys; i++) {
		struct rpty *p = &fr->ptys[i];
		int on = 1;

		if (!p->master || p->master_fd < 0)
			continue;
		if (p->master->locked && ioctl(p->master_fd, TIOCSPTLCK, &on))
			return -errno;
		if (p->slave && p->slave->exclusive) {
			int s = open_peer(p->master_fd, O_RDWR);

			if (s < 0)
				return s;
			if (ioctl(s, TIOCEXCL))
				on = -errno;
			close(s);
			if (on < 0)
				return on;
		}
	}
	return 0;
}

/*
 * In restored task @pid, once its fds are in place: a session leader takes
 * its pty back as controlling terminal, and gives it its foreground group
 * once that group exists (its leader may be a child still starting).
 */
int files_pty_restore_ctty(struct files_rst_ctx *fc, pid_t pid)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; fr && i < fr->nr_ptys; i++) {
		struct rpty *p = &fr->ptys[i];
		pid_t pgrp;
		int fd, ret = 0;

		if (!p->slave || p->slave->sid != (uint32_t)pid || p->master_fd < 0)
			continue;
		fd = open_peer(p->master_fd, O_RDWR);
		if (fd < 0)
			return fd;
		if (ioctl(fd, TIOCSCTTY, 0))
			ret = -errno;
		pgrp = p->slave->pgrp;
		for (int j = 0; !ret && pgrp && pgrp != pid && j < 5000; j++) {
			struct timespec ms = {0, 1000000};

			if (kill(-pgrp, 0) == 0 || errno == EPERM)
				break;
			nanosleep(&ms, NULL);
		}
		if (!ret && pgrp && ioctl(fd, TIOCSPGRP, &pgrp))
			ret = -errno;
		close(fd);
		if (ret) {
			pr_err("/dev/pts/%u: can't make it the terminal of session %d (group %d): "
			       "%s\n",
			       p->index, pid, pgrp, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

void files_pty_rst_free(struct files_rst *fr)
{
	for (int i = 0; i < fr->nr_ptys; i++) {
		files_close_fd(&fr->ptys[i].master_fd);
		if (fr->ptys[i].to_master)
			protobuf_c_message_free_unpacked(&fr->ptys[i].to_master->base, NULL);
		if (fr->ptys[i].to_slave)
			protobuf_c_message_free_unpacked(&fr->ptys[i].to_slave->base, NULL);
	}
	free(fr->ptys);
	fr->ptys = NULL;
	for (int i = 0; i < fr->nr_tty_infos; i++)
		protobuf_c_message_free_unpacked(&fr->tty_infos[i]->base, NULL);
	free(fr->tty_infos);
	fr->tty_infos = NULL;
}
