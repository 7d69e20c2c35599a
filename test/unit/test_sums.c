// SPDX-License-Identifier: MIT
/*
 * Unit test of amber.sums (src/image/sums.h): a fixture image set is
 * written with the image writer, summed with img_sums_write(), damaged in
 * one way per case, and img_sums_check() must give the case's result. The
 * list itself is forged too (with a correct list checksum), so the
 * per-line checks are reached and not just the list's own checksum.
 * Version 1 lists (FNV-1a 64, older dumps) must still be checked.
 */
#define LOG_PREFIX "test: "
#include <sys/mman.h>

#include "image/sums.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pstree.pb-c.h"
#include "unit.h"

enum damage {
	D_NONE,
	D_FLIP_IMG,	   /* a byte of core data flipped in pstree.img */
	D_FLIP_MAGIC,	   /* the first byte of mm-1.img flipped */
	D_TRUNC_IMG,	   /* mm-1.img a byte short */
	D_GROW_IMG,	   /* a byte appended to pagemap-1.img */
	D_MISSING_IMG,	   /* mm-1.img removed */
	D_EXTRA_IMG,	   /* an image the dump did not write: not listed, not checked */
	D_FLIP_PAGES,	   /* pages-1.img is not listed (pagemap checksums cover it) */
	D_NO_SUMS,	   /* amber.sums removed: a CRIU dump, warned about only */
	D_DROP_LINE,	   /* one line of amber.sums removed */
	D_FLIP_SUMS,	   /* a hex digit of a listed checksum changed */
	D_BAD_HEADER,	   /* "amber-sums 3" */
	D_V1,		   /* the list rewritten as version 1 (FNV-1a 64): an older dump */
	D_V1_FLIP_IMG,	   /* version 1, and a byte of pstree.img flipped */
	D_V1_BAD_END,	   /* version 1, the list's own checksum is version 2's */
	D_NO_END,	   /* the end line cut off */
	D_TRAILING,	   /* garbage after the end line */
	D_NUL,		   /* a NUL byte inside amber.sums */
	D_FORGE_GOOD,	   /* a consistent list of one true line: the forging works */
	D_FORGE_SLASH,	   /* a consistent list naming sub/../mm-1.img */
	D_FORGE_NOT_IMG,   /* a consistent list naming a file that is not an image */
	D_FORGE_PAGES,	   /* a consistent list naming pages-1.img with a wrong sum: checked */
	D_FORGE_BAD_SUM,   /* a consistent list with a wrong checksum for an image */
	D_FORGE_MALFORMED, /* a consistent list with a line missing its size */
};

static const struct {
	const char *name;
	enum damage damage;
	int want;
	const char *says; /* in the log of the check, or NULL */
} cases[] = {
	{"intact images pass", D_NONE, 0},
	{"flipped byte in an image", D_FLIP_IMG, -EINVAL, "image pstree.img fails its checksum"},
	{"flipped magic", D_FLIP_MAGIC, -EINVAL},
	{"truncated image", D_TRUNC_IMG, -EINVAL},
	{"grown image", D_GROW_IMG, -EINVAL},
	{"missing image", D_MISSING_IMG, -ENOENT},
	{"an unlisted extra image is not checked", D_EXTRA_IMG, 0},
	{"pages files are not listed", D_FLIP_PAGES, 0},
	{"no amber.sums passes (structure checks only)", D_NO_SUMS, 0},
	{"missing entry line in amber.sums", D_DROP_LINE, -EINVAL},
	{"flipped digit in amber.sums", D_FLIP_SUMS, -EINVAL},
	{"bad header", D_BAD_HEADER, -EINVAL, "bad header"},
	{"version 1 list of an older dump passes", D_V1, 0},
	{"version 1 list, flipped byte in an image", D_V1_FLIP_IMG, -EINVAL,
	 "image pstree.img fails its checksum"},
	{"version 1 list with a version 2 end line", D_V1_BAD_END, -EINVAL, "own checksum"},
	{"truncated amber.sums (no end line)", D_NO_END, -EINVAL},
	{"garbage after the end line", D_TRAILING, -EINVAL},
	{"NUL byte in amber.sums", D_NUL, -EINVAL},
	{"forged list of one true line passes", D_FORGE_GOOD, 0},
	{"forged list naming a path outside the directory", D_FORGE_SLASH, -EINVAL},
	{"forged list naming a non-image", D_FORGE_NOT_IMG, -EINVAL},
	{"forged list with a wrong sum for a pages file", D_FORGE_PAGES, -EINVAL},
	{"forged list with a wrong image checksum", D_FORGE_BAD_SUM, -EINVAL},
	{"forged list with a malformed line", D_FORGE_MALFORMED, -EINVAL},
};

static uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* A list with a correct checksum of its own: @body is its lines. */
static int forge(int dirfd, const char *body)
{
	char text[1024];
	int n = snprintf(text, sizeof(text), "amber-sums 2\n%s", body);
	uint64_t all = img_sum(text, n);

	n += snprintf(text + n, sizeof(text) - n, "end %016llx\n", (unsigned long long)all);
	return unit_write_file(dirfd, IMG_SUMS_NAME, text, n);
}

/* The list as an older amber wrote it: version 1, FNV-1a 64 (v2_end: the end line wrong). */
static int forge_v1(int dirfd, bool v2_end)
{
	static const char *const names[] = {"inventory.img", "mm-1.img", "pagemap-1.img",
					    "pstree.img"};
	char text[1024];
	int n = snprintf(text, sizeof(text), "amber-sums 1\n");
	uint64_t all;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		size_t len;
		char *data = read_file_at(dirfd, names[i], &len);

		if (!data)
			return -1;
		n += snprintf(text + n, sizeof(text) - n, "%016llx %zu %s\n",
			      (unsigned long long)fnv1a(0xcbf29ce484222325ULL, data, len), len,
			      names[i]);
		free(data);
	}
	all = v2_end ? img_sum(text, n) : fnv1a(0xcbf29ce484222325ULL, text, n);
	n += snprintf(text + n, sizeof(text) - n, "end %016llx\n", (unsigned long long)all);
	return unit_write_file(dirfd, IMG_SUMS_NAME, text, n);
}

/* An image set: inventory, pstree, mm, a pagemap and its pages. */
static int write_images(int dirfd)
{
	static const struct unit_ent ents[] = {{0x400000, 2, PE_PRESENT}, {}};
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	PstreeEntry ps = PSTREE_ENTRY__INIT;
	MmEntry mm = MM_ENTRY__INIT;

	inv.img_version = CRTOOLS_IMAGES_V1_1;
	ps.pid = 1;
	ps.pgid = 1;
	ps.sid = 1;
	mm.mm_start_code = 0x400000;
	mm.mm_end_code = 0x401000;
	if (img_write_one(dirfd, IMG_INVENTORY, 0, &inv.base) ||
	    img_write_one(dirfd, IMG_PSTREE, 0, &ps.base) ||
	    img_write_one(dirfd, IMG_MM, 1, &mm.base))
		return -1;
	return unit_write_pagemap(dirfd, IMG_PAGEMAP, 1, 1, ents, 1);
}

static char *sums_text(int dirfd, size_t *len)
{
	return read_file_at(dirfd, IMG_SUMS_NAME, len);
}

/* Replaces the first occurrence of @from in amber.sums with @to. */
static int edit_sums(int dirfd, const char *from, const char *to)
{
	size_t len;
	char *t = sums_text(dirfd, &len), *p, out[2048];
	int n, ret = -1;

	if (t && (p = strstr(t, from))) {
		n = snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - t), t, to, p + strlen(from));
		ret = unit_write_file(dirfd, IMG_SUMS_NAME, out, n);
	}
	free(t);
	return ret;
}

/* The line of amber.sums that names @name, without its newline, in @line. */
static int sums_line(int dirfd, const char *name, char *line, size_t size)
{
	size_t len;
	char *t = sums_text(dirfd, &len), *p, *nl;
	int ret = -1;

	for (p = t; p && (nl = strchr(p, '\n')); p = nl + 1) {
		if ((size_t)(nl - p) > strlen(name) && !strncmp(nl - strlen(name), name, strlen(name)) &&
		    nl[-(int)strlen(name) - 1] == ' ') {
			snprintf(line, size, "%.*s", (int)(nl - p), p);
			ret = 0;
			break;
		}
	}
	free(t);
	return ret;
}

