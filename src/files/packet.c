// SPDX-License-Identifier: MIT
/*
 * Packet sockets (AF_PACKET, SOCK_RAW and SOCK_DGRAM), in CRIU's
 * packet_sock_entry: type, protocol, the bound interface (by index), the
 * SOL_PACKET options (version, reserve, auxdata, origdev, vnet_hdr, loss,
 * timestamp, copy_thresh), memberships (PACKET_ADD_MEMBERSHIP), the
 * fanout group, the rx/tx ring parameters and the SOL_SOCKET options.
 * What getsockopt() cannot show (copy_thresh, rings, memberships, fanout)
 * comes from sock_diag (packet_diag), matched by inode.
 *
 * A mapping of a socket's rings (PACKET_MMAP) is a VMA of the task's,
 * saved as CRIU saves it: VMA_AREA_SOCKET, shmid the socket's file id,
 * no pages. The ring's frames are not saved (CRIU neither): the restored
 * ring is empty and the kernel fills it from its first frame again.
 *
 * Restore: made in amber before the fork, as inet and netlink sockets
 * are (the tree shares amber's network namespace), bound to the same
 * interface index (a missing one fails the load, before anything is
 * made), options before rings (the kernel refuses most once a ring
 * exists), then memberships, rings and fanout. The restorer maps the
 * rings from a dup of the socket.
 *
 * Frames queued in the socket are dropped, with a warning (CRIU drops
 * them silently): nothing can queue a frame on one socket alone again.
 * Refused, naming fd and pid: SOCK_PACKET, a socket in another network
 * namespace, a fanout group steered by a BPF program (PACKET_FANOUT_DATA
 * cannot be read back), a ring mapped in part.
 */
#define LOG_PREFIX "packet: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sock_diag.h"
#include "base/util.h"
#include "files/files_internal.h"

#define PK_DIAG_SHOW (PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG | \
		      PACKET_SHOW_FANOUT)
#define PK_MAX_MCLIST 1024 /* memberships of one socket we accept in an image */
#define PK_MAX_ADDR   32   /* MAX_ADDR_LEN */
#ifndef PACKET_FANOUT_CBPF
#define PACKET_FANOUT_CBPF 6
#endif
#ifndef PACKET_FANOUT_EBPF
#define PACKET_FANOUT_EBPF 7
#endif
#ifndef PACKET_FANOUT_FLAG_UNIQUEID
#define PACKET_FANOUT_FLAG_UNIQUEID 0x2000
#endif

/* packet_mreq with room for every hardware address (the kernel's packet_mreq_max) */
struct pk_mreq {
	int mr_ifindex;
	unsigned short mr_type, mr_alen;
	unsigned char mr_address[PK_MAX_ADDR];
};

/* What packet_diag says about one socket. */
struct pk_diag {
	uint32_t ino, type, num; /* num in host order */
	struct packet_diag_info info;
	struct packet_diag_mclist *mc;
	int nr_mc;
	struct packet_diag_ring rx, tx;
	bool has_info, has_rx, has_tx, has_fanout;
	uint32_t fanout;
};

static bool packet_match(const struct fd_desc *d)
{
	return S_ISSOCK(d->st.st_mode) && d->family == AF_PACKET;
}

static void pk_parse_attr(struct pk_diag *p, const struct nlattr *a)
{
	const void *data = (const char *)a + NLA_HDRLEN;
	size_t len = a->nla_len - NLA_HDRLEN;

	switch (a->nla_type) {
	case PACKET_DIAG_INFO:
		if (len >= sizeof(p->info)) {
			memcpy(&p->info, data, sizeof(p->info));
			p->has_info = true;
		}
		break;
	case PACKET_DIAG_MCLIST:
		p->mc = malloc(len ? len : 1);
		if (p->mc) {
			memcpy(p->mc, data, len);
			p->nr_mc = len / sizeof(*p->mc);
		}
		break;
	case PACKET_DIAG_RX_RING:
		p->has_rx = len >= sizeof(p->rx);
		if (p->has_rx)
			memcpy(&p->rx, data, sizeof(p->rx));
		break;
	case PACKET_DIAG_TX_RING:
		p->has_tx = len >= sizeof(p->tx);
		if (p->has_tx)
			memcpy(&p->tx, data, sizeof(p->tx));
		break;
	case PACKET_DIAG_FANOUT:
		p->has_fanout = len >= sizeof(p->fanout);
		if (p->has_fanout)
			memcpy(&p->fanout, data, sizeof(p->fanout));
		break;
	}
}

