// SPDX-License-Identifier: GPL-2.0
/*
 * PACKET_MMAP: a TPACKET_V2 SOCK_DGRAM socket on lo with an rx and a tx
 * ring, both mapped in one VMA, that has received and released one frame
 * before the dump. After the restore the mapping is at the same place,
 * the version and reserve are kept, a frame queued in the tx ring is
 * sent and a frame sent on lo lands in the rx ring. The frames in the
 * ring are not saved (as in CRIU) and the kernel starts again at the
 * first frame, so the rx ring is searched, not walked from where the
 * reader was. Ethertype 0x88b7, local experimental.
 */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtm.h"

#define PROTO	 0x88b7
#define FRAME	 2048
#define NFRAMES	 8
#define RINGSZ	 (FRAME * NFRAMES)
#define RESERVE	 16

static int send_lo(int lo, const char *msg)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(PROTO),
				 .sll_ifindex = lo, .sll_halen = 6 };
	int sk = socket(AF_PACKET, SOCK_DGRAM, 0), ret;

	ret = sk < 0 ? -1 : (int)sendto(sk, msg, strlen(msg), 0, (void *)&a, sizeof(a));
	close(sk);
	return ret == (int)strlen(msg) ? 0 : -1;
}

/* The rx frame holding @msg, released; -1 if none within 5 s. */
static int rx_find(int sk, char *rx, const char *msg)
{
	struct pollfd pf = { .fd = sk, .events = POLLIN };

	for (int tries = 0; tries < 50; tries++) {
		for (int i = 0; i < NFRAMES; i++) {
			struct tpacket2_hdr *h = (void *)(rx + i * FRAME);

			if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				continue;
			h->tp_status = TP_STATUS_KERNEL;
			if (h->tp_len == strlen(msg) &&
			    !memcmp((char *)h + h->tp_mac, msg, h->tp_len))
				return i;
		}
		poll(&pf, 1, 100);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct tpacket_req req = { 2 * FRAME, NFRAMES / 2, FRAME, NFRAMES };
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(PROTO) };
	int sk, lo, v = TPACKET_V2, res = RESERVE;
	socklen_t l = sizeof(v);
	struct tpacket2_hdr *tx;
	char *ring;

	test_init(argc, argv);
	lo = if_nametoindex("lo");
	a.sll_ifindex = lo;
	sk = socket(AF_PACKET, SOCK_DGRAM, htons(PROTO));
	if (!lo || sk < 0 || bind(sk, (void *)&a, sizeof(a)))
		return fail_errno("packet socket"), 1;
	if (setsockopt(sk, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) ||
	    setsockopt(sk, SOL_PACKET, PACKET_RESERVE, &res, sizeof(res)) ||
	    setsockopt(sk, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) ||
	    setsockopt(sk, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)))
		return fail_errno("rings"), 1;
	ring = mmap(NULL, 2 * RINGSZ, PROT_READ | PROT_WRITE, MAP_SHARED, sk, 0);
	if (ring == MAP_FAILED)
		return fail_errno("mmap"), 1;
	if (send_lo(lo, "before the dump") || rx_find(sk, ring, "before the dump") != 0)
		return fail("no frame in the ring before the dump"), 1;
	test_daemon();
	test_waitsig();

	if (getsockopt(sk, SOL_PACKET, PACKET_VERSION, &v, &l) || v != TPACKET_V2 ||
	    getsockopt(sk, SOL_PACKET, PACKET_RESERVE, &res, &l) || res != RESERVE)
		return fail("version %d reserve %d after the restore", v, res), 1;
	if (!vma_mapped(ring, 2 * RINGSZ))
		return fail("the ring is not mapped"), 1;
	if (send_lo(lo, "after the restore") || rx_find(sk, ring, "after the restore") < 0)
		return fail("no frame in the rx ring after the restore"), 1;
	/* tx: frame 0 of the tx ring, data after the header (SOCK_DGRAM: no link header) */
	tx = (void *)(ring + RINGSZ);
	memcpy((char *)tx + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), "from the tx ring", 16);
	tx->tp_len = 16;
	tx->tp_status = TP_STATUS_SEND_REQUEST;
	if (sendto(sk, NULL, 0, 0, (void *)&a, sizeof(a)) < 0)
		return fail_errno("tx ring send"), 1;
	if (rx_find(sk, ring, "from the tx ring") < 0)
		return fail("the tx ring's frame did not come back on lo"), 1;
	pass();
	return 0;
}
