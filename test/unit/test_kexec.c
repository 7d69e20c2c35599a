// SPDX-License-Identifier: MIT
/*
 * Unit test of amber kexec's pure pieces (src/kexec/kexec.h): the next
 * kernel's command line (old pkram=, kaslr and nokaslr dropped wherever
 * they are, --append before "pkram=PFN nokaslr", too long refused) and
 * the store name rule.
 */
#define LOG_PREFIX "test: "
#include "kexec/kexec.h"
#include "unit.h"

static const struct {
	const char *name, *cur, *append, *want;
} cmdlines[] = {
	{ "plain", "console=ttyS0 quiet\n", NULL, "console=ttyS0 quiet pkram=42 nokaslr" },
	{ "old pkram dropped", "a pkram=7 b\n", NULL, "a b pkram=42 nokaslr" },
	{ "kaslr and nokaslr dropped", "kaslr a nokaslr b\n", NULL, "a b pkram=42 nokaslr" },
	{ "lookalikes kept", "pkramx=1 nokaslrx kaslr=1 xpkram=2\n", NULL,
	  "pkramx=1 nokaslrx kaslr=1 xpkram=2 pkram=42 nokaslr" },
	{ "append before pkram", "a\n", "b=1 c", "a b=1 c pkram=42 nokaslr" },
	{ "empty append", "a\n", "", "a pkram=42 nokaslr" },
	{ "empty cmdline", "\n", NULL, "pkram=42 nokaslr" },
	{ "spaces squeezed", "  a   b\t c \n", NULL, "a b c pkram=42 nokaslr" },
};

int main(void)
{
	char buf[2048], big[3000];

	unit_init();
	for (size_t i = 0; i < sizeof(cmdlines) / sizeof(cmdlines[0]); i++) {
		int ret = kexec_cmdline(buf, sizeof(buf), cmdlines[i].cur, cmdlines[i].append, 42);

		unit_check(cmdlines[i].name, !ret && !strcmp(buf, cmdlines[i].want),
			   "ret %d, got '%s' want '%s'", ret, buf, cmdlines[i].want);
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	unit_check("too long", kexec_cmdline(buf, sizeof(buf), big, NULL, 42) == -E2BIG,
		   "a 3000-byte command line accepted");
	unit_check("fits exactly", !kexec_cmdline(buf, 17, "", NULL, 42), "16 bytes refused");
	unit_check("one short", kexec_cmdline(buf, 16, "", NULL, 42) == -E2BIG,
		   "15 bytes accepted");

	unit_check("name ok", !kexec_store_name_ok("kx-1.a_B"), "refused");
	unit_check("name 47", !kexec_store_name_ok("12345678901234567890123456789012345678901234567"),
		   "refused");
	unit_check("name 48", kexec_store_name_ok("123456789012345678901234567890123456789012345678"),
		   "accepted");
	unit_check("name empty", kexec_store_name_ok(""), "accepted");
	unit_check("name NULL", kexec_store_name_ok(NULL), "accepted");
	unit_check("name slash", kexec_store_name_ok("a/b"), "accepted");
	unit_check("name dotdot", kexec_store_name_ok(".."), "accepted");
	unit_check("name comma", kexec_store_name_ok("a,b"), "accepted (a mount option separator)");
	return unit_done("test_kexec");
}
