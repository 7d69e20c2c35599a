// SPDX-License-Identifier: MIT
/*
 * The iptables backend of the network lock: two rules per connection in
 * the filter table, with CRIU's text, so either engine's restore deletes
 * the other's rules:
 *
 *   -I INPUT  -p tcp -m mark ! --mark 0xc114 -s PEER -d LOCAL ... -j DROP
 *   -I OUTPUT -p tcp -m mark ! --mark 0xc114 -s LOCAL -d PEER ... -j DROP
 *
 * All rules of a family go in one `iptables-restore -w --noflush` (one
 * ruleset commit: all of them or none). Unlock first reads the ruleset
 * with `iptables-save -t filter` and deletes, in one commit again, only
 * the rules still there, so a rule already gone is no error.
 */
#define LOG_PREFIX "netlock: "
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_internal.h"

extern char **environ;

/* What a tool printed into memfd @fd, NUL-terminated (NULL if out of memory). */
static char *read_output(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *text = len >= 0 ? malloc(len + 1) : NULL;

	if (!text)
		return NULL;
	if (pread_full(fd, text, len, 0)) {
		free(text);
		return NULL;
	}
	text[len] = 0;
	return text;
}

/*
 * Runs @argv with @in (@len bytes) as its stdin; its stdout and stderr
 * into *@out (malloc'ed, NUL-terminated) if @out, else to the log on
 * failure. 0 if it exited 0, -EIO otherwise, -errno if it can't run.
 */
static int run_tool(char *const argv[], const char *in, size_t len, char **out)
{
	cleanup_close int infd = memfd_create("netlock-in", MFD_CLOEXEC);
	cleanup_close int outfd = memfd_create("netlock-out", MFD_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int ret, st;
	char *text;

	if (infd < 0 || outfd < 0 || write_full(infd, in, len) || lseek(infd, 0, SEEK_SET))
		return -errno;
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, infd, 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, 1);
	posix_spawn_file_actions_adddup2(&fa, outfd, 2);
	/* A restore holds the tree's service fds: none of them goes along. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	ret = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	/* A caller's PATH may lack the sbin directories (sudo, cron, a service). */
	for (int i = 0; ret == ENOENT && i < 2; i++) {
		char path[64];

		snprintf(path, sizeof(path), "%s/%s", i ? "/sbin" : "/usr/sbin", argv[0]);
		ret = posix_spawn(&pid, path, &fa, &attr, argv, environ);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret) {
		pr_err("can't run %s: %s%s\n", argv[0], strerror(ret),
		       ret == ENOENT ? " (Debian package iptables)" : "");
		return -ret;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	text = read_output(outfd);
	ret = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
	if (ret)
		pr_err("%s failed (status %#x): %s\n", argv[0], st, text ? text : "");
	if (out)
		*out = text;
	else
		free(text);
	return ret;
}

static const char *tool(bool v6, bool save)
{
	if (save)
		return v6 ? "ip6tables-save" : "iptables-save";
	return v6 ? "ip6tables-restore" : "iptables-restore";
}

/* One rule of @c: INPUT matches the peer's packets, OUTPUT ours. */
static void put_rule(FILE *f, char op, bool input, const struct netlock_conn *c)
{
	char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];

	netlock_addr_str(c, true, l);
	netlock_addr_str(c, false, r);
	fprintf(f, "-%c %s -p tcp -m mark ! --mark %#x -s %s --sport %u -d %s --dport %u -j DROP\n",
		op, input ? "INPUT" : "OUTPUT", NETLOCK_REPAIR_MARK, input ? r : l,
		input ? c->rport : c->lport, input ? l : r, input ? c->lport : c->rport);
}

/*
 * Runs @op ('I' or 'D') for rules @idx[0..nr) (2 * conn + 1 for OUTPUT)
 * in that order: deleting in the chain's own order keeps each lookup
 * short (iptables-nft finds a rule to delete by walking its chain).
 */
static int ipt_apply(const struct netlock *nl, int family, char op, const uint32_t *idx,
		     size_t nr)
{
	char *argv[] = { (char *)tool(family == AF_INET6, false), "-w", "--noflush", NULL };
	cleanup_free char *in = NULL;
	size_t len;
	FILE *f = open_memstream(&in, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "*filter\n");
	for (size_t i = 0; i < nr; i++)
		put_rule(f, op, !(idx[i] & 1), &nl->conns[idx[i] / 2]);
	fprintf(f, "COMMIT\n");
	if (fclose(f))
		return -ENOMEM;
	if (!nr)
		return 0;
	pr_debug("%s input:\n%s", argv[0], in);
	return run_tool(argv, in, len, NULL);
}