/* Fills @p if @h describes socket @ino; returns whether it did. */
static bool pk_parse(const struct nlmsghdr *h, uint32_t ino, struct pk_diag *p)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct nlattr *a = (const void *)(m + 1);

	if (m->pdiag_ino != ino)
		return false;
	*p = (struct pk_diag){ .ino = ino, .type = m->pdiag_type, .num = m->pdiag_num };
	while (len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= len) {
		pk_parse_attr(p, a);
		len -= NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return true;
}

struct pk_search {
	uint32_t ino;
	struct pk_diag *p;
};

static int pk_each(const struct nlmsghdr *h, void *arg)
{
	struct pk_search *s = arg;

	return pk_parse(h, s->ino, s->p);
}

/*
 * packet_diag answers dumps only (no lookup by inode): walk the packet
 * sockets of amber's network namespace for @ino.
 */
static int pk_diag_get(struct files_dump_ctx *fc, uint32_t ino, struct pk_diag *p)
{
	struct packet_diag_req req = { .sdiag_family = AF_PACKET, .pdiag_show = PK_DIAG_SHOW };
	struct pk_search s = { .ino = ino, .p = p };
	int ret = sock_diag_request(&fc->st->diag, &req, sizeof(req), true, pk_each, &s);
	bool found = ret == 1;

	if (ret < 0) {
		pr_err("sock_diag of packet sockets (is af_packet_diag there?): %s\n",
		       strerror(-ret));
		free(p->mc);
		p->mc = NULL;
		return ret;
	}
	if (!found || !p->has_info || !p->mc) {
		pr_err("sock_diag: no answer for packet socket %u\n", ino);
		free(found ? p->mc : NULL);
		return found && !p->mc ? -ENOMEM : -EIO;
	}
	return 0;
}

static PacketRing *pk_ring(const struct packet_diag_ring *r, PacketRing *out)
{
	packet_ring__init(out);
	out->block_size = r->pdr_block_size;
	out->block_nr = r->pdr_block_nr;
	out->frame_size = r->pdr_frame_size;
	out->frame_nr = r->pdr_frame_nr;
	out->retire_tmo = r->pdr_retire_tmo;
	out->sizeof_priv = r->pdr_sizeof_priv;
	out->features = r->pdr_features;
	return out;
}

/*
 * Memberships, one entry per count: a membership added twice is added
 * twice again (CRIU refuses a count above 1; its format allows repeats).
 */
static int pk_mclist(const struct fd_desc *d, const struct pk_diag *p, PacketSockEntry *pe,
		     PacketMclist **ptrs, PacketMclist *mls)
{
	size_t n = 0;

	for (int i = 0; i < p->nr_mc; i++) {
		const struct packet_diag_mclist *m = &p->mc[i];

		if (m->pdmc_alen > PK_MAX_ADDR || m->pdmc_type > PACKET_MR_UNICAST) {
			pr_err("fd %d of pid %d: packet socket membership of type %u: not "
			       "supported\n", d->fd, d->pid, m->pdmc_type);
			return -EOPNOTSUPP;
		}
		for (uint32_t c = 0; c < m->pdmc_count; c++, n++) {
			if (n == PK_MAX_MCLIST) {
				pr_err("fd %d of pid %d: packet socket with more than %d "
				       "memberships: not supported\n", d->fd, d->pid, PK_MAX_MCLIST);
				return -EOPNOTSUPP;
			}
			packet_mclist__init(&mls[n]);
			mls[n].index = m->pdmc_index;
			mls[n].type = m->pdmc_type;
			if (m->pdmc_type == PACKET_MR_MULTICAST || m->pdmc_type == PACKET_MR_UNICAST) {
				mls[n].addr.len = m->pdmc_alen;
				mls[n].addr.data = (uint8_t *)m->pdmc_addr;
			}
			ptrs[n] = &mls[n];
		}
	}
	pe->n_mclist = n;
	pe->mclist = ptrs;
	return 0;
}

