// SPDX-License-Identifier: GPL-2.0
/*
 * SysV IPC objects in an IPC namespace of the test's own: it unshares one
 * before test_daemon, unless --in-ns=1 (started by `unshare --ipc`) or
 * --host=1 (amber's namespace, where only the attaches are the tree's:
 * A and B are made there, keyed, and removed at the end). After restore
 * every object has its saved id, key, mode and data:
 *   shm A: attached, a middle page made read-only (three VMAs), by a
 *          child too (inherited); contents shared with a fresh attach of
 *          the same id and with the child
 *   shm B: not attached, contents only
 *   shm C: attached, then removed (IPC_RMID): it lives while attached;
 *   shm D: with --reuse-key=1, made after with C's old key (C's attach is
 *          then named /SYSV00000000 after restore: the runner compares no maps)
 *   sem:   five values;  msg: four messages of three types, in order.
 */
#include <sched.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <signal.h>

#include "zdtm.h"

#define PG 4096
#define KEY(n) (0x414d4200 + (n))
#define A_SIZE (3 * PG + 100)
#define BIG 5000

static const unsigned short sem_vals[5] = { 0, 1, 2, 300, 32767 };
static const struct { long type; const char *text; } msgs[4] = {
	{ 3, "first" }, { 1, "second" }, { 7, NULL /* BIG bytes */ }, { 1, "fourth" },
};

/* The child's orders, in anonymous shared memory. */
struct ctl {
	volatile int go;
	uint32_t crc;
};

/* The child reads what the parent wrote into A after the restore, through its own attach. */
static int child(struct ctl *ctl, char *ma)
{
	futex_wait_while(&ctl->go, 0);
	return datachk(ma + 2 * PG, PG, &ctl->crc) ? 1 : 0;
}

struct big_msg {
	long type;
	char text[BIG];
};

/* Ids far from a new namespace's first ones, so keeping them means something. */
static int next_id(const char *kind, int id)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", kind);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d", id) < 0 || fclose(f))
		return -1;
	return 0;
}

static int check_shm(int id, key_t key, unsigned int mode, size_t size, void *mem, uint32_t crc)
{
	struct shmid_ds ds;

	if (shmctl(id, IPC_STAT, &ds))
		return fail_errno("shm %d stat", id), -1;
	if (ds.shm_perm.__key != key || (ds.shm_perm.mode & 0777) != mode || ds.shm_segsz != size)
		return fail("shm %d: key %#x mode %o size %zu", id, ds.shm_perm.__key,
			    ds.shm_perm.mode, ds.shm_segsz), -1;
	if (datachk(mem, size & ~7UL, &crc))
		return fail("shm %d: contents differ", id), -1;
	return 0;
}