/* The rules of @family's connections; @reverse: in the order -I left them in the chain. */
static uint32_t *family_rules(const struct netlock *nl, int family, bool reverse, size_t *nr)
{
	uint32_t *idx = calloc(2 * nl->nr_conns + 1, sizeof(*idx));

	*nr = 0;
	for (size_t i = 0; idx && i < nl->nr_conns; i++) {
		if (nl->conns[i].family != family)
			continue;
		idx[(*nr)++] = 2 * i;
		idx[(*nr)++] = 2 * i + 1;
	}
	for (size_t i = 0; idx && reverse && i < *nr / 2; i++) {
		uint32_t t = idx[i];

		idx[i] = idx[*nr - 1 - i];
		idx[*nr - 1 - i] = t;
	}
	return idx;
}

static int ipt_apply_all(const struct netlock *nl, int family, char op)
{
	size_t nr;
	cleanup_free uint32_t *idx = family_rules(nl, family, op == 'D', &nr);

	return idx ? ipt_apply(nl, family, op, idx, nr) : -ENOMEM;
}

static bool has_family(const struct netlock *nl, int family)
{
	for (size_t i = 0; i < nl->nr_conns; i++)
		if (nl->conns[i].family == family)
			return true;
	return false;
}

static int ipt_lock(const struct netlock *nl)
{
	int ret = 0;

	if (has_family(nl, AF_INET))
		ret = ipt_apply_all(nl, AF_INET, 'I');
	if (!ret && has_family(nl, AF_INET6)) {
		ret = ipt_apply_all(nl, AF_INET6, 'I');
		if (ret && has_family(nl, AF_INET) && ipt_apply_all(nl, AF_INET, 'D'))
			pr_err("iptables: can't take back the IPv4 rules just inserted\n");
	}
	if (!ret)
		pr_info("iptables: %zu connection(s) dropped by %zu rule(s)\n", nl->nr_conns,
			2 * nl->nr_conns);
	return ret;
}

/* One of our rules, as iptables-save prints it back, and its index in nl's order. */
struct rule_key {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint8_t input;
	uint32_t idx; /* 2 * conn + (OUTPUT ? 1 : 0); not part of the key */
};

static int cmp_rule(const void *a, const void *b)
{
	return memcmp(a, b, offsetof(struct rule_key, idx));
}

/* The value after option @opt in the tokens of a saved rule, or NULL. */
static const char *opt_value(char **tok, int n, const char *opt)
{
	for (int i = 0; i + 1 < n; i++)
		if (!strcmp(tok[i], opt))
			return tok[i + 1];
	return NULL;
}

/* "10.0.0.1/32" or "fd00::1/128" into @addr; false for anything else. */
static bool parse_host(const char *s, int family, uint8_t *addr)
{
	char a[INET6_ADDRSTRLEN + 8];
	char *slash;

	if (!s || strlen(s) >= sizeof(a))
		return false;
	strcpy(a, s);
	slash = strchr(a, '/');
	if (slash) {
		if (strcmp(slash + 1, family == AF_INET ? "32" : "128"))
			return false;
		*slash = 0;
	}
	return inet_pton(family, a, addr) == 1;
}

static bool parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v = s ? strtoul(s, &end, 10) : 0;

	*port = v;
	return s && !*end && v && v < 65536;
}

/* A saved "-A CHAIN ..." rule as one of our keys; false if it can't be one. */
static bool saved_key(char **tok, int n, int family, struct rule_key *k)
{
	const char *j = opt_value(tok, n, "-j"), *mark = opt_value(tok, n, "--mark");
	char want_mark[16];

	memset(k, 0, sizeof(*k));
	snprintf(want_mark, sizeof(want_mark), "%#x", NETLOCK_REPAIR_MARK);
	k->input = !strcmp(tok[1], "INPUT");
	return (k->input || !strcmp(tok[1], "OUTPUT")) && j && !strcmp(j, "DROP") && mark &&
	       !strcmp(mark, want_mark) && parse_host(opt_value(tok, n, "-s"), family, k->src) &&
	       parse_host(opt_value(tok, n, "-d"), family, k->dst) &&
	       parse_port(opt_value(tok, n, "--sport"), &k->sport) &&
	       parse_port(opt_value(tok, n, "--dport"), &k->dport);
}

/* Our rules of @family, sorted by key. */
static struct rule_key *our_keys(const struct netlock *nl, int family, size_t *nr)
{
	struct rule_key *keys = calloc(2 * nl->nr_conns + 1, sizeof(*keys));
	size_t alen = family == AF_INET ? 4 : 16;