/* What the format cannot carry, refused; frames queued, dropped loudly. */
static int pk_dump_check(const struct fd_desc *d, int sk, int type, const struct pk_diag *p)
{
	char c;

	if (type != SOCK_RAW && type != SOCK_DGRAM) {
		pr_err("fd %d of pid %d: packet socket of type %d (SOCK_PACKET): not supported\n",
		       d->fd, d->pid, type);
		return -EOPNOTSUPP;
	}
	if (p->has_fanout) {
		unsigned mode = (p->fanout >> 16) & 0xff;

		if (mode == PACKET_FANOUT_CBPF || mode == PACKET_FANOUT_EBPF) {
			pr_err("fd %d of pid %d: packet socket in a fanout group steered by a BPF "
			       "program (mode %u): not supported\n", d->fd, d->pid, mode);
			return -EOPNOTSUPP;
		}
	}
	if (recv(sk, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		pr_warn("fd %d of pid %d: frames queued in packet socket %u are dropped\n", d->fd,
			d->pid, p->ino);
	return 0;
}

static void pk_fill(PacketSockEntry *pe, const struct fd_desc *d, int type, const struct pk_diag *p)
{
	pe->type = type;
	pe->protocol = htons(p->num);
	pe->flags = d->flags;
	pe->ifindex = p->info.pdi_index;
	pe->version = p->info.pdi_version;
	pe->reserve = p->info.pdi_reserve;
	pe->timestamp = p->info.pdi_tstamp;
	pe->copy_thresh = p->info.pdi_copy_thresh;
	pe->aux_data = p->info.pdi_flags & PDI_AUXDATA;
	pe->orig_dev = p->info.pdi_flags & PDI_ORIGDEV;
	pe->vnet_hdr = p->info.pdi_flags & PDI_VNETHDR;
	pe->loss = p->info.pdi_flags & PDI_LOSS;
	pe->has_fanout = p->has_fanout;
	pe->fanout = p->fanout;
}

static int packet_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	PacketSockEntry pe = PACKET_SOCK_ENTRY__INIT;
	PacketRing rx, tx;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct files_sk_opts so = {};
	struct pk_diag p = {};
	cleanup_free PacketMclist **ptrs = NULL;
	cleanup_free PacketMclist *mls = NULL;
	int sk = files_peekfd(d);
	socklen_t l = sizeof(int);
	int type = 0, ret;

	if (sk < 0)
		return sk;
	if (!files_same_netns(d->pid)) {
		pr_err("fd %d of pid %d: packet socket in a network namespace of the tree's own: "
		       "not supported yet\n", d->fd, d->pid);
		return -EOPNOTSUPP;
	}
	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &l)) {
		pr_perror("fd %d of pid %d: packet socket", d->fd, d->pid);
		return -errno;
	}
	ret = pk_diag_get(fc, d->st.st_ino, &p);
	if (ret)
		return ret;
	ret = pk_dump_check(d, sk, type, &p);
	ptrs = xzalloc(sizeof(*ptrs) * PK_MAX_MCLIST);
	mls = xzalloc(sizeof(*mls) * PK_MAX_MCLIST);
	if (!ret && (!ptrs || !mls))
		ret = -ENOMEM;
	if (!ret)
		ret = pk_mclist(d, &p, &pe, ptrs, mls);
	if (!ret)
		ret = files_sk_opts_dump(sk, NULL, &so);
	if (ret)
		goto out;
	*id = files_new_id(fc);
	pe.id = *id;
	pk_fill(&pe, d, type, &p);
	pe.rx_ring = p.has_rx ? pk_ring(&p.rx, &rx) : NULL;
	pe.tx_ring = p.has_tx ? pk_ring(&p.tx, &tx) : NULL;
	pe.fown = &fown;
	pe.opts = &so.e;
	fe.type = FD_TYPES__PACKETSK;
	fe.id = *id;
	fe.psk = &pe;
	pr_debug("fd %d of pid %d: packet socket %u type %d protocol %#x ifindex %u, %zu "
		 "membership(s)%s%s%s\n", d->fd, d->pid, p.ino, type, p.num, pe.ifindex,
		 pe.n_mclist, pe.has_fanout ? ", fanout" : "", pe.rx_ring ? ", rx ring" : "",
		 pe.tx_ring ? ", tx ring" : "");
	ret = files_write_entry(fc, &fe);
