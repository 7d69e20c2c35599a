// SPDX-License-Identifier: MIT
/* The request loop of `amber swrk FD`: one request, one reply. */
#define LOG_PREFIX "rpc: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amber.h"
#include "base/fdpass.h"
#include "base/log.h"
#include "base/util.h"
#include "rpc/rpc.h"

#define ERR(s, ...) snprintf((s)->err, sizeof((s)->err), __VA_ARGS__)


/* @resp in one packet; @fd >= 0 goes with it (SCM_RIGHTS). */
static int send_resp_fd(struct rpc_session *s, const CriuResp *resp, int fd)
{
	size_t len = criu_resp__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	criu_resp__pack(resp, buf);
	n = fdpass_send(s->sk, buf, len, fd);
	free(buf);
	if (n < 0) {
		pr_err("can't send the reply: %s\n", strerror(-n));
		return n;
	}
	return 0;
}

static int send_resp(struct rpc_session *s, const CriuResp *resp)
{
	return send_resp_fd(s, resp, -1);
}

/* One packet into *@buf (malloc'd): its length, 0 at EOF, or -errno. */
static ssize_t recv_packet(struct rpc_session *s, uint8_t **buf)
{
	ssize_t len, n;

	*buf = NULL;
	len = recv(s->sk, NULL, 0, MSG_PEEK | MSG_TRUNC);
	if (len < 0)
		return -errno;
	if (len == 0)
		return 0; /* EOF; an empty packet reads the same and ends the session too */
	if ((size_t)len > RPC_MAX_MSG) {
		uint8_t c;
		if (recv(s->sk, &c, 1, 0) < 0) /* drop it */
			return -errno;
		ERR(s, "request of %zd bytes, more than amber reads (%u)", len, RPC_MAX_MSG);
		return -E2BIG;
	}
	*buf = malloc(len);
	if (!*buf)
		return -ENOMEM;
	n = recv(s->sk, *buf, len, 0);
	if (n < 0) {
		free(*buf);
		*buf = NULL;
		return -errno;
	}
	return n;
}

static int send_error(struct rpc_session *s, CriuReqType type, int err)
{
	CriuResp resp = CRIU_RESP__INIT;
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&criu_req_type__descriptor, type);

	resp.type = type;
	resp.success = false;
	resp.has_cr_errno = true;
	resp.cr_errno = -err;
	resp.cr_errmsg = s->err[0] ? s->err : strerror(-err);
	pr_err("%s request failed: %s\n", v ? v->name : "unknown", resp.cr_errmsg);
	return send_resp(s, &resp);
}

/*
 * A NOTIFY callback (opts.notify_scripts): the caller runs its hook
 * @script and answers with a NOTIFY request; 0 if it says it succeeded.
 */
static int notify_fd(struct rpc_session *s, const CriuOpts *o, const char *script, pid_t pid,
		     int fd)
{
	CriuResp resp = CRIU_RESP__INIT;
	CriuNotify n = CRIU_NOTIFY__INIT;
	CriuReq *reply;
	uint8_t *buf;
	ssize_t len;
	int ret;

	if (!o->notify_scripts)
		return 0;
	n.script = (char *)script;
	n.has_pid = pid > 0;
	n.pid = pid;
	resp.type = CRIU_REQ_TYPE__NOTIFY;
	resp.success = true;
	resp.notify = &n;
	ret = send_resp_fd(s, &resp, fd);
	if (ret)
		return ret;
	len = recv_packet(s, &buf);
	if (len <= 0) {
		ERR(s, "the caller went away during the %s notification", script);
		return len ? (int)len : -EPIPE;
	}
	ret = rpc_parse_req(s, buf, len, &reply);
	free(buf);
	if (ret)
		return ret;
	if (reply->type != CRIU_REQ_TYPE__NOTIFY)
		ERR(s, "the caller answered the %s notification with request %d", script, reply->type), ret = -EBADMSG;
	else if (!reply->notify_success)
		ERR(s, "the caller's %s hook failed", script), ret = -ECANCELED;
	criu_req__free_unpacked(reply, NULL);
	return ret;
}

