/* test_config: settings from the command line and the file, the lexer. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf/config.h"

static const struct {
	const char *key, *value;
} good[] = {
	{ "node-id", "1" }, { "node-id", "4294967294" }, { "node-id", "00042" },
	{ "listen", "10.0.0.1" }, { "listen", "[::1]:1234" }, { "listen", "fd00::1" },
	{ "partner", "10.0.0.2:7000" },
	{ "transport", "tcp" }, { "transport", "rdma" },
	{ "device", "mlx5_0" }, { "device", "rxe0" }, { "device", "" },
	{ "device", "en-p1.s0" },
	{ "clients", "/etc/ccm/clients.d" }, { "clients", "relative/dir" },
	{ "state-dir", "/run/ccm" }, { "psk-file", "" }, { "psk-file", "/etc/ccm/psk" },
	{ "psk-accept-file", "/etc/ccm/psk.next" },
	{ "cluster", "a" }, { "cluster", "storage-a.1" },
	{ "timeout", "0" }, { "timeout", "86400" },
	{ "proto-versions", "1-1" }, { "proto-versions", "1-65535" },
	{ "proto-versions", "2" }, { "proto-versions", "3-5" },
	{ "link", "10.0.0.1=10.0.0.2" }, { "link", "[fd00::1]:7000=[fd00::2]:7001,device=rxe1" },
	{ "link", "10.1.0.1=10.1.0.2,priority=255,device=mlx5_1" },
	{ "link-policy", "balance" }, { "link-policy", "standby" },
	{ "link-heartbeat-ms", "1" }, { "link-heartbeat-ms", "60000" },
	{ "link-misses", "1" }, { "link-misses", "1000" },
	{ "link-damp-ms", "0" }, { "link-damp-ms", "600000" },
	{ "msg-hold-ms", "0" }, { "msg-hold-ms", "86400000" },
	{ "metrics-dir", "/var/lib/prometheus/node-exporter" }, { "metrics-dir", "" },
};

static const struct {
	const char *key, *value, *word;
} bad[] = {
	{ "node-id", "0", "node-id" },
	{ "node-id", "4294967295", "node-id" },
	{ "node-id", "4294967296", "node-id" },
	{ "node-id", "99999999999999999999", "node-id" },
	{ "node-id", "-1", "node-id" },
	{ "node-id", "+1", "node-id" },
	{ "node-id", " 1", "node-id" },
	{ "node-id", "1 ", "node-id" },
	{ "node-id", "", "node-id" },
	{ "node-id", "0x10", "node-id" },
	{ "node-id", "1e3", "node-id" },
	{ "listen", "", "listen" },
	{ "listen", "myhost", "listen" },
	{ "listen", "1.2.3.4:0", "listen" },
	{ "partner", "10.0.0.2:70000", "partner" },
	{ "partner", "[::1", "partner" },
	{ "transport", "TCP", "transport" },
	{ "transport", "udp", "transport" },
	{ "transport", "", "transport" },
	{ "device", "a/b", "device" },
	{ "device", "..", "device" },
	{ "device", "x y", "device" },
	{ "device", "0123456789012345678901234567890123456789012345678901234567890123", "device" },
	{ "clients", "", "clients" },
	{ "clients", "a\nb", "clients" },
	{ "state-dir", "", "state-dir" },
	{ "psk-file", "a\tb", "psk-file" },
	{ "cluster", "", "cluster" },
	{ "cluster", "a b", "cluster" },
	{ "cluster", "0123456789012345678901234567890123456789012345678901234567890123", "cluster" },
	{ "timeout", "86401", "timeout" },
	{ "timeout", "-1", "timeout" },
	{ "timeout", "", "timeout" },
	{ "timeout", "1s", "timeout" },
	{ "link", "10.0.0.1", "LOCAL=PARTNER" },
	{ "link", "10.0.0.1=", "link" },
	{ "link", "=10.0.0.2", "link" },
	{ "link", "10.0.0.1=host", "link" },
	{ "link", "10.0.0.1=10.0.0.2,priority=256", "priority '256' is not in 0..255" },
	{ "link", "10.0.0.1=10.0.0.2,priority=-1", "priority" },
	{ "link", "10.0.0.1=10.0.0.2,device=a/b", "device name" },
	{ "link", "10.0.0.1=10.0.0.2,speed=10", "unknown option 'speed=10'" },
	{ "link-policy", "roundrobin", "neither balance nor standby" },
	{ "link-heartbeat-ms", "0", "link-heartbeat-ms" },
	{ "link-heartbeat-ms", "60001", "link-heartbeat-ms" },
	{ "link-misses", "0", "link-misses" },
	{ "link-damp-ms", "600001", "link-damp-ms" },
	{ "msg-hold-ms", "86400001", "msg-hold-ms" }, { "msg-hold-ms", "-1", "msg-hold-ms" },
	{ "proto-versions", "0-1", "proto-versions" },
	{ "proto-versions", "2-1", "proto-versions" },
	{ "proto-versions", "1-65536", "proto-versions" },
	{ "proto-versions", "1-", "proto-versions" },
	{ "proto-versions", "-1", "proto-versions" },
	{ "proto-versions", "1-2-3", "proto-versions" },
	{ "proto-versions", "", "proto-versions" },
	{ "proto-versions", "a-b", "proto-versions" },
	{ "proto-versions", "1 - 2", "proto-versions" },
	{ "proto-versions", "123456789-2", "proto-versions" },
	{ "verbose", "1", "unknown setting 'verbose'" },
	{ "node_id", "1", "unknown setting 'node_id'" },
	{ "", "1", "unknown setting ''" },
};

/* File texts that must fail, with what the message must contain. */
static const struct {
	const char *text;
	size_t len;        /* 0 = strlen */
	const char *where, *word;
} bad_text[] = {
	{ "node-id = 1\nnode-id = 2\n", 0, "f:2:", "twice" },
	{ "# c\n\nnode-id 1\n", 0, "f:3:", "key = value" },
	{ "bogus = 1\n", 0, "f:1:", "unknown setting 'bogus'" },
	{ "node id = 1\n", 0, "f:1:", "unknown setting 'node id'" },
	{ "\n\n\n\nnode-id = 0\n", 0, "f:5:", "node-id" },
	{ "node-id = 1\0\n", 13, "f:1:", "NUL" },
	{ "# x\0y\n", 6, "f:1:", "NUL" },
	{ "cluster = a\x01" "b\n", 0, "f:1:", "control character" },
	{ "cluster = a\rb\n", 0, "f:1:", "control character" },
	{ " = 5\n", 0, "f:1:", "missing key" },
	{ "cluster = \"abc\n", 0, "f:1:", "quoted" },
	{ "cluster = \"a\"b\"\n", 0, "f:1:", "quoted" },
	{ "cluster = \"\n", 0, "f:1:", "quoted" },
	{ "cluster = \"\"\n", 0, "f:1:", "cluster" },
	{ "listen = 10.0.0.1 # here\n", 0, "f:1:", "listen" },
	{ "timeout = 5\ntimeout=5", 0, "f:2:", "twice" },
	{ "partner = nowhere\n", 0, "f:1:", "partner" },
};