static int damage(int dirfd, enum damage d, char *why, size_t len)
{
	char line[256], body[512];
	int fd, ret = 0;

	switch (d) {
	case D_NONE:
		break;
	case D_FLIP_IMG:
		ret = unit_flip_byte(dirfd, "pstree.img", 12);
		break;
	case D_FLIP_MAGIC:
		ret = unit_flip_byte(dirfd, "mm-1.img", 0);
		break;
	case D_TRUNC_IMG: {
		struct stat st;

		fd = openat(dirfd, "mm-1.img", O_RDWR);
		ret = fd < 0 || fstat(fd, &st) || ftruncate(fd, st.st_size - 1) ? -1 : 0;
		close(fd);
		break;
	}
	case D_GROW_IMG:
		fd = openat(dirfd, "pagemap-1.img", O_WRONLY | O_APPEND);
		ret = fd < 0 || write(fd, "", 1) != 1 ? -1 : 0;
		close(fd);
		break;
	case D_MISSING_IMG:
		ret = unlinkat(dirfd, "mm-1.img", 0);
		break;
	case D_EXTRA_IMG:
		ret = unit_write_file(dirfd, "core-7.img", "junk", 4);
		break;
	case D_FLIP_PAGES:
		ret = unit_flip_byte(dirfd, "pages-1.img", 42);
		break;
	case D_NO_SUMS:
		ret = unlinkat(dirfd, IMG_SUMS_NAME, 0);
		break;
	case D_DROP_LINE:
		ret = sums_line(dirfd, "mm-1.img", line, sizeof(line));
		if (!ret) {
			strcat(line, "\n");
			ret = edit_sums(dirfd, line, "");
		}
		break;
	case D_FLIP_SUMS:
		ret = sums_line(dirfd, "pstree.img", line, sizeof(line));
		if (!ret) {
			char to[256];

			snprintf(to, sizeof(to), "%s", line);
			to[3] = to[3] == '0' ? '1' : '0';
			ret = edit_sums(dirfd, line, to);
		}
		break;
	case D_BAD_HEADER:
		ret = edit_sums(dirfd, "amber-sums 2", "amber-sums 3");
		break;
	case D_V1:
		ret = forge_v1(dirfd, false);
		break;
	case D_V1_FLIP_IMG:
		ret = forge_v1(dirfd, false) ?: unit_flip_byte(dirfd, "pstree.img", 12);
		break;
	case D_V1_BAD_END:
		ret = forge_v1(dirfd, true);
		break;
	case D_NO_END: {
		size_t l;
		char *t = sums_text(dirfd, &l), *e = t ? strstr(t, "end ") : NULL;

		ret = e ? unit_write_file(dirfd, IMG_SUMS_NAME, t, e - t) : -1;
		free(t);
		break;
	}
	case D_TRAILING:
		fd = openat(dirfd, IMG_SUMS_NAME, O_WRONLY | O_APPEND);
		ret = fd < 0 || write(fd, "x\n", 2) != 2 ? -1 : 0;
		close(fd);
		break;
	case D_NUL: {
		size_t l;
		char *t = sums_text(dirfd, &l);

		ret = -1;
		if (t && l > 13) {
			t[13] = 0; /* the first digit of the first line */
			ret = unit_write_file(dirfd, IMG_SUMS_NAME, t, l);
		}
		free(t);
		break;
	}
	case D_FORGE_GOOD:
		ret = sums_line(dirfd, "mm-1.img", line, sizeof(line));
		snprintf(body, sizeof(body), "%s\n", line);
		ret = ret ? ret : forge(dirfd, body);
		break;
	case D_FORGE_SLASH:
		ret = sums_line(dirfd, "mm-1.img", line, sizeof(line));
		if (!ret && mkdirat(dirfd, "sub", 0700) == 0) {
			line[strlen(line) - strlen("mm-1.img")] = 0;
			snprintf(body, sizeof(body), "%ssub/../mm-1.img\n", line);
			ret = forge(dirfd, body);
		}
		break;
	case D_FORGE_NOT_IMG:
		ret = unit_write_file(dirfd, "notes.txt", "x", 1);
		snprintf(body, sizeof(body), "%016llx 1 notes.txt\n",
			 (unsigned long long)img_sum("x", 1));
		ret = ret ? ret : forge(dirfd, body);
		break;
	case D_FORGE_PAGES:
		snprintf(body, sizeof(body), "%016llx %lu pages-1.img\n", 0ull, 2 * PAGE_SIZE);
		ret = forge(dirfd, body);
		break;
	case D_FORGE_BAD_SUM:
		ret = sums_line(dirfd, "mm-1.img", line, sizeof(line));
		if (!ret) {
			line[0] = line[0] == 'a' ? 'b' : 'a';
			snprintf(body, sizeof(body), "%s\n", line);
			ret = forge(dirfd, body);
		}
		break;
	case D_FORGE_MALFORMED:
		ret = forge(dirfd, "0123456789abcdef mm-1.img\n");
		break;
	}
	if (ret)
		snprintf(why, len, "can't damage the fixture (%m)");
	return ret;
}

