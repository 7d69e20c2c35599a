// SPDX-License-Identifier: MIT
/*
 * The TCP connections of a frozen tree, for the network lock: every TCP
 * socket of its network namespace that has a peer (sock_diag, IPv4 and
 * IPv6, any state but listen, close and time-wait), kept if a task of
 * the tree holds it by an fd (matched by inode). The fd tables are read
 * first: a tree holding no socket spares the sock_diag dumps, each a
 * walk of the kernel's whole TCP hash tables (about a millisecond here).
 */
#define LOG_PREFIX "netlock: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sock_diag.h"
#include "base/util.h"
#include "net/net_internal.h"

/* The kernel's TCP states (include/net/tcp_states.h). */
enum {
	TCP_ST_ESTABLISHED = 1,
	TCP_ST_SYN_SENT,
	TCP_ST_SYN_RECV,
	TCP_ST_FIN_WAIT1,
	TCP_ST_FIN_WAIT2,
	TCP_ST_TIME_WAIT,
	TCP_ST_CLOSE,
	TCP_ST_CLOSE_WAIT,
	TCP_ST_LAST_ACK,
	TCP_ST_LISTEN,
	TCP_ST_CLOSING,
};

#define CONN_STATES                                                                          \
	(1u << TCP_ST_ESTABLISHED | 1u << TCP_ST_SYN_SENT | 1u << TCP_ST_SYN_RECV |           \
	 1u << TCP_ST_FIN_WAIT1 | 1u << TCP_ST_FIN_WAIT2 | 1u << TCP_ST_CLOSE_WAIT |          \
	 1u << TCP_ST_LAST_ACK | 1u << TCP_ST_CLOSING)

/* A socket sock_diag reported, before it is matched to the tree. */
struct diag_sk {
	uint32_t ino;
	struct netlock_conn c;
};

struct diag_list {
	struct diag_sk *v;
	size_t nr, cap;
};

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* IPv4 packets carry a v4-mapped IPv6 socket's traffic: lock it as IPv4. */
static void conn_from_diag(struct netlock_conn *c, const struct inet_diag_msg *m)
{
	const struct inet_diag_sockid *id = &m->id;

	memset(c, 0, sizeof(*c));
	c->family = m->idiag_family;
	c->lport = ntohs(id->idiag_sport);
	c->rport = ntohs(id->idiag_dport);
	if (c->family == AF_INET6 && !memcmp(id->idiag_src, v4mapped_prefix, 12) &&
	    !memcmp(id->idiag_dst, v4mapped_prefix, 12)) {
		c->family = AF_INET;
		memcpy(c->laddr, (const uint8_t *)id->idiag_src + 12, 4);
		memcpy(c->raddr, (const uint8_t *)id->idiag_dst + 12, 4);
		return;
	}
	memcpy(c->laddr, id->idiag_src, c->family == AF_INET ? 4 : 16);
	memcpy(c->raddr, id->idiag_dst, c->family == AF_INET ? 4 : 16);
}

static int diag_add(struct diag_list *l, const struct inet_diag_msg *m)
{
	if (!m->idiag_inode)
		return 0; /* a request or orphan: no fd holds it */
	if (array_make_room(l->v, l->nr, l->cap, 64))
		return -ENOMEM;
	l->v[l->nr].ino = m->idiag_inode;
	conn_from_diag(&l->v[l->nr].c, m);
	l->nr++;
	return 0;
}

static int diag_each(const struct nlmsghdr *h, void *arg)
{
	return diag_add(arg, NLMSG_DATA(h));
}

static int diag_dump(struct sock_diag *sd, int family, struct diag_list *l)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = CONN_STATES,
	};

	return sock_diag_request(sd, &req, sizeof(req), true, diag_each, l);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Appends the socket inodes of @pid's fds to *@inos. */
static int task_socket_inodes(pid_t pid, uint32_t **inos, size_t *nr, size_t *cap)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		pr_perror("can't read the fds of %d", pid);
		return -errno;
	}
	while (!ret && (de = readdir(d))) {
		char link[64];
		unsigned long ino;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n < 0)
			continue; /* closed since readdir: the tree is frozen, so not ours */
		link[n] = 0;
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		ret = array_make_room(*inos, *nr, *cap, 256);
		if (ret)
			break;
		(*inos)[(*nr)++] = ino;
	}
	closedir(d);
	return ret;
}

/* Orders a connection's two ends, so both ends in the tree are one entry. */
static void conn_canonical(struct netlock_conn *c)
{
	size_t n = c->family == AF_INET ? 4 : 16;
	int d = memcmp(c->laddr, c->raddr, n);
	uint8_t a[16];
	uint16_t p;

	if (d < 0 || (d == 0 && c->lport <= c->rport))
		return;
	memcpy(a, c->laddr, 16);
	memcpy(c->laddr, c->raddr, 16);
	memcpy(c->raddr, a, 16);
	p = c->lport;
	c->lport = c->rport;
	c->rport = p;
}

static int cmp_conn(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct netlock_conn));
}

/* Keeps the sockets of @l whose inode is in @inos, each connection once. */
static int conns_of_tree(struct netlock *nl, struct diag_list *l, uint32_t *inos, size_t nr)
{
	size_t n = 0;

	qsort(inos, nr, sizeof(*inos), cmp_u32);
	nl->conns = calloc(l->nr, sizeof(*nl->conns));
	if (!nl->conns)
		return -ENOMEM;
	for (size_t i = 0; i < l->nr; i++) {
		if (!bsearch(&l->v[i].ino, inos, nr, sizeof(*inos), cmp_u32))
			continue;
		nl->conns[n] = l->v[i].c;
		conn_canonical(&nl->conns[n++]);
	}
	qsort(nl->conns, n, sizeof(*nl->conns), cmp_conn);
	nl->nr_conns = 0;
	for (size_t i = 0; i < n; i++)
		if (!nl->nr_conns || cmp_conn(&nl->conns[nl->nr_conns - 1], &nl->conns[i]))
			nl->conns[nl->nr_conns++] = nl->conns[i];
	return 0;
}

int netlock_find_conns(struct netlock *nl, const pid_t *pids, int nr_pids)
{
	struct diag_list l = { 0 };
	cleanup_free uint32_t *inos = NULL;
	size_t nr = 0, cap = 0;
	struct sock_diag sd = {};
	int ret = 0;

	nl->nr_conns = 0;
	for (int i = 0; i < nr_pids && !ret; i++)
		ret = task_socket_inodes(pids[i], &inos, &nr, &cap);
	if (ret || !nr)
		return ret; /* no socket: spare the walk of the kernel's TCP tables */
	ret = diag_dump(&sd, AF_INET, &l);
	if (!ret)
		ret = diag_dump(&sd, AF_INET6, &l);
	sock_diag_close(&sd);
	if (ret)
		pr_err("sock_diag of the TCP sockets failed: %s\n", strerror(-ret));
	else if (l.nr)
		ret = conns_of_tree(nl, &l, inos, nr);
	free(l.v);
	return ret;
}
