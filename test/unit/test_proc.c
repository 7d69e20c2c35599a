// SPDX-License-Identifier: MIT
/*
 * Unit test of the /proc parsers (src/base/proc.h). They take a pid and
 * read /proc/PID/..., so the fixture text is served from a tmpfs mounted
 * over /proc in a private mount namespace of a child process (root only;
 * without it those cases are skipped, said so, and the live ones still
 * run): stat with a comm full of parens, status, smaps with every VmFlag,
 * task lists with the leader not the smallest tid, children. Then the
 * same parsers on this very process, against what the syscalls say.
 */
#define LOG_PREFIX "test: "
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "base/proc.h"
#include "unit.h"

static int put(const char *path, const char *text)
{
	char dir[256], *p;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	for (p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		mkdir(dir, 0755);
		*p = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_full(fd, text, strlen(text))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * A /proc/PID/stat line: fields 4..52 are @nfields numbers, field n
 * worth n * 1000 + 7 except those the parser keeps, set below.
 */
static void stat_line(char *buf, size_t len, int pid, const char *comm, char state, int nfields)
{
	int n = snprintf(buf, len, "%d (%s) %c", pid, comm, state);

	for (int f = 4; f < 4 + nfields; f++) {
		unsigned long long v = f * 1000ull + 7;

		if (f == 4)
			v = 1;
		else if (f == 5 || f == 6)
			v = pid;
		else if (f == 20)
			v = 3;
		else if (f == 52)
			v = 9;
		else if (f == 28)
			v = 0x7ffd12345000ull;
		n += snprintf(buf + n, len - n, " %llu", v);
	}
	snprintf(buf + n, len - n, "\n");
}

static void test_stat(void)
{
	static const struct {
		const char *name;
		int pid;
		const char *comm; /* NULL: no parens at all */
		char state;
		int nfields;
		int want;
	} t[] = {
		{"stat: plain", 4301, "cat", 'S', 49, 0},
		{"stat: comm with spaces and parens", 4302, "a (b) c)", 'R', 49, 0},
		{"stat: comm of one ')'", 4303, ")", 'D', 49, 0},
		{"stat: zombie", 4304, "z", 'Z', 49, 0},
		{"stat: newer kernel, more fields", 4305, "x", 'S', 60, 0},
		{"stat: 48 fields refused", 4306, "short", 'S', 48, -EINVAL},
		{"stat: no parens refused", 4307, NULL, 'S', 49, -EINVAL},
		{"stat: no such pid", 4399, "", 'S', 0, -ENOENT},
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		char line[1024], path[64], why[256] = "";
		struct proc_stat st;
		int ret;

		snprintf(path, sizeof(path), "/proc/%d/stat", t[i].pid);
		if (!t[i].comm)
			snprintf(line, sizeof(line), "%d nocomm S 1 2 3\n", t[i].pid);
		else
			stat_line(line, sizeof(line), t[i].pid, t[i].comm, t[i].state, t[i].nfields);
		if (t[i].want != -ENOENT && put(path, line))
			snprintf(why, sizeof(why), "can't write the fixture");
		ret = proc_parse_stat(t[i].pid, &st);
		UNIT_EXPECT(why, ret == t[i].want, "returned %d, want %d", ret, t[i].want);
		if (!ret) {
			UNIT_EXPECT(why, !strcmp(st.comm, t[i].comm), "comm '%s'", st.comm);
			UNIT_EXPECT(why, st.state == t[i].state, "state %c", st.state);
			UNIT_EXPECT(why, st.ppid == 1 && st.pgid == t[i].pid && st.sid == t[i].pid,
				    "ppid %d pgid %d sid %d", st.ppid, st.pgid, st.sid);
			UNIT_EXPECT(why, st.flags == 9007 && st.nr_threads == 3 && st.exit_code == 9,
				    "flags %u threads %d exit %d", st.flags, st.nr_threads,
				    st.exit_code);
			UNIT_EXPECT(why, st.start_code == 26007 && st.end_code == 27007 &&
				    st.start_stack == 0x7ffd12345000ull, "code/stack fields");
			UNIT_EXPECT(why, st.start_data == 45007 && st.end_data == 46007 &&
				    st.start_brk == 47007 && st.arg_start == 48007 &&
				    st.arg_end == 49007 && st.env_start == 50007 && st.env_end == 51007,
				    "data/brk/arg/env fields");
		}
		unit_check(t[i].name, !why[0], "%s", why);
	}
}

static const char status_full[] =
	"Name:\tcat\nUmask:\t0027\nState:\tS (sleeping)\nTgid:\t4400\nPid:\t4401\n"
	"Uid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\nFDSize:\t64\n"
	"Groups:\t4 24 27 1000 \nNStgid:\t4400\nVmRSS:\t  1024 kB\n"
	"SigQ:\t0/63452\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"
	"SigBlk:\t0000000000010000\nSigIgn:\t0000000000001006\nSigCgt:\t0000000180000002\n"
	"CapInh:\t0000000000000001\nCapPrm:\t000001ffffffffff\nCapEff:\t000001fffffffffe\n"
	"CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000400\nNoNewPrivs:\t1\n"
	"Seccomp:\t2\nSeccomp_filters:\t1\nSpeculation_Store_Bypass:\tthread vulnerable\n";

static void test_status(void)
{
	char many[1024] = "Groups:\t";
	const char *no_groups = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nUmask:\t0777\n";
	struct proc_status st;
	char why[256] = "";
	int ret;

	for (int g = 0; g < 70; g++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%d ", 2000 + g);
	strcat(many, "\n");
	if (put("/proc/4400/task/4401/status", status_full) ||
	    put("/proc/4400/task/4402/status", no_groups) ||
	    put("/proc/4400/task/4403/status", many)) {
		unit_check("status fixtures", false, "can't write them");
		return;
	}
	ret = proc_parse_status(4400, 4401, &st);
	UNIT_EXPECT(why, !ret, "returned %d", ret);
	UNIT_EXPECT(why, st.uid[0] == 1000 && st.uid[1] == 1001 && st.uid[2] == 1002 &&
		    st.uid[3] == 1003 && st.gid[0] == 100 && st.gid[3] == 103, "uids/gids");
	UNIT_EXPECT(why, st.nr_groups == 4 && st.groups[0] == 4 && st.groups[3] == 1000,
		    "%d groups", st.nr_groups);
	UNIT_EXPECT(why, st.cap_inh == 1 && st.cap_prm == 0x1ffffffffffull &&
		    st.cap_eff == 0x1fffffffffeull && st.cap_bnd == 0x1ffffffffffull &&
		    st.cap_amb == 0x400, "caps");
	UNIT_EXPECT(why, st.no_new_privs == 1 && st.seccomp == 2,
		    "no_new_privs %d seccomp %d (Seccomp_filters is not Seccomp)",
		    st.no_new_privs, st.seccomp);
	UNIT_EXPECT(why, st.umask == 027, "umask %o (octal)", st.umask);
	UNIT_EXPECT(why, st.sig_blk == 0x10000 && st.sig_ign == 0x1006 &&
		    st.sig_cgt == 0x180000002ull, "signal masks");
	unit_check("status: every field", !why[0], "%s", why);

	ret = proc_parse_status(4400, 4402, &st);
	unit_check("status: an empty Groups line", !ret && st.nr_groups == 0 && st.umask == 0777 &&
		   !st.uid[0] && !st.cap_eff, "ret %d groups %d", ret, st.nr_groups);
	ret = proc_parse_status(4400, 4403, &st);
	unit_check("status: more than 64 groups are cut at 64",
		   !ret && st.nr_groups == 64 && st.groups[63] == 2063, "ret %d groups %d", ret,
		   st.nr_groups);
	ret = proc_parse_status(4400, 4404, &st);
	unit_check("status: no such thread", ret == -ENOENT, "returned %d", ret);
}

static const char smaps_text[] =
	"00400000-00452000 r-xp 00000000 08:02 173521                     /usr/bin/dbus-daemon\n"
	"Size:                328 kB\n"
	"KernelPageSize:        4 kB\n"
	"MMUPageSize:           4 kB\n"
	"VmFlags: rd ex mr mw me dw sd \n"
	"00651000-00652000 rw-p 00051000 08:02 173521                     /usr/bin/dbus-daemon\n"
	"KernelPageSize:        4 kB\n"
	"VmFlags: rd wr mr mw me dw ac sd \n"
	"0165e000-01680000 rw-p 00000000 00:00 0                          [heap]\n"
	"KernelPageSize:        4 kB\n"
	"VmFlags: rd wr mr mw me ac sd \n"
	"7f0000000000-7f0000200000 rw-s 00000000 00:0f 1234               /anon_hugepage (deleted)\n"
	"KernelPageSize:     2048 kB\n"
	"VmFlags: rd wr sh mr mw me ms de ht sd \n"
	"7f0000400000-7f0000401000 ---p 00000000 00:00 0 \n"
	"KernelPageSize:        4 kB\n"
	"VmFlags: mr mw me dc dd wf lo io pf sr rr gd hg nh mg sd\n"
	"7f0000500000-7f0000501000 r--s 00002000 fd:01 99                 /tmp/a file (deleted)\n"
	"KernelPageSize:        4 kB\n"
	"7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                  [stack]\n"
	"KernelPageSize:        4 kB\n"
	"VmFlags: rd wr mr mw me gd ac \n";

static void test_smaps(void)
{
	static const struct {
		uint64_t start, end, pgoff;
		unsigned prot;
		bool shared;
		unsigned maj, min;
		uint64_t ino;
		const char *path;
		unsigned long vmflags, page_kb;
	} want[] = {
		{0x400000, 0x452000, 0, PROT_READ | PROT_EXEC, false, 8, 2, 173521,
		 "/usr/bin/dbus-daemon", VMF_MAYWRITE, 4},
		{0x651000, 0x652000, 0x51000, PROT_READ | PROT_WRITE, false, 8, 2, 173521,
		 "/usr/bin/dbus-daemon", VMF_MAYWRITE, 4},
		{0x165e000, 0x1680000, 0, PROT_READ | PROT_WRITE, false, 0, 0, 0, "[heap]",
		 VMF_MAYWRITE, 4},
		{0x7f0000000000, 0x7f0000200000, 0, PROT_READ | PROT_WRITE, true, 0, 0xf, 1234,
		 "/anon_hugepage (deleted)", VMF_MAYSHARE | VMF_HUGETLB | VMF_MAYWRITE, 2048},
		{0x7f0000400000, 0x7f0000401000, 0, 0, false, 0, 0, 0, NULL,
		 VMF_DONTCOPY | VMF_DONTDUMP | VMF_WIPEONFORK | VMF_LOCKED | VMF_IO | VMF_PFNMAP |
			 VMF_SEQ_READ | VMF_RAND_READ | VMF_GROWSDOWN | VMF_HUGEPAGE |
			 VMF_NOHUGEPAGE | VMF_MERGEABLE | VMF_MAYWRITE,
		 4},
		{0x7f0000500000, 0x7f0000501000, 0x2000, PROT_READ, true, 0xfd, 1, 99,
		 "/tmp/a file (deleted)", 0, 4},
		{0x7ffc00000000, 0x7ffc00021000, 0, PROT_READ | PROT_WRITE, false, 0, 0, 0, "[stack]",
		 VMF_GROWSDOWN | VMF_MAYWRITE, 4},
	};
	struct proc_vma *v = NULL;
	int n, ret;

	if (put("/proc/4500/smaps", smaps_text) ||
	    put("/proc/4501/smaps", "00400000-00452000 r-xp zz 08:02 1 /x\n") ||
	    put("/proc/4502/smaps", "")) {
		unit_check("smaps fixtures", false, "can't write them");
		return;
	}
	n = proc_parse_smaps(4500, &v);
	unit_check("smaps: VMA count", n == (int)ARRAY_SIZE(want), "got %d", n);
	for (int i = 0; i < n && i < (int)ARRAY_SIZE(want); i++) {
		char name[64], why[256] = "";

		snprintf(name, sizeof(name), "smaps: VMA %d (%s)", i,
			 want[i].path ? want[i].path : "anonymous");
		UNIT_EXPECT(why, v[i].start == want[i].start && v[i].end == want[i].end &&
			    v[i].pgoff == want[i].pgoff, "range %#llx-%#llx off %#llx",
			    (unsigned long long)v[i].start, (unsigned long long)v[i].end,
			    (unsigned long long)v[i].pgoff);
		UNIT_EXPECT(why, v[i].prot == want[i].prot && v[i].shared == want[i].shared,
			    "prot %u shared %d", v[i].prot, v[i].shared);
		UNIT_EXPECT(why, v[i].dev_major == want[i].maj && v[i].dev_minor == want[i].min &&
			    v[i].ino == want[i].ino, "dev %x:%x ino %llu", v[i].dev_major,
			    v[i].dev_minor, (unsigned long long)v[i].ino);
		UNIT_EXPECT(why, want[i].path ? v[i].path && !strcmp(v[i].path, want[i].path)
					      : !v[i].path, "path '%s'", v[i].path ? v[i].path : "(null)");
		UNIT_EXPECT(why, v[i].vmflags == want[i].vmflags, "vmflags %#lx, want %#lx",
			    v[i].vmflags, want[i].vmflags);
		UNIT_EXPECT(why, v[i].page_kb == want[i].page_kb, "page_kb %lu", v[i].page_kb);
		unit_check(name, !why[0], "%s", why);
	}
	if (n > 0)
		proc_vmas_free(v, n);
	ret = proc_parse_smaps(4501, &v);
	unit_check("smaps: malformed line refused", ret == -EINVAL, "returned %d", ret);
	ret = proc_parse_smaps(4502, &v);
	unit_check("smaps: no VMAs", ret == 0, "returned %d", ret);
	if (ret == 0)
		free(v);
	ret = proc_parse_smaps(4599, &v);
	unit_check("smaps: no such pid", ret == -ENOENT, "returned %d", ret);
}

static const char limits_two[] =
	"Limit                     Soft Limit           Hard Limit           Units     \n"
	"Max cpu time              unlimited            unlimited            seconds   \n"
	"Max file size             18446744073709551614 unlimited            bytes     \n";

static void test_limits(void)
{
	struct rlimit lim[4];
	int n;

	if (put("/proc/4800/limits", limits_two) ||
	    put("/proc/4801/limits", "Max cpu time              unlimited unlimited\n") ||
	    put("/proc/4802/limits", "Limit      Soft\nMax cpu time              12x 13\n")) {
		unit_check("limits fixtures", false, "can't write them");
		return;
	}
	n = proc_parse_limits(4800, lim, 4);
	unit_check("limits: unlimited and a 20-digit value", n == 2 &&
		   lim[0].rlim_cur == RLIM_INFINITY && lim[0].rlim_max == RLIM_INFINITY &&
		   lim[1].rlim_cur == 18446744073709551614ull && lim[1].rlim_max == RLIM_INFINITY,
		   "n %d", n);
	n = proc_parse_limits(4800, lim, 1);
	unit_check("limits: no more than asked", n == 1, "n %d", n);
	n = proc_parse_limits(4801, lim, 4);
	unit_check("limits: no header line", n == -EBADMSG, "n %d", n);
	n = proc_parse_limits(4802, lim, 4);
	unit_check("limits: a value with junk", n == -EBADMSG, "n %d", n);
	n = proc_parse_limits(4803, lim, 4);
	unit_check("limits: no such pid", n == -ENOENT, "n %d", n);
}

static void test_tasks(void)
{
	pid_t *ids = NULL;
	int n;

	/* the leader, 4600, is not the smallest tid */
	if (put("/proc/4600/task/4650/children", "4700 4702 ") ||
	    put("/proc/4600/task/4600/children", "4701 ") ||
	    put("/proc/4600/task/4590/children", "") ||
	    put("/proc/4610/task/4610/children", "")) {
		unit_check("task fixtures", false, "can't write them");
		return;
	}
	n = proc_list_threads(4600, &ids);
	unit_check("threads: leader first, then by tid",
		   n == 3 && ids[0] == 4600 && ids[1] == 4590 && ids[2] == 4650,
		   "got %d: %d %d %d", n, n > 0 ? ids[0] : 0, n > 1 ? ids[1] : 0,
		   n > 2 ? ids[2] : 0);
	free(ids);
	ids = NULL;
	n = proc_list_children(4600, &ids);
	unit_check("children: of every thread, sorted",
		   n == 3 && ids[0] == 4700 && ids[1] == 4701 && ids[2] == 4702,
		   "got %d: %d %d %d", n, n > 0 ? ids[0] : 0, n > 1 ? ids[1] : 0,
		   n > 2 ? ids[2] : 0);
	free(ids);
	ids = NULL;
	n = proc_list_children(4610, &ids);
	unit_check("children: none", n == 0, "got %d", n);
	free(ids);
	n = proc_list_threads(4699, &ids);
	unit_check("threads: no such pid", n == -ENOENT, "got %d", n);
}

/* In a child: tmpfs over /proc in a mount namespace of its own. */
static void test_fixtures(void)
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("unit-proc", "/proc", "tmpfs", 0, "mode=0755")) {
			printf("skip /proc fixtures: can't mount over /proc here (%m): root only\n");
			fflush(stdout);
			_exit(0);
		}
		unit_nok = unit_nfail = 0;
		test_stat();
		test_status();
		test_smaps();
		test_tasks();
		test_limits();
		/* the real /proc again, for the sanitizers at exit */
		umount2("/proc", MNT_DETACH);
		printf("/proc fixtures: %d ok, %d failed\n", unit_nok, unit_nfail);
		fflush(stdout);
		exit(unit_nfail > 100 ? 100 : unit_nfail);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
		unit_check("/proc fixtures child", false, "did not exit normally");
		return;
	}
	unit_nfail += WEXITSTATUS(status);
}