/* A value as a test name: TAP output must stay one line per check. */
static const char *show(const char *s)
{
	static char buf[80];
	size_t i;

	for (i = 0; s[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
	buf[i] = 0;
	return buf;
}

static void test_set(void)
{
	struct ccm_config c;
	struct errbuf e;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		config_defaults(&c, NULL);
		rc = config_set(&c, good[i].key, good[i].value, &e);
		CHECK(rc == 0 && c.set != 0, "accept %s = '%s' (%s)", good[i].key,
		      good[i].value, rc ? e.msg : "ok");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_defaults(&c, NULL);
		e.msg[0] = 0;
		rc = config_set(&c, bad[i].key, bad[i].value, &e);
		CHECK(rc == -EINVAL && strstr(e.msg, bad[i].word) && c.set == 0,
		      "refuse %s = '%s' naming '%s' (%s)", bad[i].key, show(bad[i].value),
		      bad[i].word, e.msg);
	}

	config_defaults(&c, NULL);
	CHECK(c.node_id == 0 && c.set == 0 && !strcmp(c.transport, "tcp") &&
	      !strcmp(c.clients_dir, "/etc/ccm/clients.d") &&
	      !strcmp(c.state_dir, "/run/ccm") && !strcmp(c.cluster, "ccm") &&
	      c.psk_file[0] == 0 && c.device[0] == 0 && c.timeout_s == 0 &&
	      c.ver_min == CCM_PROTO_MIN && c.ver_max == CCM_PROTO_MAX &&
	      c.verbose == 0 && c.listen.port == CCM_DEFAULT_PORT,
	      "defaults");

	config_set(&c, "node-id", "4294967294", &e);
	config_set(&c, "listen", "[0:0::1]", &e);
	config_set(&c, "partner", "10.0.0.2:7000", &e);
	config_set(&c, "proto-versions", "2-7", &e);
	config_set(&c, "timeout", "30", &e);
	config_set(&c, "cluster", "pair-7", &e);
	CHECK(c.node_id == 4294967294u, "node-id value");
	CHECK(!strcmp(c.listen.host, "::1") && c.listen.port == CCM_DEFAULT_PORT,
	      "listen value, default port");
	CHECK(!strcmp(c.partner.host, "10.0.0.2") && c.partner.port == 7000,
	      "partner value");
	CHECK(c.ver_min == 2 && c.ver_max == 7, "proto-versions value");
	CHECK(c.timeout_s == 30 && !strcmp(c.cluster, "pair-7"), "timeout, cluster");
	CHECK(c.set == (CFG_NODE_ID | CFG_LISTEN | CFG_PARTNER | CFG_PROTO_VERSIONS |
			CFG_TIMEOUT | CFG_CLUSTER), "set bits");
	config_set(&c, "proto-versions", "4", &e);
	CHECK(c.ver_min == 4 && c.ver_max == 4, "proto-versions N");
	CHECK(config_set(&c, "timeout", "31", &e) == 0 && c.timeout_s == 31,
	      "config_set overrides (command line after file)");
	CHECK(config_set(&c, "timeout", "x", &e) < 0 && c.timeout_s == 31,
	      "a refused value leaves the old one");
}

static void test_text(void)
{
	static const char text[] =
		"# ccm-early\n"
		"\n"
		"   # indented comment\n"
		"node-id=7\n"
		"\tlisten\t=\t10.0.0.1:7000\t\n"
		"partner = [fd00::2]   \r\n"
		"transport = \"rdma\"\n"
		"device = \"\"\n"
		"clients = \" /odd dir \"\n"
		"state-dir = /run/ccm-x\n"
		"psk-file = /etc/ccm/#psk\n"
		"cluster = c1\n"
		"timeout = 86400\n"
		"proto-versions = 1-3";      /* no newline at the end */
	char big[KV_TEXT_MAX + 2], line[KV_LINE_MAX + 3];
	struct ccm_config c;
	struct errbuf e;
	size_t i, len;
	int rc;

	config_defaults(&c, NULL);
	rc = config_parse_text(&c, text, strlen(text), "f", &e);
	CHECK(rc == 0, "full file parses (%s)", rc ? e.msg : "ok");
	CHECK(c.node_id == 7 && !strcmp(c.listen.host, "10.0.0.1") &&
	      c.listen.port == 7000 && !strcmp(c.partner.host, "fd00::2") &&
	      c.partner.port == CCM_DEFAULT_PORT, "file: ids and addresses");
	CHECK(!strcmp(c.transport, "rdma") && c.device[0] == 0 &&
	      !strcmp(c.clients_dir, " /odd dir ") && !strcmp(c.state_dir, "/run/ccm-x") &&
	      !strcmp(c.psk_file, "/etc/ccm/#psk"), "file: strings, quoting, CRLF");
	CHECK(!strcmp(c.cluster, "c1") && c.timeout_s == 86400 && c.ver_min == 1 &&
	      c.ver_max == 3, "file: numbers");
	CHECK(c.set == 0x7ff, "file: every key set (0x%x)", c.set);
	CHECK(config_check(&c, &e) == 0, "file: config_check passes");

	for (i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++) {
		len = bad_text[i].len ? bad_text[i].len : strlen(bad_text[i].text);
		config_defaults(&c, NULL);
		e.msg[0] = 0;
		rc = config_parse_text(&c, bad_text[i].text, len, "f", &e);
		CHECK(rc < 0 && !strncmp(e.msg, bad_text[i].where, strlen(bad_text[i].where)) &&
		      strstr(e.msg, bad_text[i].word),
		      "text #%zu refused at %s with '%s' (%s)", i, bad_text[i].where,
		      bad_text[i].word, e.msg);
	}

	/* Line length: 1024 bytes pass, 1025 do not; a CR does not count
	 * against a line of exactly 1024. */
	memset(line, ' ', sizeof(line));
	memcpy(line, "timeout = 5", 11);
	CHECK(config_parse_text(&c, line, KV_LINE_MAX, "f", &e) == 0, "1024-byte line");
	config_defaults(&c, NULL);
	rc = config_parse_text(&c, line, KV_LINE_MAX + 1, "f", &e);
	CHECK(rc == -EINVAL && strstr(e.msg, "f:1: line longer than 1024"),
	      "1025-byte line refused (%s)", e.msg);

	/* Size cap: 64 KiB of comments pass, one byte more does not. */
	memset(big, '\n', sizeof(big));
	big[0] = '#';
	config_defaults(&c, NULL);
	CHECK(config_parse_text(&c, big, KV_TEXT_MAX, "f", &e) == 0, "64 KiB file");
	rc = config_parse_text(&c, big, KV_TEXT_MAX + 1, "f", &e);
	CHECK(rc == -EFBIG && strstr(e.msg, "64 KiB"), "64 KiB + 1 refused (%s)", e.msg);
	CHECK(config_parse_text(&c, "", 0, "f", &e) == 0, "empty file");
}

static void write_file(const char *path, const char *s, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, s, n) != (ssize_t)n)
		abort();
	close(fd);
}