out:
	files_sk_opts_free(&so);
	free(p.mc);
	return ret;
}

static uint64_t ring_bytes(const PacketRing *r)
{
	return r ? (uint64_t)r->block_size * r->block_nr : 0;
}

static uint64_t diag_ring_bytes(const struct packet_diag_ring *r, bool has)
{
	return has ? (uint64_t)r->pdr_block_size * r->pdr_block_nr : 0;
}

/* Rings of @id mapped at [start, start + len) (a VMA): the socket's file id. */
int files_packet_map_id(struct files_dump_ctx *fc, pid_t pid, uint64_t ino, uint64_t start,
			uint64_t len, uint64_t pgoff, uint32_t *id)
{
	struct files_dump *st = fc->st;
	struct pk_diag p = {};
	int ret;

	for (int i = 0; i < st->nr_files; i++) {
		if (st->files[i].type != FD_TYPES__PACKETSK || st->files[i].ino != ino)
			continue;
		ret = pk_diag_get(fc, ino, &p);
		if (ret)
			return ret;
		free(p.mc);
		if (pgoff || len != diag_ring_bytes(&p.rx, p.has_rx) + diag_ring_bytes(&p.tx, p.has_tx)) {
			pr_err("%d: VMA %#lx maps part of packet socket %lu's rings: not "
			       "supported\n", pid, (unsigned long)start, (unsigned long)ino);
			return -EOPNOTSUPP;
		}
		*id = st->files[i].id;
		return 0;
	}
	pr_err("%d: VMA %#lx maps the rings of packet socket %lu, which no fd of the tree "
	       "holds: not supported\n", pid, (unsigned long)start, (unsigned long)ino);
	return -EOPNOTSUPP;
}

/* ---- restore ---- */

static bool ring_ok(const PacketRing *r)
{
	/* sane sizes: the kernel checks the rest (alignment, frames per block) */
	return !r || (r->block_nr && r->block_size && r->block_size <= (1u << 30) &&
		      (uint64_t)r->block_size * r->block_nr <= (1ull << 36));
}

static int packet_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const PacketSockEntry *e = fe->psk;
	bool ok = e && (e->type == SOCK_RAW || e->type == SOCK_DGRAM) &&
		  e->protocol <= 0xffff && e->version <= TPACKET_V3 && e->n_mclist <= PK_MAX_MCLIST &&
		  ring_ok(e->rx_ring) && ring_ok(e->tx_ring) && e->opts &&
		  files_sk_opts_ok(e->opts);

	(void)fc;
	for (size_t i = 0; ok && i < e->n_mclist; i++)
		ok = e->mclist[i]->type <= PACKET_MR_UNICAST &&
		     e->mclist[i]->addr.len <= PK_MAX_ADDR;
	return files_check_sub(fe, ok, e ? e->id : 0);
}