/* img_sums_check() of @dirfd, its error messages in @log. */
static int check_logged(int dirfd, char *log, size_t size)
{
	int level = log_get_level(), mfd = memfd_create("sums-log", MFD_CLOEXEC), ret;
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	if (mfd < 0 || log_init(path, LOG_ERROR, 0))
		return -EBADF;
	ret = img_sums_check(dirfd);
	log_init(NULL, level, 0);
	n = pread(mfd, log, size - 1, 0);
	log[n > 0 ? n : 0] = 0;
	close(mfd);
	return ret;
}

/*
 * An image written through img_open_summed() in pieces of odd sizes and
 * alignments (the sum taken as written, a carry between pieces) must sum
 * to what amber.sums' check reads back from the file.
 */
static void test_summed_as_written(int dirfd)
{
	static const size_t pieces[] = {1, 7, 24, 33, 31, 4096, 5, 70000, 3, 64, 200000, 2};
	static uint8_t data[300000];
	struct img_sums sums = {};
	struct img *img;
	size_t off = 0;
	char line[256];
	int ret = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = i * 131 + (i >> 7);
	img = img_open_summed(&sums, dirfd, IMG_TCP_STREAM, 0x1f);
	for (size_t i = 0; img && !ret && i < ARRAY_SIZE(pieces); i++) {
		ret = img_write_raw(img, data + off, pieces[i]);
		off += pieces[i];
	}
	ret = img ? ret ?: img_close(img) : -1;
	unit_check("summed as written: recorded", !ret && sums.nr == 1, "ret %d nr %d", ret,
		   sums.nr);
	ret = ret ?: img_sums_write_known(dirfd, &sums);
	unit_check("summed as written: matches the file read back", !ret &&
		   !sums_line(dirfd, "tcp-stream-1f.img", line, sizeof(line)) &&
		   sums.nr == 1 && strtoull(line, NULL, 16) == sums.v[0].hash &&
		   !img_sums_check(dirfd), "ret %d line %s", ret, line);
	img_sums_free(&sums);
}

/*
 * Every single-bit flip changes the sum. amber_csum_end() alone misses
 * some (bit 7 of byte 31 of a block: the d << 1), so one of those is
 * also flipped in a file and must be refused.
 */
static void test_bit_flips(int dirfd)
{
	uint8_t data[200];
	char log[1024];
	int missed = 0, ret;
	uint64_t h;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = i * 37 + 11;
	for (size_t len = 1; len <= sizeof(data); len++) {
		h = img_sum(data, len);
		for (size_t bit = 0; bit < len * 8; bit++) {
			data[bit / 8] ^= 1u << bit % 8;
			missed += img_sum(data, len) == h;
			data[bit / 8] ^= 1u << bit % 8;
		}
		missed += len < sizeof(data) && img_sum(data, len + 1) == h;
	}
	unit_check("every single-bit flip changes the sum", !missed, "%d missed", missed);
	ret = unit_write_file(dirfd, "core-5.img", data, 96) ?: img_sums_write(dirfd);
	if (!ret) {
		data[31] ^= 0x80;
		ret = unit_write_file(dirfd, "core-5.img", data, 96);
	}
	ret = ret ?: check_logged(dirfd, log, sizeof(log));
	unit_check("top bit of a block's last byte flipped: refused", ret == -EINVAL &&
		   strstr(log, "core-5.img"), "returned %d, log %s", ret, log);
}