static int check_msgs(int id)
{
	struct big_msg m;

	for (int i = 0; i < 4; i++) {
		ssize_t n = msgrcv(id, &m, sizeof(m.text), 0, IPC_NOWAIT);
		size_t want = msgs[i].text ? strlen(msgs[i].text) : BIG;

		if (n != (ssize_t)want || m.type != msgs[i].type ||
		    (msgs[i].text && memcmp(m.text, msgs[i].text, n)) ||
		    (!msgs[i].text && (m.text[0] != 'x' || m.text[BIG - 1] != 'y')))
			return fail("message %d: %zd bytes, type %ld", i, n, m.type), -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int host, own, a, b, c = -1, d = -1, sem = -1, msq = -1;
	uint32_t crc_a = 1, crc_b = 2, crc_c = 3, crc2;
	unsigned short vals[5];
	char *ma, *mb, *mc = NULL, *again;
	struct shmid_ds ds;
	struct big_msg m;
	struct ctl *ctl;
	int status = 0;
	pid_t kid;

	test_init(argc, argv);
	host = test_opt("host") != NULL;
	own = !host && !test_opt("in-ns");
	if (own && unshare(CLONE_NEWIPC))
		return fail_errno("unshare(CLONE_NEWIPC)"), 1;
	if (!host && (next_id("shm", 70000) || next_id("sem", 54321) || next_id("msg", 99999)))
		return fail_errno("kernel.*_next_id"), 1;
	a = shmget(KEY(1), A_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	b = shmget(host ? KEY(2) : IPC_PRIVATE, 2 * PG, IPC_CREAT | IPC_EXCL | 0600);
	ma = shmat(a, NULL, 0);
	mb = shmat(b, NULL, 0);
	if (a < 0 || b < 0 || ma == (void *)-1 || mb == (void *)-1)
		return fail_errno("shm setup"), 1;
	datagen(ma, A_SIZE, &crc_a);
	datagen(mb, 2 * PG, &crc_b);
	shmdt(mb);
	if (mprotect(ma + PG, PG, PROT_READ))
		return fail_errno("mprotect"), 1;
	if (!host) {
		c = shmget(KEY(3), PG, IPC_CREAT | 0604);
		mc = shmat(c, NULL, 0);
		sem = semget(KEY(4), 5, IPC_CREAT | 0660);
		msq = msgget(KEY(5), IPC_CREAT | 0620);
		if (c < 0 || mc == (void *)-1 || sem < 0 || msq < 0)
			return fail_errno("ipc setup"), 1;
		datagen(mc, PG, &crc_c);
		if (shmctl(c, IPC_RMID, NULL) || semctl(sem, 0, SETALL, sem_vals))
			return fail_errno("rmid/setall"), 1;
		d = test_opt("reuse-key") ? shmget(KEY(3), PG, IPC_CREAT | IPC_EXCL | 0600) : -2;
		if (d == -1)
			return fail_errno("shm D with C's old key"), 1;
		for (int i = 0; i < 4; i++) {
			size_t len = msgs[i].text ? strlen(msgs[i].text) : BIG;

			m.type = msgs[i].type;
			if (msgs[i].text)
				memcpy(m.text, msgs[i].text, len);
			else
				memset(m.text, 'x', BIG - 1), m.text[BIG - 1] = 'y';
			if (msgsnd(msq, &m, len, IPC_NOWAIT))
				return fail_errno("msgsnd %d", i), 1;
		}
	}
	ctl = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		return fail_errno("mmap"), 1;
	kid = fork();
	if (kid < 0)
		return fail_errno("fork"), 1;
	if (kid == 0)
		_exit(child(ctl, ma));
	test_msg("ids: shm %d %d %d %d sem %d msg %d\n", a, b, c, d, sem, msq);
	test_daemon();
	test_waitsig();


	if (shmget(KEY(1), 0, 0) != a || check_shm(a, KEY(1), 0640, A_SIZE, ma, crc_a)) {
		kill(kid, SIGKILL);
		return fail("shm A is not back as %d", a), 1;
	}
	/* The child sees what the parent writes into A now. */
	ctl->crc = 77;
	datagen(ma + 2 * PG, PG, &ctl->crc);
	ctl->go = 1;
	futex_wake_all(&ctl->go);
	if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status) || WEXITSTATUS(status))
		return fail("the child does not share shm A (status %#x)", status), 1;
	/* Attached read-write: its read-only page can be made writable again. */
	if (mprotect(ma + PG, PG, PROT_READ | PROT_WRITE))
		return fail_errno("shm A's read-only page can't be made writable"), 1;
	mb = shmat(b, NULL, SHM_RDONLY);
	if (mb == (void *)-1 || check_shm(b, host ? KEY(2) : IPC_PRIVATE, 0600, 2 * PG, mb, crc_b))
		return fail("shm B is not back as %d", b), 1;
	/* Still one object: what A's attach writes, a new attach reads. */
	again = shmat(a, NULL, 0);
	crc2 = 42;
	datagen(ma, PG, &crc2);
	if (again == (void *)-1 || datachk(again, PG, &crc2))
		return fail("shm A's attach is not shared with the segment"), 1;
	if (host) {
		/* The host's namespace outlives the test: leave nothing behind. */
		shmctl(a, IPC_RMID, NULL);
		shmctl(b, IPC_RMID, NULL);
		pass();
		return 0;
	}
	if (shmctl(c, IPC_STAT, &ds) || !(ds.shm_perm.mode & SHM_DEST) || ds.shm_perm.__key ||
	    datachk(mc, PG, &crc_c))
		return fail("shm C is not back removed-but-attached as %d", c), 1;
	if (d != -2 && shmget(KEY(3), 0, 0) != d)
		return fail("shm D is not back as %d with C's old key", d), 1;
	shmdt(mc);
	if (shmctl(c, IPC_STAT, &ds) == 0)
		return fail("shm C outlived its last detach"), 1;
	if (semget(KEY(4), 0, 0) != sem || semctl(sem, 0, GETALL, vals) ||
	    memcmp(vals, sem_vals, sizeof(vals)))
		return fail("semaphore set is not back as %d with its values", sem), 1;
	if (msgget(KEY(5), 0) != msq || check_msgs(msq))
		return fail("message queue is not back as %d with its messages", msq), 1;
	pass();
	return 0;
}
