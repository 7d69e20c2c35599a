// SPDX-License-Identifier: MIT
/*
 * The network lock's life (netlock.h): choose the backend, find the
 * tree's connections, record them, lock; and unlock, from a dump that
 * failed, a restore, or `amber net-unlock`.
 */
#define LOG_PREFIX "netlock: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/netns.h"
#include "base/proc.h"
#include "base/util.h"
#include "image/image.h"
#include "inventory.pb-c.h"
#include "net/net_internal.h"

static const struct netlock_backend *backend_of(enum netlock_method m)
{
	return m == NETLOCK_NFTABLES ? &netlock_nftables :
	       m == NETLOCK_IPTABLES ? &netlock_iptables : NULL;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int netns_ino(uint64_t *ino)
{
	*ino = netns_self_ino();
	if (!*ino) {
		pr_perror("can't stat /proc/thread-self/ns/net");
		return -errno;
	}
	return 0;
}

static int read_boot_id(char *buf, size_t len)
{
	cleanup_free char *s = read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", NULL);

	if (!s) {
		pr_perror("can't read the boot id");
		return -errno;
	}
	s[strcspn(s, "\n")] = 0;
	snprintf(buf, len, "%s", s);
	return 0;
}

/* Where the lock lives, and the run id that names it. */
static int netlock_ids(struct netlock *nl)
{
	uint8_t r[8];
	int ret;

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		pr_perror("getrandom");
		return -errno;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(nl->run_id + 2 * i, 3, "%02x", r[i]);
	ret = netns_ino(&nl->netns);
	if (!ret)
		ret = read_boot_id(nl->boot_id, sizeof(nl->boot_id));
	return ret;
}

/* Is the lock of @nl here (this boot, this network namespace)? */
static bool lock_is_here(const struct netlock *nl)
{
	char boot[40];
	uint64_t ns;

	if (!nl->from_record)
		return true; /* CRIU's images say nothing of where: try here, as CRIU does */
	if (read_boot_id(boot, sizeof(boot)) || netns_ino(&ns))
		return true;
	if (strcmp(boot, nl->boot_id)) {
		pr_warn("the network lock of these images was taken before the last boot: it "
			"is gone\n");
		return false;
	}
	if (ns != nl->netns && nl->tree_netns) {
		pr_warn("the network lock of these images is in the tree's own network namespace "
			"net:[%" PRIu64 "]: gone with it if the tree is, else run amber net-unlock "
			"there (nsenter --net=/proc/PID/ns/net)\n", nl->netns);
		return false;
	}
	if (ns != nl->netns) {
		pr_warn("the network lock of these images is in network namespace net:[%" PRIu64
			"], not amber's: run amber net-unlock in it (ip netns exec, nsenter)\n",
			nl->netns);
		return false;
	}
	return true;
}

static void forget_record(int dirfd)
{
	if (dirfd >= 0 && unlinkat(dirfd, NETLOCK_RECORD, 0) && errno != ENOENT)
		pr_debug("%s stays: %s\n", NETLOCK_RECORD, strerror(errno));
}

int netlock_unlock(struct netlock *nl, int dirfd)
{
	const struct netlock_backend *be = backend_of(nl->method);
	struct timespec t0;
	int ret;

	if (!nl->locked || !be)
		return 0;
	if (!lock_is_here(nl)) {
		nl->locked = false;
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = be->unlock(nl);
	if (ret) {
		pr_err("can't remove the network lock (%s): its connections stay blocked; "
		       "amber net-unlock -D DIR retries\n", be->name);
		return ret;
	}
	nl->locked = false;
	if (nl->from_record)
		forget_record(dirfd);
	pr_info("network unlocked (%s, %zu connection(s)) in %.3f ms\n", be->name, nl->nr_conns,
		ms_since(&t0));
	return 0;
}

/*
 * A record an earlier dump left here: its images are being replaced, so
 * its lock goes too. One that can't be read can't be acted on: replaced.
 */
static int unlock_stale(int dirfd)
{
	struct netlock old = { 0 };
	int ret = netlock_record_read(&old, dirfd);

	if (ret == -ENOENT) {
		ret = 0;
	} else if (ret == -EINVAL) {
		pr_warn("an unreadable %s of an earlier dump is replaced\n", NETLOCK_RECORD);
		ret = 0;
	} else if (!ret) {
		pr_warn("%s of an earlier dump into this directory: removing its lock\n",
			NETLOCK_RECORD);
		old.locked = old.from_record = true;
		ret = netlock_unlock(&old, -1);
	}
	if (!ret)
		forget_record(dirfd);
	netlock_free(&old);
	return ret;
}

static int lock_with(struct netlock *nl, int dirfd, enum netlock_method m)
{
	const struct netlock_backend *be = backend_of(m);
	int ret;

	nl->method = m;
	ret = netlock_record_write(nl, dirfd);
	if (ret)
		return ret;
	ret = be->lock(nl);
	if (ret)
		forget_record(dirfd);
	else
		nl->locked = nl->from_record = true;
	return ret;
}

int netlock_relock(struct netlock *nl, bool maybe_held)
{
	const struct netlock_backend *be = backend_of(nl->method);
	int ret;

	if (!nl->locked || !nl->tree_netns || !be)
		return 0;
	ret = maybe_held ? be->lock_again(nl) : be->lock(nl);
	if (ret) {
		pr_err("can't lock the %zu connection(s) of the tree in its new network namespace "
		       "(%s)\n", nl->nr_conns, be->name);
		return ret;
	}
	nl->netns = netns_self_ino();
	pr_info("network locked again in the tree's new network namespace (%s, %zu "
		"connection(s))\n", be->name, nl->nr_conns);
	return 0;
}

int netlock_lock(struct netlock *nl, int dirfd, enum netlock_method method, const pid_t *pids,
		 int nr_pids, bool tree_netns)
{
	struct timespec t0;
	int ret;

	*nl = (struct netlock){ .method = NETLOCK_NONE };
	if (method == NETLOCK_NONE)
		method = NETLOCK_AUTO; /* nothing chosen: the default */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = unlock_stale(dirfd);
	if (ret)
		return ret;
	if (method == NETLOCK_SKIP) {
		nl->method = NETLOCK_SKIP;
		pr_info("network lock: skip (TCP connections are not locked)\n");
		return 0;
	}
	ret = netlock_find_conns(nl, pids, nr_pids);
	if (ret)
		return ret;
	if (!nl->nr_conns) {
		pr_info("network lock: no TCP connection in the tree (%.3f ms)\n", ms_since(&t0));
		return 0;
	}
	/* Say so before nft or iptables-restore fails with their own words. */
	if (!proc_self_has_cap(CAP_NET_ADMIN)) {
		pr_err("%zu TCP connection(s) in the tree: locking the network needs CAP_NET_ADMIN, "
		       "which the caller lacks (--network-lock skip leaves them unlocked)\n",
		       nl->nr_conns);
		return -EPERM;
	}
	ret = netlock_ids(nl);
	if (ret)
		return ret;
	nl->tree_netns = tree_netns;
	if (method == NETLOCK_AUTO) {
		ret = lock_with(nl, dirfd, NETLOCK_NFTABLES);
		if (ret) {
			pr_warn("nftables can't lock here: trying iptables\n");
			ret = lock_with(nl, dirfd, NETLOCK_IPTABLES);
		}
	} else {
		ret = lock_with(nl, dirfd, method);
	}
	if (ret) {
		pr_err("can't lock the network (%s) for %zu TCP connection(s)\n",
		       netlock_method_name(nl->method), nl->nr_conns);
		return ret;
	}
	pr_info("network locked (%s, %zu connection(s)) in %.3f ms\n",
		netlock_method_name(nl->method), nl->nr_conns, ms_since(&t0));
	return 0;
}

/* The nftables lock of a CRIU dump, named by its inventory. */
static int load_inventory(struct netlock *nl, int dirfd)
{
	InventoryEntry *ie = NULL;
	const char *id;
	int ret = 0;

	/*
	 * amber's own dumps (with amber.sums) record their lock in the record
	 * alone; and the inventory is read before its checksum is checked
	 * only when there is none. A missing or bad one is the restore's to
	 * refuse, naming it.
	 */
	if (!faccessat(dirfd, "amber.sums", F_OK, 0) || faccessat(dirfd, "inventory.img", F_OK, 0))
		return 0;
	if (img_read_one(dirfd, IMG_INVENTORY, 0, &inventory_entry__descriptor,
			 (ProtobufCMessage **)&ie))
		return 0;
	id = ie->dump_criu_run_id;
	if (ie->has_network_lock_method &&
	    ie->network_lock_method == netlock_criu_method(NETLOCK_NFTABLES) && id &&
	    *id) {
		if (strspn(id, "0123456789abcdefABCDEF-") != strlen(id) ||
		    strlen(id) >= sizeof(nl->run_id)) {
			pr_err("inventory.img: dump_criu_run_id is not a run id\n");
			ret = -EINVAL;
		} else {
			strcpy(nl->run_id, id);
			nl->method = NETLOCK_NFTABLES;
			nl->locked = true;
		}
	}
	protobuf_c_message_free_unpacked(&ie->base, NULL);
	return ret;
}

int netlock_load(struct netlock *nl, int dirfd)
{
	int ret;

	*nl = (struct netlock){ .method = NETLOCK_NONE };
	ret = netlock_record_read(nl, dirfd);
	if (!ret) {
		nl->locked = nl->from_record = true;
		return 0;
	}
	netlock_free(nl);
	*nl = (struct netlock){ .method = NETLOCK_NONE };
	if (ret != -ENOENT)
		return ret;
	return load_inventory(nl, dirfd);
}

void netlock_free(struct netlock *nl)
{
	free(nl->conns);
	nl->conns = NULL;
	nl->nr_conns = 0;
}

int netlock_unlock_dir(const char *dir)
{
	struct netlock nl;
	cleanup_close int dirfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	int ret;

	if (dirfd < 0) {
		pr_perror("can't open image directory %s", dir);
		return -errno;
	}
	ret = netlock_load(&nl, dirfd);
	if (!ret && !nl.locked)
		pr_info("no network lock recorded in %s\n", dir);
	if (!ret)
		ret = netlock_unlock(&nl, dirfd);
	netlock_free(&nl);
	return ret;
}