/* What img_sums_write() lists, and how. */
static void test_listing(int dirfd)
{
	size_t len;
	char *t, line[256];
	int ret = img_sums_write(dirfd);

	t = sums_text(dirfd, &len);
	unit_check("written: header first, end last", !ret && t &&
		   !strncmp(t, "amber-sums 2\n", 13) && strstr(t, "\nend ") &&
		   t[len - 1] == '\n', "ret %d text %s", ret, t ? t : "(none)");
	unit_check("written: sorted by name", t && strstr(t, " inventory.img\n") &&
		   strstr(t, " inventory.img\n") < strstr(t, " mm-1.img\n") &&
		   strstr(t, " mm-1.img\n") < strstr(t, " pagemap-1.img\n") &&
		   strstr(t, " pagemap-1.img\n") < strstr(t, " pstree.img\n"),
		   "order in %s", t ? t : "(none)");
	unit_check("written: pages files left out", t && !strstr(t, "pages-1.img"), "listed");
	unit_check("written: size is the file's", !sums_line(dirfd, "pagemap-1.img", line,
							     sizeof(line)) &&
		   strchr(line, ' ') && (uint64_t)atoll(strchr(line, ' ') + 1) > 8,
		   "line %s", line);
	free(t);
}

/* img_sums_write_all() (the CRIU plugin's seal): pages listed and checked. */
static void test_with_pages(int dirfd)
{
	char *t;
	size_t len;
	int ret = img_sums_write_all(dirfd), fd;

	t = sums_text(dirfd, &len);
	unit_check("all: pages files listed", !ret && t && strstr(t, " pages-1.img\n"),
		   "ret %d text %s", ret, t ? t : "(none)");
	unit_check("all: a sealed set checks", !img_sums_check(dirfd), "refused");
	fd = openat(dirfd, "pages-1.img", O_WRONLY);
	unit_check("all: a flipped page byte is refused", fd >= 0 && pwrite(fd, "\x5a", 1, 3) == 1 &&
		   img_sums_check(dirfd) == -EINVAL, "not refused");
	if (fd >= 0)
		close(fd);
	free(t);
}

int main(void)
{
	char root[64];
	int rootfd;

	unit_init();
	rootfd = unit_tmpdir(root, "sums");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[16], why[256] = "";
		int dirfd, ret;

		snprintf(name, sizeof(name), "c%zu", i);
		dirfd = unit_subdir(rootfd, name);
		if (dirfd < 0 || write_images(dirfd) || img_sums_write(dirfd)) {
			unit_check(cases[i].name, false, "can't write the fixture");
			continue;
		}
		if (!damage(dirfd, cases[i].damage, why, sizeof(why))) {
			char log[1024];

			ret = check_logged(dirfd, log, sizeof(log));
			UNIT_EXPECT(why, ret == cases[i].want, "returned %d (%s), want %d", ret,
				    strerror(-ret), cases[i].want);
			UNIT_EXPECT(why, !cases[i].says || strstr(log, cases[i].says),
				    "the log does not say \"%s\": %.160s", cases[i].says, log);
		}
		unit_check(cases[i].name, !why[0], "%s", why);
		close(dirfd);
	}
	{
		int dirfd = unit_subdir(rootfd, "listing");

		if (dirfd >= 0 && !write_images(dirfd))
			test_listing(dirfd);
		else
			unit_check("listing fixture", false, "can't write it");
		close(dirfd);
		dirfd = unit_subdir(rootfd, "with-pages");
		if (dirfd >= 0 && !write_images(dirfd))
			test_with_pages(dirfd);
		else
			unit_check("with-pages fixture", false, "can't write it");
		close(dirfd);
		dirfd = unit_subdir(rootfd, "as-written");
		if (dirfd >= 0)
			test_summed_as_written(dirfd);
		close(dirfd);
		dirfd = unit_subdir(rootfd, "bit-flips");
		if (dirfd >= 0)
			test_bit_flips(dirfd);
		close(dirfd);
		dirfd = unit_subdir(rootfd, "empty");
		unit_check("an empty directory sums and checks", dirfd >= 0 &&
			   !img_sums_write(dirfd) && !img_sums_check(dirfd), "failed");
		close(dirfd);
	}
	close(rootfd);
	unit_rmrf(root);
	return unit_done("test_sums");
}
