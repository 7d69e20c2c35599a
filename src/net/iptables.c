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

/* Runs @op ('I' or 'D') for the rules of @family marked in @want (2 per conn). */
static int ipt_apply(const struct netlock *nl, int family, char op, const bool *want)
{
	char *argv[] = { (char *)tool(family == AF_INET6, false), "-w", "--noflush", NULL };
	cleanup_free char *in = NULL;
	size_t len, n = 0;
	FILE *f = open_memstream(&in, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "*filter\n");
	for (size_t i = 0; i < nl->nr_conns; i++) {
		if (nl->conns[i].family != family)
			continue;
		for (int d = 0; d < 2; d++) {
			if (want && !want[2 * i + d])
				continue;
			put_rule(f, op, d == 0, &nl->conns[i]);
			n++;
		}
	}
	fprintf(f, "COMMIT\n");
	if (fclose(f))
		return -ENOMEM;
	if (!n)
		return 0;
	pr_debug("%s input:\n%s", argv[0], in);
	return run_tool(argv, in, len, NULL);
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
		ret = ipt_apply(nl, AF_INET, 'I', NULL);
	if (!ret && has_family(nl, AF_INET6)) {
		ret = ipt_apply(nl, AF_INET6, 'I', NULL);
		if (ret && has_family(nl, AF_INET) && ipt_apply(nl, AF_INET, 'D', NULL))
			pr_err("iptables: can't take back the IPv4 rules just inserted\n");
	}
	if (!ret)
		pr_info("iptables: %zu connection(s) dropped by %zu rule(s)\n", nl->nr_conns,
			2 * nl->nr_conns);
	return ret;
}

/* The value after option @opt in the tokens of a saved rule, or NULL. */
static const char *opt_value(char **tok, int n, const char *opt)
{
	for (int i = 0; i + 1 < n; i++)
		if (!strcmp(tok[i], opt))
			return tok[i + 1];
	return NULL;
}

static bool addr_is(const char *s, int family, const uint8_t *addr)
{
	char a[INET6_ADDRSTRLEN + 8];
	uint8_t bin[16];
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
	return inet_pton(family, a, bin) == 1 && !memcmp(bin, addr, family == AF_INET ? 4 : 16);
}

static bool port_is(const char *s, uint16_t port)
{
	return s && strtoul(s, NULL, 10) == port;
}

/* Marks in @found which of our rules the saved rule in @tok is. */
static void match_saved(const struct netlock *nl, int family, char **tok, int n, bool *found)
{
	const char *chain = tok[1], *s = opt_value(tok, n, "-s"), *d = opt_value(tok, n, "-d");
	const char *sp = opt_value(tok, n, "--sport"), *dp = opt_value(tok, n, "--dport");
	const char *j = opt_value(tok, n, "-j"), *mark = opt_value(tok, n, "--mark");
	bool input = !strcmp(chain, "INPUT");
	char want_mark[16];

	snprintf(want_mark, sizeof(want_mark), "%#x", NETLOCK_REPAIR_MARK);
	if ((!input && strcmp(chain, "OUTPUT")) || !j || strcmp(j, "DROP") || !mark ||
	    strcmp(mark, want_mark))
		return;
	for (size_t i = 0; i < nl->nr_conns; i++) {
		const struct netlock_conn *c = &nl->conns[i];

		if (c->family != family || found[2 * i + !input])
			continue;
		if (addr_is(s, family, input ? c->raddr : c->laddr) &&
		    addr_is(d, family, input ? c->laddr : c->raddr) &&
		    port_is(sp, input ? c->rport : c->lport) &&
		    port_is(dp, input ? c->lport : c->rport)) {
			found[2 * i + !input] = true;
			return;
		}
	}
}

/* Which of our rules of @family the filter table still holds. */
static int ipt_present(const struct netlock *nl, int family, bool *found, size_t *nr)
{
	char *argv[] = { (char *)tool(family == AF_INET6, true), "-t", "filter", NULL };
	cleanup_free char *saved = NULL;
	char *line, *save = NULL;
	int ret = run_tool(argv, "", 0, &saved);

	*nr = 0;
	if (ret)
		return ret;
	for (line = strtok_r(saved, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok[64], *ts = NULL;
		int n = 0;

		if (strncmp(line, "-A ", 3))
			continue;
		for (char *t = strtok_r(line, " ", &ts); t && n < 64; t = strtok_r(NULL, " ", &ts))
			tok[n++] = t;
		match_saved(nl, family, tok, n, found);
	}
	for (size_t i = 0; i < 2 * nl->nr_conns; i++)
		*nr += found[i];
	return 0;
}

static int ipt_unlock(const struct netlock *nl)
{
	cleanup_free bool *found = calloc(2 * nl->nr_conns + 1, sizeof(*found));
	int families[] = { AF_INET, AF_INET6 }, ret = 0;

	if (!found)
		return -ENOMEM;
	for (int k = 0; k < 2; k++) {
		size_t nr;
		int r;

		if (!has_family(nl, families[k]))
			continue;
		memset(found, 0, 2 * nl->nr_conns * sizeof(*found));
		r = ipt_present(nl, families[k], found, &nr);
		if (!r && nr)
			r = ipt_apply(nl, families[k], 'D', found);
		if (!r)
			pr_info("iptables: %zu %s rule(s) of the lock removed\n", nr,
				families[k] == AF_INET ? "IPv4" : "IPv6");
		if (r && !ret)
			ret = r;
	}
	return ret;
}

const struct netlock_backend netlock_iptables = {
	.name = "iptables",
	.lock = ipt_lock,
	.unlock = ipt_unlock,
};
