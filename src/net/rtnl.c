// SPDX-License-Identifier: MIT
/* Raw rtnetlink requests and dumps (rtnl.h). */
#define LOG_PREFIX "rtnl: "
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "net/rtnl.h"

int rtnl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int one = 1;

	if (fd < 0) {
		pr_perror("can't open an rtnetlink socket");
		return -errno;
	}
	/* The kernel's error says which attribute it did not like. */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	return fd;
}

static uint32_t next_seq(void)
{
	static uint32_t seq;

	return ++seq;
}

int rtnl_dump(int fd, int type, int family,
	      int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = type,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = next_seq() },
		.g = { .rtgen_family = family },
	};
	static long buf[8192];
	int ret = 0;
	ssize_t n;

	if (send(fd, &req, sizeof(req), 0) != sizeof(req))
		return -errno;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != req.h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return ret;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -EIO;
			}
			/* After @each stopped, read on to NLMSG_DONE: the socket is reused. */
			if (!ret)
				ret = each(h, arg);
		}
	}
	return n < 0 ? -errno : -EIO;
}

int rtnl_talk_cb(int fd, struct rtnl_msg *m, int (*each)(const struct nlmsghdr *h, void *arg),
		 void *arg)
{
	long buf[1024];
	ssize_t n;

	m->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	m->h.nlmsg_seq = next_seq();
	if (send(fd, m->buf, m->h.nlmsg_len, 0) != (ssize_t)m->h.nlmsg_len)
		return -errno;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_seq != m->h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				return e->error;
			if (each)
				each(h, arg);
		}
	}
	return n < 0 ? -errno : -EIO;
}

int rtnl_talk(int fd, struct rtnl_msg *m)
{
	return rtnl_talk_cb(fd, m, NULL, NULL);
}

void *rtnl_msg_init(struct rtnl_msg *m, int type, int flags, size_t hdr_len)
{
	memset(m, 0, NLMSG_SPACE(hdr_len));
	m->h.nlmsg_len = NLMSG_LENGTH(hdr_len);
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = flags;
	return NLMSG_DATA(&m->h);
}

struct rtattr *rtnl_put(struct rtnl_msg *m, int type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(m->h.nlmsg_len);
	struct rtattr *a = (void *)(m->buf + at);

	if (at + RTA_SPACE(len) > sizeof(m->buf))
		return NULL;
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	m->h.nlmsg_len = at + RTA_SPACE(len);
	return a;
}

void rtnl_nest_end(struct rtnl_msg *m, struct rtattr *start)
{
	start->rta_len = m->buf + m->h.nlmsg_len - (char *)start;
}

void rtnl_parse(struct rtattr **tb, int max, struct rtattr *rta, int len)
{
	memset(tb, 0, sizeof(*tb) * (max + 1));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= max)
			tb[rta->rta_type] = rta;
}
