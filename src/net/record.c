// SPDX-License-Identifier: MIT
/*
 * IMAGES_DIR/amber.netlock: what lock a dump took, in text a person can
 * read and `amber net-unlock` can act on (not a CRIU image, so neither
 * amber.sums nor crit list it):
 *
 *   amber-netlock 1
 *   method nftables
 *   run-id 5f0c2a9e41d7b3a8
 *   netns 4026531840
 *   boot-id 0e4c...
 *   tree-netns yes                        (only when it was in the tree's own)
 *   conn 4 10.0.0.1 5000 10.0.0.2 43210     (family, local, peer)
 *
 * It is written to a temporary name and renamed, so a reader sees all of
 * it or none. The text forms of methods and addresses live here too.
 */
#define LOG_PREFIX "netlock: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_internal.h"

#define RECORD_HEADER "amber-netlock 1"
#define RECORD_TMP    NETLOCK_RECORD ".tmp"
#define RECORD_MAX    (256u << 20) /* ~2.5 million connections */

static const char *const method_names[] = {
	[NETLOCK_IPTABLES] = "iptables",
	[NETLOCK_NFTABLES] = "nftables",
	[NETLOCK_SKIP] = "skip",
	[NETLOCK_AUTO] = "auto",
	[NETLOCK_NONE] = "none",
};

const char *netlock_method_name(enum netlock_method m)
{
	return (unsigned)m < ARRAY_SIZE(method_names) ? method_names[m] : "?";
}

int netlock_method_parse(const char *s, enum netlock_method *m)
{
	for (int i = NETLOCK_IPTABLES; i <= NETLOCK_SKIP; i++) {
		if (!strcmp(s, method_names[i])) {
			*m = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *netlock_addr_str(const struct netlock_conn *c, bool local, char *buf)
{
	if (!inet_ntop(c->family, local ? c->laddr : c->raddr, buf, INET6_ADDRSTRLEN))
		strcpy(buf, "?");
	return buf;
}

static int write_record_to(const struct netlock *nl, int fd)
{
	FILE *f = fdopen(fd, "w");
	int ret = 0;

	if (!f)
		return -errno;
	fprintf(f, "%s\nmethod %s\nrun-id %s\nnetns %" PRIu64 "\nboot-id %s\n", RECORD_HEADER,
		netlock_method_name(nl->method), nl->run_id, nl->netns, nl->boot_id);
	if (nl->tree_netns)
		fprintf(f, "tree-netns yes\n");
	for (size_t i = 0; i < nl->nr_conns; i++) {
		const struct netlock_conn *c = &nl->conns[i];
		char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];

		fprintf(f, "conn %c %s %u %s %u\n", c->family == AF_INET ? '4' : '6',
			netlock_addr_str(c, true, l), c->lport, netlock_addr_str(c, false, r), c->rport);
	}
	/* No fsync: a lock does not outlive a crash of the machine either. */
	if (fflush(f))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

int netlock_record_write(const struct netlock *nl, int dirfd)
{
	int fd = openat(dirfd, RECORD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0) {
		pr_perror("can't create %s", RECORD_TMP);
		return -errno;
	}
	ret = write_record_to(nl, fd);
	if (!ret && renameat(dirfd, RECORD_TMP, dirfd, NETLOCK_RECORD))
		ret = -errno;
	if (ret) {
		pr_err("can't write %s: %s\n", NETLOCK_RECORD, strerror(-ret));
		unlinkat(dirfd, RECORD_TMP, 0);
	}
	return ret;
}

static bool parse_conn(const char *line, struct netlock_conn *c)
{
	char fam, l[64], r[64];
	unsigned lp, rp;
	int end = 0;

	memset(c, 0, sizeof(*c));
	if (sscanf(line, "conn %c %63s %u %63s %u%n", &fam, l, &lp, r, &rp, &end) != 5 ||
	    line[end] || (fam != '4' && fam != '6') || !lp || !rp || lp > 65535 || rp > 65535)
		return false;
	c->family = fam == '4' ? AF_INET : AF_INET6;
	c->lport = lp;
	c->rport = rp;
	return inet_pton(c->family, l, c->laddr) == 1 && inet_pton(c->family, r, c->raddr) == 1;
}

static bool is_hex_id(const char *s, size_t max)
{
	size_t n = strspn(s, "0123456789abcdef-");

	return n && n <= max && !s[n];
}

/* One "key value" line into @nl; false if it is not one we know, well formed. */
static bool parse_field(const char *line, struct netlock *nl)
{
	char method[16];
	int end = 0;

	if (!strcmp(line, "tree-netns yes"))
		return nl->tree_netns = true;
	if (sscanf(line, "method %15s%n", method, &end) == 1 && !line[end])
		return !netlock_method_parse(method, &nl->method);
	if (!strncmp(line, "run-id ", 7) && is_hex_id(line + 7, sizeof(nl->run_id) - 1)) {
		strcpy(nl->run_id, line + 7);
		return true;
	}
	if (!strncmp(line, "boot-id ", 8) && is_hex_id(line + 8, sizeof(nl->boot_id) - 1)) {
		strcpy(nl->boot_id, line + 8);
		return true;
	}
	return sscanf(line, "netns %" SCNu64 "%n", &nl->netns, &end) == 1 && !line[end];
}

static int parse_record(struct netlock *nl, char *text)
{
	size_t lines = 0, cap = 0, lineno = 0;
	char *save = NULL;

	for (char *p = text; *p; p++)
		lines += *p == '\n';
	nl->method = NETLOCK_NONE;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool ok;

		if (++lineno == 1) {
			ok = !strcmp(line, RECORD_HEADER);
		} else if (!strncmp(line, "conn ", 5)) {
			if (!nl->conns) {
				cap = lines;
				nl->conns = calloc(cap ? cap : 1, sizeof(*nl->conns));
				if (!nl->conns)
					return -ENOMEM;
			}
			ok = nl->nr_conns < cap && parse_conn(line, &nl->conns[nl->nr_conns++]);
		} else {
			ok = parse_field(line, nl);
		}
		if (!ok) {
			pr_err("%s: line %zu is malformed: %.80s\n", NETLOCK_RECORD, lineno, line);
			return -EINVAL;
		}
	}
	if (nl->method != NETLOCK_NFTABLES && nl->method != NETLOCK_IPTABLES) {
		pr_err("%s: no lock method (nftables or iptables) recorded\n", NETLOCK_RECORD);
		return -EINVAL;
	}
	if (!nl->run_id[0] || !nl->netns || !nl->boot_id[0]) {
		pr_err("%s: run-id, netns or boot-id missing\n", NETLOCK_RECORD);
		return -EINVAL;
	}
	return 0;
}

int netlock_record_read(struct netlock *nl, int dirfd)
{
	cleanup_free char *text = NULL;
	size_t len;

	text = read_file_at(dirfd, NETLOCK_RECORD, &len);
	if (!text) {
		if (errno == ENOENT)
			return -ENOENT;
		pr_perror("can't read %s", NETLOCK_RECORD);
		return -errno;
	}
	if (len > RECORD_MAX || strlen(text) != len) {
		pr_err("%s: too large or not text\n", NETLOCK_RECORD);
		return -EINVAL;
	}
	return parse_record(nl, text);
}