static int notify(struct rpc_session *s, const CriuOpts *o, const char *script, pid_t pid)
{
	return notify_fd(s, o, script, pid, -1);
}

/* The caller's fd @fd as a path of ours (CRIU's way: /proc/PID/fd/FD). */
static int caller_dir(struct rpc_session *s, int fd, char *path, size_t len, const char *what)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", s->caller, fd);
	n = readlink(proc, path, len - 1);
	if (n < 0 || path[0] != '/') {
		ERR(s, "%s %d: the caller (pid %d) has no such directory fd", what, fd, s->caller);
		return -EBADF;
	}
	path[n] = 0;
	return 0;
}

struct rpc_dirs {
	char images[PATH_MAX];
	char work[PATH_MAX];
};

/* Images and work directories, and the log the request asks for. */
static int open_dirs(struct rpc_session *s, const CriuOpts *o, struct rpc_dirs *d)
{
	char log[PATH_MAX * 2];
	int ret;

	ret = caller_dir(s, o->images_dir_fd, d->images, sizeof(d->images), "images_dir_fd");
	if (ret)
		return ret;
	if (o->has_work_dir_fd) {
		ret = caller_dir(s, o->work_dir_fd, d->work, sizeof(d->work), "work_dir_fd");
		if (ret)
			return ret;
	} else {
		memcpy(d->work, d->images, sizeof(d->work));
	}
	if (o->log_file && o->log_file[0]) {
		if (strchr(o->log_file, '/')) {
			ERR(s, "log_file %s: a name inside the work directory, as CRIU's", o->log_file);
			return -EINVAL;
		}
		snprintf(log, sizeof(log), "%s/%s", d->work, o->log_file);
		ret = amber_log_open(log, o->has_log_level ? o->log_level : AMBER_LOG_WARN, 0);
		if (ret) {
			ERR(s, "can't open log %.160s: %s", log, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void fill_ps(struct amber_ps_endpoint *ep, const CriuOpts *o)
{
	if (o->ps) {
		ep->address = o->ps->address;
		ep->port = o->ps->has_port ? o->ps->port : 0;
	}
	ep->tls = o->tls;
	ep->tls_cacert = o->tls_cacert;
	ep->tls_cert = o->tls_cert;
	ep->tls_key = o->tls_key;
	ep->tls_no_cn_verify = o->tls_no_cn_verify;
}

/* Unset: amber's default (nftables, else iptables), as on its command line. */
static enum amber_network_lock network_lock_from(const CriuOpts *o)
{
	if (!o->has_network_lock)
		return AMBER_NETWORK_LOCK_DEFAULT;
	return o->network_lock == CRIU_NETWORK_LOCK_METHOD__NFTABLES ? AMBER_NETWORK_LOCK_NFTABLES
								     : AMBER_NETWORK_LOCK_IPTABLES;
}

/*
 * The mounts named from outside: ext_mnt pairs and `external` entries
 * "mnt[KEY]:VAL" (CRIU's --external); other external kinds are refused.
 * *@out is malloc'd (the strings stay the request's).
 */
static int ext_mounts_from(struct rpc_session *s, const CriuOpts *o, struct amber_ext_mount **out,
			   size_t *nr)
{
	struct amber_ext_mount *m = calloc(o->n_ext_mnt + o->n_external + 1, sizeof(*m));
	size_t n = 0;

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_ext_mnt; i++) {
		m[n].key = o->ext_mnt[i]->key;
		m[n++].val = o->ext_mnt[i]->val;
		pr_info("external mount %s: %s\n", o->ext_mnt[i]->key, o->ext_mnt[i]->val);
	}
	for (size_t i = 0; i < o->n_external; i++) {
		char *e = o->external[i], *close = strstr(e, "]:");

		if (!strncmp(e, "veth[", 5) || !strncmp(e, "net[", 4))
			continue; /* veths_from() at restore, ext_netns_from() at dump */
		if (strncmp(e, "mnt[", 4) || !close) {
			ERR(s, "external %s: amber knows mnt[KEY]:VAL, net[INODE]:KEY and "
			    "veth[IN]:OUT[@BRIDGE] only",
			    e);
			free(m);
			return -EOPNOTSUPP;
		}
		*close = 0; /* the request is ours to change */
		m[n].key = e + 4;
		m[n++].val = close + 2;
	}
	*out = m;
	*nr = n;
	return 0;
}

/*
 * An `external` entry "net[INODE]:KEY" (runc's, for a container whose
 * network namespace a path names; its key "extRootNetNS"): the tree's
 * network namespace is the caller's. The strings stay the request's.
 */
static int ext_netns_from(struct rpc_session *s, const CriuOpts *o, struct amber_dump_opts *d)
{
	for (size_t i = 0; i < o->n_external; i++) {
		const char *e = o->external[i];
		char *end;

		if (strncmp(e, "net[", 4))
			continue;
		d->ext_netns_ino = strtoull(e + 4, &end, 10);
		if (end == e + 4 || strncmp(end, "]:", 2) || !end[2]) {
			ERR(s, "external %s: a network namespace is net[INODE]:KEY", e);
			return -EINVAL;
		}
		d->ext_netns_key = end + 2;
		pr_info("external network namespace %" PRIu64 ": key %s\n", d->ext_netns_ino,
			d->ext_netns_key);
	}
	return 0;
}

/*
 * The host ends of the tree's veths: veths pairs (if_in, if_out) and
 * `external` entries "veth[IN]:OUT[@BRIDGE]" (CRIU's --external). *@out
 * is malloc'd; the strings stay the request's, changed in place.
 */
static int veths_from(struct rpc_session *s, const CriuOpts *o, struct amber_veth **out,
		      size_t *nr)
{
	struct amber_veth *v = calloc(o->n_veths + o->n_external + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_veths; i++)
		v[n++] = (struct amber_veth){ .in = o->veths[i]->if_in, .out = o->veths[i]->if_out };
	for (size_t i = 0; i < o->n_external; i++) {
		char *e = o->external[i], *close = strstr(e, "]:"), *br;

		if (strncmp(e, "veth[", 5))
			continue;
		if (!close || close == e + 5 || !close[2]) {
			ERR(s, "external %s: a veth is veth[IN]:OUT[@BRIDGE]", e);
			free(v);
			return -EINVAL;
		}
		*close = 0;
		br = strchr(close + 2, '@');
		if (br)
			*br++ = 0;
		v[n++] = (struct amber_veth){ .in = e + 5, .out = close + 2, .bridge = br };
	}
	for (size_t i = 0; i < n; i++)
		pr_info("veth %s: its host end is %s%s%s\n", v[i].in, v[i].out,
			v[i].bridge ? " on bridge " : "", v[i].bridge ? v[i].bridge : "");
	*out = v;
	*nr = n;
	return 0;
}

static enum amber_manage_cgroups cg_mode_from(const CriuOpts *o)
{
	static const char *const names[] = { "ignore", "none", "props", "soft", "full",
					     "strict", "default" };

	if (!o->has_manage_cgroups_mode)
		return AMBER_CGROUPS_DEFAULT;
	pr_info("manage_cgroups_mode %s\n", (unsigned)o->manage_cgroups_mode < ARRAY_SIZE(names) ?
					       names[o->manage_cgroups_mode] : "unknown: soft");
	switch (o->manage_cgroups_mode) {
	case CRIU_CG_MODE__IGNORE:
		return AMBER_CGROUPS_IGNORE;
	case CRIU_CG_MODE__CG_NONE:
		return AMBER_CGROUPS_NONE;
	case CRIU_CG_MODE__PROPS:
		return AMBER_CGROUPS_PROPS;
	case CRIU_CG_MODE__FULL:
		return AMBER_CGROUPS_FULL;
	case CRIU_CG_MODE__STRICT:
		return AMBER_CGROUPS_STRICT;
	default:
		return AMBER_CGROUPS_SOFT;
	}
}

/*
 * empty_ns: a namespace the caller makes itself (runc: a network one it
 * configured). Only CLONE_NEWNET, as CRIU.
 */
static int check_empty_ns(struct rpc_session *s, const CriuOpts *o)
{
	if (o->has_empty_ns && o->empty_ns)
		pr_info("empty_ns %#x: the caller's to fill\n", o->empty_ns);
	if (o->has_empty_ns && (o->empty_ns & ~(uint32_t)CLONE_NEWNET)) {
		ERR(s, "empty_ns %#x: only the network namespace (%#x) can be left empty",
		    o->empty_ns, CLONE_NEWNET);
		return -EOPNOTSUPP;
	}
	return 0;
}

struct lazy_ready {
	struct rpc_session *s;
	const CriuOpts *o;
	pid_t pid;
};

/* dump --lazy-pages is serving: runc (CRIU 3.15 on) waits for this notification. */
static int notify_status_ready(void *arg)
{
	struct lazy_ready *r = arg;

	return notify(r->s, r->o, "status-ready", r->pid);
}

static int do_dump(struct rpc_session *s, const CriuReq *req, CriuResp *resp,
		        const struct rpc_dirs *dirs)
{
	const CriuOpts *o = req->opts;
	AMBER_OPTS(amber_dump_opts, d);
	struct lazy_ready ready = { s, o, 0 };
	bool pre = req->type == CRIU_REQ_TYPE__PRE_DUMP;
	cleanup_free struct amber_ext_mount *ext = NULL;
	struct amber_dump_stats stats = { 0 };
	int ret;

	d.pid = o->has_pid ? o->pid : s->caller;
	d.images_dir = dirs->images;
	d.leave_running = o->leave_running;
	d.shell_job = o->shell_job;
	d.orphan_pts_master = o->orphan_pts_master;
	d.ext_unix_sk = o->ext_unix_sk;
	d.file_locks = o->file_locks;
	d.tcp_established = o->tcp_established;
	d.skip_in_flight = o->tcp_skip_in_flight;
	d.network_lock = network_lock_from(o);
	d.track_mem = o->track_mem ? "auto" : NULL;
	d.prev_images_dir = o->parent_img;
	d.auto_dedup = o->auto_dedup;
	d.pre_dump_mode = o->has_pre_dump_mode && o->pre_dump_mode == CRIU_PRE_DUMP_MODE__VM_READ
				  ? AMBER_PRE_DUMP_READ
				  : AMBER_PRE_DUMP_SPLICE;
	ret = check_empty_ns(s, o);
	if (ret)
		return ret;
	ret = ext_mounts_from(s, o, &ext, &d.nr_ext_mounts);
	if (ret)
		return ret;
	d.ext_mounts = ext;
	ret = ext_netns_from(s, o, &d);
	if (ret)
		return ret;
	d.manage_cgroups = cg_mode_from(o);
	d.freeze_cgroup = o->freeze_cgroup;
	if (o->lazy_pages && !pre) {
		/* dump --lazy-pages: opts.ps is where it serves, not a server to send to */
		d.lazy_pages = true;
		d.status_fd = o->has_status_fd ? o->status_fd : 0;
		d.lazy_ready = notify_status_ready;
		d.lazy_ready_arg = &ready;
		ready.pid = d.pid;
		if (o->ps)
			fill_ps(&d.ps, o);
		else
			d.ps.port = 0;
	} else if (o->ps) {
		d.page_server = true;
		fill_ps(&d.ps, o);
		if (!d.ps.address || d.ps.port <= 0) {
			ERR(s, "opts.ps needs an address and a port");
			return -EINVAL;
		}
	}
	ret = notify(s, o, "pre-dump", d.pid);
	if (ret)
		return ret;
	d.stats = &stats;
	ret = pre ? amber_pre_dump(&d) : amber_dump(&d);
	if (ret) {
		ERR(s, "%s of pid %d failed: %s (the log says why)", pre ? "pre-dump" : "dump",
		    d.pid, strerror(-ret));
		return ret;
	}
	/* a pre-dump's too: podman reads it back after -P --print-stats */
	rpc_write_dump_stats(dirs->work, &stats);
	ret = notify(s, o, "post-dump", d.pid);
	if (ret)
		return ret;
	if (!pre) {
		static CriuDumpResp dr = CRIU_DUMP_RESP__INIT;
		resp->dump = &dr;
	}
	return 0;
}

struct restore_hook {
	struct rpc_session *s;
	const CriuOpts *o;
};

/* amber_restore()'s stages, passed on as CRIU's notifications. */
static int restore_notify(void *arg, const char *stage, pid_t pid)
{
	struct restore_hook *h = arg;

	return notify(h->s, h->o, stage, pid);
}

/* The container's new terminal master, in CRIU's "orphan-pts-master" notification. */
static int restore_orphan_pts(void *arg, int master_fd)
{
	struct restore_hook *h = arg;

	return notify_fd(h->s, h->o, "orphan-pts-master", 0, master_fd);
}

static int do_restore(struct rpc_session *s, const CriuReq *req, CriuResp *resp,
		           const struct rpc_dirs *dirs)
{
	const CriuOpts *o = req->opts;
	AMBER_OPTS(amber_restore_opts, r, .detach = true);
	static CriuRestoreResp rr = CRIU_RESTORE_RESP__INIT;
	cleanup_free struct amber_ext_mount *ext = NULL;
	cleanup_free struct amber_inherit_fd *inh = NULL;
	cleanup_free struct amber_veth *veths = NULL;
	struct restore_hook hook = { s, o };
	pid_t pid = 0;
	uint64_t t0;
	int ret;

	r.images_dir = dirs->images;
	r.shell_job = o->shell_job;
	r.ext_unix_sk = o->ext_unix_sk;
	r.file_locks = o->file_locks;
	r.tcp_established = o->tcp_established;
	r.tcp_close = o->tcp_close;
	r.network_lock = network_lock_from(o);
	r.lazy_pages = o->lazy_pages;
	ret = check_empty_ns(s, o);
	if (ret)
		return ret;
	ret = ext_mounts_from(s, o, &ext, &r.nr_ext_mounts);
	if (ret)
		return ret;
	r.ext_mounts = ext;
	ret = veths_from(s, o, &veths, &r.nr_veths);
	if (ret)
		return ret;
	r.veths = veths;
	r.root = o->root;
	r.rst_sibling = o->rst_sibling;
	/* The fds are amber's own, as CRIU's: runc hands them over as its stdio. */
	if (o->n_inherit_fd && !s->swrk) {
		ERR(s, "inherit_fd names amber's own fds: swrk only, not a service");
		return -EOPNOTSUPP;
	}
	inh = calloc(o->n_inherit_fd + 1, sizeof(*inh));
	if (!inh)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_inherit_fd; i++) {
		inh[i].key = o->inherit_fd[i]->key;
		inh[i].fd = o->inherit_fd[i]->fd;
		pr_info("inherit_fd %s: fd %d\n", inh[i].key, inh[i].fd);
	}
	r.inherit_fds = inh;
	r.nr_inherit_fds = o->n_inherit_fd;
	r.manage_cgroups = cg_mode_from(o);
	/* runc names one path per controller; on cgroup v2 the unified one matters. */
	for (size_t i = 0; i < o->n_cg_root; i++) {
		pr_info("cgroup root %s: %s\n", o->cg_root[i]->ctrl ? o->cg_root[i]->ctrl : "(all)",
			o->cg_root[i]->path);
		if (!o->cg_root[i]->ctrl || !o->cg_root[i]->ctrl[0] || !r.cgroup_root)
			r.cgroup_root = o->cg_root[i]->path;
	}
	r.notify = restore_notify;
	r.notify_arg = &hook;
	/* Without notifications there is no way to hand the master over: such images are refused. */
	if (o->orphan_pts_master && o->notify_scripts) {
		r.orphan_pts_master = restore_orphan_pts;
		r.orphan_pts_master_arg = &hook;
	}
	ret = notify(s, o, "pre-restore", 0);
	if (ret)
		return ret;
	t0 = mono_ns();
	ret = amber_restore(&r, &pid, NULL);
	if (!ret)
		rpc_write_restore_stats(dirs->work, (mono_ns() - t0) / 1000);
	if (ret) {
		/* A hook's own failure says more than the restore's errno. */
		if (!s->err[0])
			ERR(s, "restore failed: %s (the log says why)", strerror(-ret));
		return ret;
	}
	ret = notify(s, o, "post-resume", pid);
	if (ret) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		return ret;
	}
	rr.pid = pid;
	resp->restore = &rr;
	return 0;
}

/* Where the page server's child says which port it got. */
static int ps_pipe = -1;

static void ps_listening(void *arg, const char *address, int port)
{
	if (write(ps_pipe, &port, sizeof(port)) != sizeof(port))
		_exit(1);
}

static int do_page_server(struct rpc_session *s, const CriuReq *req, CriuResp *resp,
		               const struct rpc_dirs *dirs)
{
	const CriuOpts *o = req->opts;
	AMBER_OPTS(amber_page_server_opts, p, .listening = ps_listening);
	static CriuPageServerInfo info = CRIU_PAGE_SERVER_INFO__INIT;
	int pfd[2], port = 0, ret, st;
	pid_t pid;

	p.images_dir = dirs->images;
	p.prev_images_dir = o->parent_img;
	fill_ps(&p.ps, o);
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (pid == 0) {
		close(pfd[0]);
		close(s->sk);
		ps_pipe = pfd[1];
		_exit(amber_page_server(&p) ? 1 : 0);
	}
	close(pfd[1]);
	if (read(pfd[0], &port, sizeof(port)) != sizeof(port)) {
		close(pfd[0]);
		waitpid(pid, &st, 0);
		ERR(s, "the page server did not start (the log says why)");
		return -ECONNREFUSED;
	}
	close(pfd[0]);
	info.has_pid = info.has_port = true;
	info.pid = pid;
	info.port = port;
	resp->ps = &info;
	return 0;
}

static int do_check(struct rpc_session *s)
{
	static const char *const need[] = { "ptrace-seize", "compel" };
	struct amber_feature f;

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int idx = amber_feature_lookup(need[i]);

		if (idx < 0 || amber_feature_probe(idx, &f) || !f.ok) {
			ERR(s, "kernel feature %s missing: %s", need[i], idx < 0 ? "" : f.detail);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static bool feature_ok(const char *name)
{
	struct amber_feature f;
	int idx = amber_feature_lookup(name);

	return idx >= 0 && !amber_feature_probe(idx, &f) && f.ok;
}

static int do_feature_check(struct rpc_session *s, const CriuReq *req, CriuResp *resp)
{
	static CriuFeatures f = CRIU_FEATURES__INIT;
	char kind[32], why[256];

	if (!req->features) {
		ERR(s, "FEATURE_CHECK without features");
		return -EINVAL;
	}
	if (req->features->has_mem_track) {
		f.has_mem_track = true;
		f.mem_track = !amber_track_mem_auto(kind, sizeof(kind), why, sizeof(why)) &&
			      strcmp(kind, "nothing");
	}
	if (req->features->has_lazy_pages) {
		f.has_lazy_pages = true;
		f.lazy_pages = feature_ok("uffd") && feature_ok("uffd-events");
	}
	if (req->features->has_pidfd_store) {
		/* amber does not keep pidfds across pre-dumps (pidfd_store_sk). */
		f.has_pidfd_store = true;
		f.pidfd_store = false;
	}
	resp->features = &f;
	return 0;
}

static int do_wait_pid(struct rpc_session *s, const CriuReq *req, CriuResp *resp)
{
	int st;

	if (!req->has_pid || waitpid(req->pid, &st, 0) < 0) {
		ERR(s, "WAIT_PID %u: not a child of amber's", req->has_pid ? req->pid : 0);
		return -ECHILD;
	}
	resp->has_status = true;
	resp->status = st;
	return 0;
}

static int handle(struct rpc_session *s, const CriuReq *req)
{
	static CriuVersion ver = CRIU_VERSION__INIT;
	CriuResp resp = CRIU_RESP__INIT;
	struct rpc_dirs dirs;
	int ret = 0;

	resp.type = req->type;
	switch (req->type) {
	case CRIU_REQ_TYPE__DUMP:
	case CRIU_REQ_TYPE__PRE_DUMP:
	case CRIU_REQ_TYPE__RESTORE:
	case CRIU_REQ_TYPE__PAGE_SERVER:
		if (!req->opts) {
			ERR(s, "request %d without opts", req->type);
			ret = -EINVAL;
			break;
		}
		/* The log first: runc shows the log file, not cr_errmsg. */
		ret = open_dirs(s, req->opts, &dirs);
		if (!ret)
			ret = rpc_check_opts(s, req);
		if (ret)
			break;
		if (req->type == CRIU_REQ_TYPE__RESTORE)
			ret = do_restore(s, req, &resp, &dirs);
		else if (req->type == CRIU_REQ_TYPE__PAGE_SERVER)
			ret = do_page_server(s, req, &resp, &dirs);
		else
			ret = do_dump(s, req, &resp, &dirs);
		break;
	case CRIU_REQ_TYPE__CHECK:
		ret = do_check(s);
		break;
	case CRIU_REQ_TYPE__FEATURE_CHECK:
		ret = do_feature_check(s, req, &resp);
		break;
	case CRIU_REQ_TYPE__VERSION:
		ver.major_number = RPC_CRIU_MAJOR;
		ver.minor_number = RPC_CRIU_MINOR;
		ver.has_sublevel = true;
		ver.sublevel = 0;
		ver.name = "amber";
		resp.version = &ver;
		break;
	case CRIU_REQ_TYPE__WAIT_PID:
		ret = do_wait_pid(s, req, &resp);
		break;
	default:
		ERR(s, "request type %d is not supported by amber", req->type);
		ret = -EOPNOTSUPP;
	}
	if (ret) {
		ret = send_error(s, req->type, ret);
	} else {
		resp.success = true;
		ret = send_resp(s, &resp);
	}
	amber_log_open(NULL, AMBER_LOG_WARN, 0);
	return ret;
}

int rpc_serve(int sk, bool swrk)
{
	struct rpc_session s = { .sk = sk, .swrk = swrk };
	struct ucred cr;
	socklen_t crl = sizeof(cr);

	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &crl)) {
		pr_perror("fd %d is not the caller's socket", sk);
		return -errno;
	}
	s.caller = cr.pid;
	s.caller_uid = cr.uid;
	for (;;) {
		CriuReq *req;
		uint8_t *buf;
		ssize_t len;
		int ret;

		s.err[0] = 0;
		len = recv_packet(&s, &buf);
		if (len == 0)
			return 0;
		if (len < 0) {
			if (len != -E2BIG)
				return (int)len;
			if (send_error(&s, CRIU_REQ_TYPE__EMPTY, (int)len))
				return -EPIPE;
			continue;
		}
		ret = rpc_parse_req(&s, buf, len, &req);
		free(buf);
		if (ret) {
			if (send_error(&s, CRIU_REQ_TYPE__EMPTY, ret))
				return -EPIPE;
			continue;
		}
		ret = handle(&s, req);
		criu_req__free_unpacked(req, NULL);
		if (ret)
			return ret;
	}
}