static void test_file(void)
{
	char dir[] = "/tmp/test_config.XXXXXX", path[128];
	struct ccm_config c;
	struct errbuf e;
	char *big;
	int rc;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/ccm.conf", dir);
	write_file(path, "node-id = 3\nlisten = 1.1.1.1\npartner = 1.1.1.2\n", 46);
	config_defaults(&c, NULL);
	rc = config_load_file(&c, path, &e);
	CHECK(rc == 0 && c.node_id == 3 && config_check(&c, &e) == 0,
	      "load file (%s)", rc ? e.msg : "ok");

	write_file(path, "node-id = 3\n\nlisten = 1.1.1.1:x\n", 32);
	rc = config_load_file(&c, path, &e);
	CHECK(rc == -EINVAL && strstr(e.msg, path) && strstr(e.msg, ":3: listen"),
	      "file error names FILE:LINE (%s)", e.msg);

	big = malloc(KV_TEXT_MAX + 1);
	memset(big, '\n', KV_TEXT_MAX + 1);
	write_file(path, big, KV_TEXT_MAX + 1);
	free(big);
	rc = config_load_file(&c, path, &e);
	CHECK(rc == -EFBIG && strstr(e.msg, "64 KiB"), "oversized file (%s)", e.msg);

	/* The buffer is sized by the fstat: a file longer than its fstat
	 * said (one growing while read, or a /proc file, size 0) is still
	 * read whole. */
	{
		char *text = NULL;
		size_t len = 0;

		rc = kv_read_file(AT_FDCWD, "/proc/self/status", &text, &len, &e);
		CHECK(rc == 0 && len > 100 && strlen(text) == len && strstr(text, "\nVmRSS:"),
		      "a file longer than its fstat size is read whole (%s, %zu bytes)",
		      rc ? e.msg : "ok", len);
		free(text);
	}

	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	rc = config_load_file(&c, path, &e);
	CHECK(rc == -ENOENT && strstr(e.msg, "missing.conf"), "missing file (%s)", e.msg);
	rc = config_load_file(&c, dir, &e);
	CHECK(rc == -EINVAL && strstr(e.msg, "not a regular file"), "directory (%s)", e.msg);
	snprintf(path, sizeof(path), "%s/fifo.conf", dir);
	if (mkfifo(path, 0600) == 0) {
		rc = config_load_file(&c, path, &e);
		CHECK(rc == -EINVAL && strstr(e.msg, "not a regular file"),
		      "a FIFO neither hangs nor parses (%s)", e.msg);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/ccm.conf", dir);
	unlink(path);
	rmdir(dir);
}

static void test_check(void)
{
	struct ccm_config c;
	struct errbuf e;

	config_defaults(&c, NULL);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "node-id"), "needs node-id");
	config_set(&c, "node-id", "1", &e);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "listen"), "needs listen");
	config_set(&c, "listen", "10.0.0.1", &e);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "partner"), "needs partner");
	config_set(&c, "partner", "10.0.0.1:7471", &e);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "same address") &&
	      strstr(e.msg, "10.0.0.1:7471"), "listen == partner (%s)", e.msg);
	config_set(&c, "partner", "10.0.0.1:7472", &e);
	CHECK(config_check(&c, &e) == 0, "same host, other port is fine");
	config_set(&c, "listen", "[::1]", &e);
	config_set(&c, "partner", "0:0::1", &e);
	CHECK(config_check(&c, &e) == -EINVAL, "two spellings of one v6 address");
}

