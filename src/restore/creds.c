// SPDX-License-Identifier: MIT
/*
 * Whether the caller may give each restored thread its saved credentials
 * (restore/creds.h).
 */
#define LOG_PREFIX "creds: "
#include <sys/resource.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "restore/creds.h"
#include "restore/restore.h"
#include "restore/seccomp.h"

#define CAP_SETGID_BIT (1ULL << 6)
#define CAP_SETUID_BIT (1ULL << 7)
#define CAP_SETPCAP_BIT (1ULL << 8)
#define CAP_SYS_ADMIN_BIT (1ULL << 21)
#define CAP_SYS_RESOURCE_BIT (1ULL << 24)

static struct proc_status self;
static bool self_read;

static const struct proc_status *self_creds(void)
{
	if (!self_read && !proc_parse_status(getpid(), getpid(), &self))
		self_read = true;
	return self_read ? &self : NULL;
}

static uint64_t cap64(const uint32_t *v, size_t n)
{
	return n >= 2 ? (uint64_t)v[1] << 32 | v[0] : 0;
}

bool rst_creds_ids_ours(const CredsEntry *ce)
{
	const struct proc_status *s = self_creds();
	const uint32_t ids[8] = { ce->uid, ce->euid, ce->suid, ce->fsuid,
				  ce->gid, ce->egid, ce->sgid, ce->fsgid };

	if (!s || ce->n_groups != (size_t)s->nr_groups)
		return false;
	for (int i = 0; i < 4; i++)
		if (ids[i] != s->uid[i] || ids[4 + i] != s->gid[i])
			return false;
	for (size_t i = 0; i < ce->n_groups; i++)
		if (ce->groups[i] != s->groups[i])
			return false;
	return true;
}

static int check_one(pid_t tid, const CredsEntry *ce, const struct proc_status *s)
{
	uint64_t prm = cap64(ce->cap_prm, ce->n_cap_prm), bnd = cap64(ce->cap_bnd, ce->n_cap_bnd);
	uint64_t more = (prm | cap64(ce->cap_eff, ce->n_cap_eff)) & ~s->cap_prm;

	/* capset() takes inheritable ones from the old inheritable or permitted set. */
	more |= cap64(ce->cap_inh, ce->n_cap_inh) & ~(s->cap_inh | s->cap_prm);

	if (!rst_creds_ids_ours(ce) &&
	    (s->cap_eff & (CAP_SETUID_BIT | CAP_SETGID_BIT)) != (CAP_SETUID_BIT | CAP_SETGID_BIT)) {
		pr_err("thread %d ran as uid %u gid %u (%zu groups), the caller is uid %u gid %u "
		       "(%d groups): restoring other ids needs CAP_SETUID and CAP_SETGID\n",
		       tid, ce->uid, ce->gid, ce->n_groups, s->uid[0], s->gid[0], s->nr_groups);
		return -EPERM;
	}
	if (more) {
		pr_err("thread %d had capabilities %#llx the caller does not hold: refused\n", tid,
		       (unsigned long long)more);
		return -EPERM;
	}
	if (ce->n_cap_bnd >= 2 && (s->cap_bnd & ~bnd) && !(s->cap_eff & CAP_SETPCAP_BIT)) {
		pr_err("thread %d had a smaller bounding set (%#llx, the caller %#llx): "
		       "dropping from it needs CAP_SETPCAP\n",
		       tid, (unsigned long long)bnd, (unsigned long long)s->cap_bnd);
		return -EPERM;
	}
	return 0;
}

/*
 * A task forked by amber starts with amber's hard limits; the restorer
 * sets the saved ones with prlimit(), which can't raise a hard limit
 * without CAP_SYS_RESOURCE (root may lack it).
 */
static int check_rlimits(const struct rst_task *t, const struct proc_status *s)
{
	const TaskRlimitsEntry *rl = t->cores[0] && t->cores[0]->tc ? t->cores[0]->tc->rlimits : NULL;

	if (!rl || (s->cap_eff & CAP_SYS_RESOURCE_BIT))
		return 0;
	for (size_t r = 0; r < rl->n_rlimits; r++) {
		struct rlimit ours;

		if (getrlimit((int)r, &ours) || rl->rlimits[r]->max <= ours.rlim_max)
			continue;
		pr_err("pid %d had a hard limit %d of %llu, above the caller's %llu: "
		       "raising it needs CAP_SYS_RESOURCE\n", t->pid, (int)r,
		       (unsigned long long)rl->rlimits[r]->max, (unsigned long long)ours.rlim_max);
		return -EPERM;
	}
	return 0;
}

int rst_check_creds(struct rst_ctx *rc)
{
	const struct proc_status *s = self_creds();

	if (!s) {
		pr_err("can't read the caller's credentials\n");
		return -EIO;
	}
	/* Said here, before the root is forked and fails to be traced. */
	if (rst_has_seccomp(rc) && !(s->cap_eff & CAP_SYS_ADMIN_BIT)) {
		pr_err("the tree is under seccomp: restoring it traces it with "
		       "PTRACE_O_SUSPEND_SECCOMP, which needs CAP_SYS_ADMIN\n");
		return -EPERM;
	}
	for (int k = 0; k < rc->nr_tasks; k++) {
		struct rst_task *t = &rc->tasks[k];
		int ret = t->zombie ? 0 : check_rlimits(t, s);

		if (ret)
			return ret;
		for (int i = 0; i < t->nr_threads; i++) {
			const ThreadCoreEntry *tc = t->cores[i] ? t->cores[i]->thread_core : NULL;

			/*
			 * A root cloned in a new user namespace holds every
			 * capability of it, a full bounding set and the right to
			 * take any id it maps (ns_user.c checked them): the
			 * saved ones are all of that namespace.
			 */
			if (!tc || !tc->creds || rc->ns.user)
				continue;
			ret = check_one(t->pe->threads[i], tc->creds, s);
			if (ret)
				return ret;
		}
	}
	return 0;
}