	*nr = 0;
	if (!keys)
		return NULL;
	for (size_t i = 0; i < nl->nr_conns; i++) {
		const struct netlock_conn *c = &nl->conns[i];

		if (c->family != family)
			continue;
		for (int out = 0; out < 2; out++) {
			struct rule_key *k = &keys[(*nr)++];

			k->input = !out;
			memcpy(k->src, out ? c->laddr : c->raddr, alen);
			memcpy(k->dst, out ? c->raddr : c->laddr, alen);
			k->sport = out ? c->lport : c->rport;
			k->dport = out ? c->rport : c->lport;
			k->idx = 2 * i + out;
		}
	}
	qsort(keys, *nr, sizeof(*keys), cmp_rule);
	return keys;
}

/*
 * Which of our rules of @family the filter table still holds, into
 * @order[0..*nr) in the chains' order (@found: scratch, one per rule).
 */
static int ipt_present(const struct netlock *nl, int family, bool *found, uint32_t *order,
		       size_t *nr)
{
	char *argv[] = { (char *)tool(family == AF_INET6, true), "-t", "filter", NULL };
	cleanup_free char *saved = NULL;
	cleanup_free struct rule_key *keys = NULL;
	char *line, *save = NULL;
	size_t nr_keys;
	int ret = run_tool(argv, "", 0, &saved);

	*nr = 0;
	if (ret)
		return ret;
	keys = our_keys(nl, family, &nr_keys);
	if (!keys || !saved)
		return -ENOMEM;
	for (line = strtok_r(saved, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok[64], *ts = NULL;
		struct rule_key k, *hit;
		int n = 0;

		if (strncmp(line, "-A ", 3))
			continue;
		for (char *t = strtok_r(line, " ", &ts); t && n < 64; t = strtok_r(NULL, " ", &ts))
			tok[n++] = t;
		if (!saved_key(tok, n, family, &k))
			continue;
		hit = bsearch(&k, keys, nr_keys, sizeof(*keys), cmp_rule);
		if (hit && !found[hit->idx]) {
			found[hit->idx] = true;
			order[(*nr)++] = hit->idx;
		}
	}
	return 0;
}

static int ipt_unlock(const struct netlock *nl)
{
	cleanup_free bool *found = calloc(2 * nl->nr_conns + 1, sizeof(*found));
	cleanup_free uint32_t *order = calloc(2 * nl->nr_conns + 1, sizeof(*order));
	int families[] = { AF_INET, AF_INET6 }, ret = 0;

	if (!found || !order)
		return -ENOMEM;
	for (int k = 0; k < 2; k++) {
		size_t nr;
		int r;

		if (!has_family(nl, families[k]))
			continue;
		memset(found, 0, 2 * nl->nr_conns * sizeof(*found));
		r = ipt_present(nl, families[k], found, order, &nr);
		if (!r && nr)
			r = ipt_apply(nl, families[k], 'D', order, nr);
		if (!r)
			pr_info("iptables: %zu %s rule(s) of the lock removed\n", nr,
				families[k] == AF_INET ? "IPv4" : "IPv6");
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/* The rules of the lock that are missing inserted, those still there kept. */
static int ipt_lock_again(const struct netlock *nl)
{
	cleanup_free bool *found = calloc(2 * nl->nr_conns + 1, sizeof(*found));
	cleanup_free uint32_t *order = calloc(2 * nl->nr_conns + 1, sizeof(*order));
	int families[] = { AF_INET, AF_INET6 };

	if (!found || !order)
		return -ENOMEM;
	for (int k = 0; k < 2; k++) {
		size_t nr, missing = 0;
		int ret;

		if (!has_family(nl, families[k]))
			continue;
		memset(found, 0, 2 * nl->nr_conns * sizeof(*found));
		ret = ipt_present(nl, families[k], found, order, &nr);
		for (size_t i = 0; !ret && i < 2 * nl->nr_conns; i++)
			if (nl->conns[i / 2].family == families[k] && !found[i])
				order[missing++] = i;
		if (!ret)
			ret = ipt_apply(nl, families[k], 'I', order, missing);
		if (ret)
			return ret;
		pr_info("iptables: %zu %s rule(s) of the lock there, %zu inserted\n", nr,
			families[k] == AF_INET ? "IPv4" : "IPv6", missing);
	}
	return 0;
}

const struct netlock_backend netlock_iptables = {
	.name = "iptables",
	.lock = ipt_lock,
	.unlock = ipt_unlock,
	.lock_again = ipt_lock_again,
};
