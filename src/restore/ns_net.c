// SPDX-License-Identifier: MIT
/* The tree's own network namespace: a new one with its loopback as saved. */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "image/image.h"
#include "restore/ns.h"
#include "restore/restore.h"
#include "netdev.pb-c.h"

int rst_ns_load_net(struct rst_ctx *rc, uint32_t id)
{
	struct img *img = img_open(rc->dirfd, IMG_NETDEV, false, id);
	NetDeviceEntry *nd;
	int ret;

	if (!img) {
		pr_err("netdev-%u.img (named by core-%d.img) can't be read\n", id, rc->tasks[0].pid);
		return -errno ? -errno : -EINVAL;
	}
	while ((ret = img_read_msg(img, &net_device_entry__descriptor,
				   (ProtobufCMessage **)&nd)) == 1) {
		if (nd->type != ND_TYPE__LOOPBACK || strcmp(nd->name, "lo") || rc->ns.lo) {
			pr_err("netdev-%u.img: link %s (type %d): only one loopback is "
			       "supported\n", id, nd->name, nd->type);
			net_device_entry__free_unpacked(nd, NULL);
			ret = -EINVAL;
			break;
		}
		rc->ns.lo = nd;
	}
	if (!ret && !rc->ns.lo) {
		pr_err("netdev-%u.img: no loopback\n", id);
		ret = -EINVAL;
	}
	img_close(img);
	return ret;
}

/* In the restored root: a new network namespace, its lo as it was. */
int rst_ns_enter_net(struct rst_ctx *rc)
{
	const NetDeviceEntry *lo = rc->ns.lo;
	struct ifreq ifr = { .ifr_name = "lo" };
	int sk, ret = 0;

	if (unshare(CLONE_NEWNET))
		return -errno;
	sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	ifr.ifr_mtu = lo->mtu;
	if (ioctl(sk, SIOCSIFMTU, &ifr) < 0)
		ret = -errno;
	/* The kernel gives lo its 127.0.0.1 and ::1 as it comes up. */
	if (!ret && (lo->flags & IFF_UP)) {
		if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0) {
			ret = -errno;
		} else {
			ifr.ifr_flags |= IFF_UP;
			if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
				ret = -errno;
		}
	}
	close(sk);
	return ret;
}