/* The parsers on this very process, checked against the syscalls. */
static void test_live(void)
{
	struct proc_stat st;
	struct proc_status ss;
	struct proc_vma *v = NULL;
	void *map = mmap(NULL, 3 * PAGE_SIZE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t kid, *kids = NULL;
	int n, ret, found = 0;

	ret = proc_parse_stat(getpid(), &st);
	unit_check("live stat: this process", !ret && st.ppid == getppid() &&
		   st.pgid == getpgrp() && st.sid == getsid(0) && st.state == 'R' &&
		   !strcmp(st.comm, "test_proc") && st.nr_threads >= 1,
		   "ret %d ppid %d comm %s state %c", ret, st.ppid, st.comm, st.state);
	ret = proc_parse_status(getpid(), getpid(), &ss);
	unit_check("live status: this process", !ret && ss.uid[0] == getuid() &&
		   ss.uid[1] == geteuid() && ss.gid[0] == getgid(), "ret %d uid %u", ret,
		   ss.uid[0]);
	{
		struct rlimit lim[RLIM_NLIMITS], want;

		n = proc_parse_limits(getpid(), lim, RLIM_NLIMITS);
		found = n == RLIM_NLIMITS;
		for (int i = 0; found && i < n; i++)
			found = !getrlimit(i, &want) && want.rlim_cur == lim[i].rlim_cur &&
				want.rlim_max == lim[i].rlim_max;
		unit_check("live limits: as getrlimit() says", found, "n %d", n);
	}
	found = 0;
	n = proc_parse_smaps(getpid(), &v);
	for (int i = 0; i < n; i++)
		if (v[i].start == (uintptr_t)map && v[i].end == (uintptr_t)map + 3 * PAGE_SIZE &&
		    v[i].prot == PROT_READ && v[i].shared && v[i].page_kb == 4)
			found++;
	unit_check("live smaps: a fresh shared mapping", n > 0 && found == 1, "n %d found %d", n,
		   found);
	if (n > 0)
		proc_vmas_free(v, n);
	munmap(map, 3 * PAGE_SIZE);
	kid = fork();
	if (kid == 0) {
		pause();
		_exit(0);
	}
	n = proc_list_children(getpid(), &kids);
	found = 0;
	for (int i = 0; i < n; i++)
		found += kids[i] == kid;
	unit_check("live children: a forked child", found == 1, "n %d", n);
	free(kids);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
}

/* next_line() (base/util.h), which the fdinfo parsers walk their text with. */
static void test_next_line(void)
{
	char text[] = "pos:\t0\n\nflags:\t02\nlast", empty[] = "", *rest = text, *l;
	const char *want[] = { "pos:\t0", "", "flags:\t02", "last" };
	int n = 0, bad = 0;

	while ((l = next_line(&rest)) && n < 5)
		bad += n < 4 ? !!strcmp(l, want[n++]) : ++n;
	unit_check("next_line: every line, the empty one and the unterminated last", n == 4 && !bad,
		   "%d lines, %d wrong", n, bad);
	rest = empty;
	unit_check("next_line: empty text", !next_line(&rest), "a line from nothing");
}

int main(void)
{
	unit_init();
	test_next_line();
	test_fixtures();
	test_live();
	return unit_done("test_proc");
}
