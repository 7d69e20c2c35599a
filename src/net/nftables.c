// SPDX-License-Identifier: MIT
/*
 * The nftables backend of the network lock, through libnftables: one
 * table "inet CRIU-<run id>" per dump (CRIU 4.2's layout, so either
 * engine's restore removes the other's lock), made in a single
 * transaction, so a killed amber leaves the whole table or none of it:
 *
 *   chain input, chain output   filter hooks, priority 0, policy accept:
 *     meta mark 0xc114 accept   (packets of the restore's own)
 *     ip  saddr . tcp sport . ip  daddr . tcp dport @conns4 drop
 *     ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop
 *   sets conns4, conns6         each connection in both directions
 *
 * Unlock deletes the table: "add table" then "delete table" in one
 * transaction, so a table already gone is no error.
 */
#define LOG_PREFIX "netlock: "
#include <errno.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_internal.h"

void netlock_nft_table(const struct netlock *nl, char *buf, size_t len)
{
	/* CRIU 4.2 prints "inet CRIU-<id>" into 32 bytes: at most 21 of the id. */
	snprintf(buf, len, "CRIU-%.21s", nl->run_id);
}

/* Runs @cmds as one transaction; its error text goes to the log. */
static int nft_run(const char *cmds, const char *what)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int ret = 0;

	if (!nft) {
		pr_err("libnftables: can't create a context to %s\n", what);
		return -ENOMEM;
	}
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	if (nft_run_cmd_from_buffer(nft, cmds)) {
		const char *e = nft_ctx_get_error_buffer(nft);

		pr_err("nftables: can't %s: %s\n", what, e && *e ? e : "(no message)");
		ret = -EIO;
	}
	nft_ctx_free(nft);
	return ret;
}

static void put_elements(FILE *f, const struct netlock *nl, int family, const char *table)
{
	const char *sep = "";
	bool any = false;

	for (size_t i = 0; i < nl->nr_conns; i++) {
		const struct netlock_conn *c = &nl->conns[i];
		char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];

		if (c->family != family)
			continue;
		if (!any)
			fprintf(f, "add element inet %s conns%c { ", table, family == AF_INET ? '4' : '6');
		any = true;
		netlock_addr_str(c, true, l);
		netlock_addr_str(c, false, r);
		fprintf(f, "%s%s . %u . %s . %u, %s . %u . %s . %u", sep, l, c->lport, r, c->rport,
			r, c->rport, l, c->lport);
		sep = ", ";
	}
	if (any)
		fprintf(f, " }\n");
}

/*
 * @replace: a table of this lock may be there already (a namespace the
 * dump locked, handed back by the caller): deleted and made again in the
 * same transaction, so no packet passes in between.
 */
static int nft_make(const struct netlock *nl, bool replace)
{
	char table[32];
	cleanup_free char *cmds = NULL;
	size_t len;
	FILE *f = open_memstream(&cmds, &len);
	int ret;

	if (!f)
		return -ENOMEM;
	netlock_nft_table(nl, table, sizeof(table));
	if (replace)
		fprintf(f, "add table inet %s\ndelete table inet %s\n", table, table);
	fprintf(f, "create table inet %s\n", table);
	for (int out = 0; out < 2; out++) {
		const char *ch = out ? "output" : "input";

		fprintf(f, "add chain inet %s %s { type filter hook %s priority 0; policy accept; }\n",
			table, ch, ch);
		fprintf(f, "add rule inet %s %s meta mark %#x accept\n", table, ch,
			NETLOCK_REPAIR_MARK);
	}
	fprintf(f, "add set inet %s conns4 { type ipv4_addr . inet_service . ipv4_addr . "
		   "inet_service; }\n", table);
	fprintf(f, "add set inet %s conns6 { type ipv6_addr . inet_service . ipv6_addr . "
		   "inet_service; }\n", table);
	for (int out = 0; out < 2; out++) {
		const char *ch = out ? "output" : "input";

		fprintf(f, "add rule inet %s %s ip saddr . tcp sport . ip daddr . tcp dport "
			   "@conns4 drop\n", table, ch);
		fprintf(f, "add rule inet %s %s ip6 saddr . tcp sport . ip6 daddr . tcp dport "
			   "@conns6 drop\n", table, ch);
	}
	put_elements(f, nl, AF_INET, table);
	put_elements(f, nl, AF_INET6, table);
	if (fclose(f))
		return -ENOMEM;
	ret = nft_run(cmds, "lock the connections");
	if (!ret)
		pr_info("nftables: table inet %s drops %zu connection(s)\n", table, nl->nr_conns);
	return ret;
}

static int nft_lock(const struct netlock *nl)
{
	return nft_make(nl, false);
}

static int nft_lock_again(const struct netlock *nl)
{
	return nft_make(nl, true);
}

static int nft_unlock(const struct netlock *nl)
{
	char table[32], cmds[128];

	netlock_nft_table(nl, table, sizeof(table));
	snprintf(cmds, sizeof(cmds), "add table inet %s\ndelete table inet %s\n", table, table);
	return nft_run(cmds, "delete the lock's table");
}

const struct netlock_backend netlock_nftables = {
	.name = "nftables",
	.lock = nft_lock,
	.unlock = nft_unlock,
	.lock_again = nft_lock_again,
};
