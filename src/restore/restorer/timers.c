// SPDX-License-Identifier: MIT
/* POSIX timers in the restorer (timers.h). Raw syscalls only. */
#include "timers.h"
#include "sys.h"

#define PR_TIMER_CREATE_RESTORE_IDS 77 /* not in our 6.1 headers */
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define SIGEV_THREAD_ID 4
#define EINVAL 22

/* The kernel's struct sigevent: 64 bytes. */
struct k_sigevent {
	uint64_t value;
	int32_t signo, notify;
	int32_t tid, pad[11];
};

static long create_one(const struct rst_posix_timer *pt, int restore_ids)
{
	struct k_sigevent ev = { .value = pt->sival, .signo = pt->signo, .notify = pt->notify };
	int32_t id = pt->id;
	long ret;

	if (pt->notify & SIGEV_THREAD_ID)
		ev.tid = pt->tid;
	if (restore_ids) {
		ret = sys3(NR_timer_create, pt->clock_id, &ev, &id);
		return ret ? ret : (id == pt->id ? 0 : -EINVAL);
	}
	/* The ids count up from 0 in a new process: skip to ours. */
	for (;;) {
		ret = sys3(NR_timer_create, pt->clock_id, &ev, &id);
		if (ret)
			return ret;
		if (id == pt->id)
			return 0;
		ret = sys1(NR_timer_delete, id);
		if (ret)
			return ret;
		if (id > pt->id)
			return -EINVAL; /* already used, or the kernel does not count up */
	}
}

long rst_create_posix_timers(struct rst_task_args *a, const char **what)
{
	struct rst_posix_timer *pt = (struct rst_posix_timer *)a->posix_timers;
	int restore_ids;
	long ret = 0;

	if (!a->nr_posix_timers)
		return 0;
	restore_ids = !a->timer_ids_by_count &&
		      !sys2(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON);
	for (uint32_t i = 0; i < a->nr_posix_timers && !ret; i++)
		ret = create_one(&pt[i], restore_ids);
	if (restore_ids)
		sys2(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF);
	if (ret)
		*what = "timer_create with the saved id";
	return ret;
}

long rst_arm_posix_timers(struct rst_task_args *a, const char **what)
{
	struct rst_posix_timer *pt = (struct rst_posix_timer *)a->posix_timers;

	for (uint32_t i = 0; i < a->nr_posix_timers; i++) {
		int64_t its[4] = { pt[i].interval[0], pt[i].interval[1], pt[i].value[0],
				   pt[i].value[1] };
		long ret;

		if (!its[2] && !its[3])
			continue; /* disarmed: nothing to set */
		ret = sys4(NR_timer_settime, pt[i].id, 0, its, 0);
		if (ret) {
			*what = "timer_settime";
			return ret;
		}
	}
	return 0;
}