/* Before anything is made: every interface the sockets name must be there. */
static int packet_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	char name[IF_NAMESIZE];

	for (int i = 0; i < fr->nr_files; i++) {
		const PacketSockEntry *e = fr->files[i].fe->psk;
		uint32_t idx[1 + PK_MAX_MCLIST];
		size_t n = 0;

		if (fr->files[i].fe->type != FD_TYPES__PACKETSK)
			continue;
		idx[n++] = e->ifindex;
		for (size_t m = 0; m < e->n_mclist; m++)
			idx[n++] = e->mclist[m]->index;
		for (size_t k = 0; k < n; k++) {
			if ((k == 0 && !idx[k]) || if_indextoname(idx[k], name))
				continue;
			pr_err("packet socket %u: network interface %u is missing (%s)\n", e->id,
			       idx[k], k ? "a membership's" : "bound to it");
			return -ENODEV;
		}
	}
	return 0;
}

static int pk_opt(int sk, const PacketSockEntry *e, int opt, const char *name, int val)
{
	if (!setsockopt(sk, SOL_PACKET, opt, &val, sizeof(val)))
		return 0;
	pr_perror("packet socket %u: %s %d", e->id, name, val);
	return -errno;
}

/* The options a ring freezes (the kernel says EBUSY once one exists) go first. */
static int pk_restore_opts(int sk, const PacketSockEntry *e)
{
	int ret = pk_opt(sk, e, PACKET_VERSION, "PACKET_VERSION", e->version);

	if (!ret && e->reserve)
		ret = pk_opt(sk, e, PACKET_RESERVE, "PACKET_RESERVE", e->reserve);
	if (!ret && e->vnet_hdr)
		ret = pk_opt(sk, e, PACKET_VNET_HDR, "PACKET_VNET_HDR", 1);
	if (!ret && e->loss)
		ret = pk_opt(sk, e, PACKET_LOSS, "PACKET_LOSS", 1);
	if (!ret && e->aux_data)
		ret = pk_opt(sk, e, PACKET_AUXDATA, "PACKET_AUXDATA", 1);
	if (!ret && e->orig_dev)
		ret = pk_opt(sk, e, PACKET_ORIGDEV, "PACKET_ORIGDEV", 1);
	if (!ret && e->timestamp)
		ret = pk_opt(sk, e, PACKET_TIMESTAMP, "PACKET_TIMESTAMP", e->timestamp);
	if (!ret && e->copy_thresh)
		ret = pk_opt(sk, e, PACKET_COPY_THRESH, "PACKET_COPY_THRESH", e->copy_thresh);
	return ret;
}