static void test_links(void)
{
	struct ccm_link l[CCM_LINKS_MAX];
	struct ccm_config c;
	struct errbuf e;
	const char text[] = "node-id = 1\nlink = 10.0.0.1=10.0.0.2\n"
			    "link = 10.1.0.1:7000=10.1.0.2:7001,device=rxe1,priority=9\n";

	config_defaults(&c, NULL);
	CHECK(c.link_policy == LINK_POLICY_BALANCE && c.link_heartbeat_ms == 10 && c.link_misses == 3 &&
	      c.link_damp_ms == 1000, "link defaults: balance, 10 ms x 3, damped 1 s");
	config_set(&c, "node-id", "1", &e);
	config_set(&c, "listen", "10.0.0.1", &e);
	config_set(&c, "partner", "10.0.0.2:7000", &e);
	config_set(&c, "device", "rxe0", &e);
	CHECK(config_links(&c, l) == 1 && l[0].local.port == 7471 && l[0].partner.port == 7000 &&
	      !strcmp(l[0].device, "rxe0"), "no link key: listen/partner/device are the one link");
	config_defaults(&c, NULL);
	CHECK(config_parse_text(&c, text, sizeof(text) - 1, "f", &e) == 0 && c.nlinks == 2,
	      "link repeats in a file: %s", e.msg);
	CHECK(config_links(&c, l) == 2 && !strcmp(l[1].local.host, "10.1.0.1") &&
	      l[1].local.port == 7000 && l[1].partner.port == 7001 && !strcmp(l[1].device, "rxe1") &&
	      l[1].priority == 9 && l[0].priority == 0, "both links as given");
	CHECK(config_check(&c, &e) == 0, "links without listen/partner pass: %s", e.msg);
	config_clear_links(&c);
	CHECK(c.nlinks == 0 && config_check(&c, &e) == -EINVAL, "cleared (the command line's "
	      "--link replaces the file's)");
	for (int i = 0; i < CCM_LINKS_MAX; i++)
		config_set(&c, "link", i % 2 ? "10.0.0.1:1=10.0.0.2" : "10.0.0.1:2=10.0.0.2", &e);
	CHECK(config_set(&c, "link", "10.0.0.1=10.0.0.3", &e) == -EINVAL && strstr(e.msg, "more than 4"),
	      "at most 4 links: %s", e.msg);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "both listen on 10.0.0.1:2"),
	      "two links on one local address: %s", e.msg);
	config_clear_links(&c);
	config_set(&c, "link", "10.0.0.1=10.0.0.1", &e);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "same address"), "LOCAL == PARTNER");
	config_clear_links(&c);
	config_set(&c, "link", "10.0.0.1=10.0.0.2", &e);
	config_set(&c, "listen", "10.0.0.1", &e);
	CHECK(config_check(&c, &e) == -EINVAL && strstr(e.msg, "not both"), "link and listen: %s",
	      e.msg);
}

int main(void)
{
	test_set();
	test_text();
	test_file();
	test_check();
	test_links();
	return check_done();
}