static int pk_restore_mclist(int sk, const PacketSockEntry *e)
{
	for (size_t i = 0; i < e->n_mclist; i++) {
		const PacketMclist *m = e->mclist[i];
		struct pk_mreq mr = { .mr_ifindex = m->index, .mr_type = m->type,
				      .mr_alen = m->addr.len };

		memcpy(mr.mr_address, m->addr.data, m->addr.len);
		if (setsockopt(sk, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
			pr_perror("packet socket %u: membership of type %u on interface %u", e->id,
				  m->type, m->index);
			return -errno;
		}
	}
	return 0;
}

static int pk_restore_ring(int sk, const PacketSockEntry *e, int opt, const PacketRing *r)
{
	struct tpacket_req3 req = {
		.tp_block_size = r->block_size, .tp_block_nr = r->block_nr,
		.tp_frame_size = r->frame_size, .tp_frame_nr = r->frame_nr,
		.tp_retire_blk_tov = r->retire_tmo, .tp_sizeof_priv = r->sizeof_priv,
		.tp_feature_req_word = r->features,
	};
	/* V1 and V2 take a tpacket_req, the head of tpacket_req3 */
	socklen_t len = e->version == TPACKET_V3 ? sizeof(req) : sizeof(struct tpacket_req);

	if (!setsockopt(sk, SOL_PACKET, opt, &req, len))
		return 0;
	pr_perror("packet socket %u: %s ring of %u blocks of %u bytes", e->id,
		  opt == PACKET_RX_RING ? "rx" : "tx", r->block_nr, r->block_size);
	return -errno;
}

static int open_pksk(struct files_rst_ctx *fc, struct rfile *rf)
{
	const PacketSockEntry *e = rf->fe->psk;
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_ifindex = e->ifindex };
	int sk = socket(AF_PACKET, e->type | SOCK_CLOEXEC, e->protocol), ret;

	if (sk < 0) {
		pr_perror("packet socket %u: socket(type %u, protocol %#x)", e->id, e->type,
			  ntohs(e->protocol));
		return -errno;
	}
	/* protocol 0 in the address keeps the socket's own */
	if (bind(sk, (void *)&a, sizeof(a))) {
		ret = -errno;
		pr_perror("packet socket %u: bind to interface %u", e->id, e->ifindex);
		goto err;
	}
	ret = pk_restore_opts(sk, e);
	if (!ret)
		ret = pk_restore_mclist(sk, e);
	if (!ret && e->rx_ring)
		ret = pk_restore_ring(sk, e, PACKET_RX_RING, e->rx_ring);
	if (!ret && e->tx_ring)
		ret = pk_restore_ring(sk, e, PACKET_TX_RING, e->tx_ring);
	/* a unique id is the saved one now: join or make that group */
	if (!ret && e->has_fanout)
		ret = pk_opt(sk, e, PACKET_FANOUT, "PACKET_FANOUT",
			     e->fanout & ~(PACKET_FANOUT_FLAG_UNIQUEID << 16));
	if (!ret)
		ret = files_sk_opts_restore(
			sk, e->opts, files_sk_dflt(fc->st, sk, AF_PACKET, e->type, e->protocol),
			"packet socket", e->id);
	if (!ret)
		return sk;
err:
	close(sk);
	return ret;
}

static int packet_prepare(struct files_rst_ctx *fc)
{
	return files_prepare_each(fc, FD_TYPES__PACKETSK, open_pksk);
}

int files_packet_map_check(struct files_rst_ctx *fc, uint32_t id, uint64_t len, uint64_t pgoff)
{
	struct rfile *rf = files_rfile(fc->st, id);
	const PacketSockEntry *e;

	if (!rf || rf->fe->type != FD_TYPES__PACKETSK) {
		pr_err("a socket mapping names file %u, not a packet socket\n", id);
		return -EINVAL;
	}
	e = rf->fe->psk;
	if (pgoff || !len || len != ring_bytes(e->rx_ring) + ring_bytes(e->tx_ring)) {
		pr_err("a mapping of %lu bytes does not match packet socket %u's rings\n",
		       (unsigned long)len, id);
		return -EINVAL;
	}
	return 0;
}

int files_packet_map_fd(struct files_rst_ctx *fc, uint32_t id)
{
	struct rfile *rf = files_rfile(fc->st, id);
	int fd;

	if (!rf || rf->fe->type != FD_TYPES__PACKETSK || rf->svc_fd < 0)
		return -ENOENT;
	fd = fcntl(rf->svc_fd, F_DUPFD, fc->svc_fd_base);
	return fd < 0 ? -errno : fd;
}

static uint32_t packet_flags(struct files_rst *fr, const FileEntry *fe)
{
	(void)fr;
	return fe->psk->flags;
}

const struct files_type files_packet_type = {
	.type = FD_TYPES__PACKETSK,
	.name = "packet socket",
	.match = packet_match,
	.dump = packet_dump,
	.check = packet_check,
	.load = packet_load,
	.prepare = packet_prepare,
	.flags = packet_flags,
};
