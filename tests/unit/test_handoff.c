/* test_handoff: the state files: formats, the strict reader, atomic
 * writes, and that sourcing `state` in sh runs nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "state/handoff.h"

static char buf[HANDOFF_TEXT_MAX];
static char tmpdir[] = "/tmp/test_handoff.XXXXXX";

static void add_client(struct handoff *h, const char *name,
		       enum client_match_status st, uint16_t n, uint32_t size)
{
	struct handoff_client *c = &h->clients[h->nclients++];

	strcpy(c->name, name);
	c->status = st;
	c->nports = n;
	c->port_size = size;
}

static void sample(struct handoff *h)
{
	memset(h, 0, sizeof(*h));
	h->state = HANDOFF_CONNECTED;
	h->node = 1;
	h->partner_node = 4294967295u;
	strcpy(h->partner_addr, "[fd00::2]:7471");
	strcpy(h->listen_addr, "10.0.0.1:7471");
	h->version = 65535;
	strcpy(h->transport, "tcp");
	strcpy(h->cluster, "pair-1");
	h->epoch = 18446744073709551615ull;
	h->partner_epoch = 1234567890123ull;
	strcpy(h->hs_state, "connected");
	h->pid = 4242;
	h->updated = 1700000000;
	strcpy(h->error, "it's \"quoted\" $(x) `y` \\ ; 'again'");
	add_client(h, "x", MATCH_OK, 4, 1u << 20);
	add_client(h, "x_port", MATCH_LOCAL_ONLY, 64, 64u << 20);
	add_client(h, "x_port_size", MATCH_OK, 1, 4096);
	add_client(h, "y", MATCH_SIZE_MISMATCH, 2, 8192);
	add_client(h, "z", MATCH_REMOTE_ONLY, 3, 4096);
	h->nbad = 2;
	strcpy(h->bad[0], "Bad_Name.conf");
	strcpy(h->bad[1], "c.conf");
	strcpy(h->link_policy, "standby");
	h->nlinks = 2;
	h->links[0] = (struct handoff_link){ .state = LINK_UP, .local = "10.0.0.1:7471",
					     .partner = "10.0.0.2:7471", .device = "rxe0",
					     .priority = 255, .ports = 5, .ops = 18446744073709551615ull,
					     .bytes = 1ull << 40, .msgs = 7, .downs = 1, .reissued = 3 };
	h->links[1] = (struct handoff_link){ .state = LINK_DAMPED, .local = "[fd00::1]:7472",
					     .partner = "[fd00::2]:7472", .ports = 0 };
}

static int same(const struct handoff *a, const struct handoff *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static void test_format(void)
{
	static struct handoff h, g;
	struct errbuf e;
	int n, rc, i;

	sample(&h);
	n = handoff_format_shell(&h, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf), "shell format (%d)", n);
	CHECK(!strncmp(buf, "# ccm-early handoff, format 1\nCCM_STATE='connected'\nCCM_NODE='1'\n", 64),
	      "header, first keys");
	CHECK(strstr(buf, "\nCCM_CLIENTS='x x_port_size'\n") &&
	      strstr(buf, "\nCCM_CLIENT_x_port_PORT_SIZE='67108864'\n") &&
	      strstr(buf, "\nCCM_CLIENT_y_STATUS='size-mismatch'\n") &&
	      strstr(buf, "\nCCM_EPOCH='18446744073709551615'\n") &&
	      strstr(buf, "\nCCM_BAD_DESCRIPTORS='Bad_Name.conf c.conf'\n") &&
	      strstr(buf, "\nCCM_ERROR='it'\\''s \"quoted\" $(x) `y` \\ ; '\\''again'\\'''\n"),
	      "shell lines");
	rc = handoff_parse(buf, (size_t)n, &g, &e);
	CHECK(rc == 0, "shell parses back (%s)", rc ? e.msg : "ok");
	CHECK(same(&h, &g), "round trip parse(format(h)) == h");

	CHECK(handoff_format_shell(&h, buf, (size_t)n) == -ENOSPC, "cap = len: -ENOSPC");
	CHECK(handoff_format_shell(&h, buf, (size_t)n + 1) == n, "cap = len + 1 fits");
	for (i = 0; i < n; i += 97)
		EXPECT(handoff_format_shell(&h, buf, (size_t)i) == -ENOSPC, "cap %d", i);
	CHECK(1, "every smaller cap: -ENOSPC");

	/* Control characters become spaces: one line stays one variable. */
	strcpy(h.error, "line1\nline2\r\t\x01\x7f" "end");
	n = handoff_format_shell(&h, buf, sizeof(buf));
	CHECK(strstr(buf, "\nCCM_ERROR='line1 line2    end'\n") != NULL,
	      "control characters written as spaces");
	rc = handoff_parse(buf, (size_t)n, &g, &e);
	CHECK(rc == 0 && !strcmp(g.error, "line1 line2    end"), "and read back");

	/* Empty and minimal. */
	memset(&h, 0, sizeof(h));
	h.node = 9;
	n = handoff_format_shell(&h, buf, sizeof(buf));
	rc = handoff_parse(buf, (size_t)n, &g, &e);
	CHECK(rc == 0 && same(&h, &g) && strstr(buf, "CCM_STATE='handshaking'") &&
	      strstr(buf, "CCM_CLIENTS=''") && strstr(buf, "CCM_BAD_DESCRIPTORS=''"),
	      "empty handoff round trip");

	/* Full: every client slot, every bad slot, the longest strings. */
	memset(&h, 0, sizeof(h));
	for (i = 0; i < HANDOFF_CLIENTS_MAX; i++) {
		char name[CCM_NAME_MAX + 1];

		snprintf(name, sizeof(name), "c%030d", i);
		add_client(&h, name, MATCH_OK, CCM_PORTS_MAX, CCM_PORT_SIZE_MAX);
	}
	for (i = 0; i < HANDOFF_BAD_MAX; i++)
		memset(h.bad[i], 'b', CLIENTS_FILE_MAX - 1);
	h.nbad = HANDOFF_BAD_MAX;
	memset(h.error, '\'', HANDOFF_ERROR_MAX);
	memset(h.cluster, 'c', CCM_CLUSTER_MAX);
	memset(h.hs_state, 'h', sizeof(h.hs_state) - 1);
	n = handoff_format_shell(&h, buf, sizeof(buf));
	rc = n > 0 ? handoff_parse(buf, (size_t)n, &g, &e) : n;
	CHECK(rc == 0 && same(&h, &g), "full handoff round trip (%d bytes; %s)", n,
	      rc ? e.msg : "ok");
	n = handoff_format_json(&h, buf, sizeof(buf));
	CHECK(n > 0, "full handoff as JSON (%d bytes)", n);
}

static void test_invalid(void)
{
	static struct handoff h;

	sample(&h);
	strcpy(h.clients[1].name, "$(touch pwned)");
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL &&
	      handoff_format_json(&h, buf, sizeof(buf)) == -EINVAL,
	      "a client name that is not a name is refused");
	sample(&h);
	strcpy(h.clients[1].name, "A");
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "uppercase name");
	sample(&h);
	memset(h.clients[1].name, 'a', sizeof(h.clients[1].name));
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "unterminated name");
	sample(&h);
	strcpy(h.clients[1].name, "x");
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "duplicate name");
	sample(&h);
	h.clients[0].status = (enum client_match_status)4;
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "bad status");
	sample(&h);
	h.clients[0].nports = CCM_PORTS_MAX + 1;
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "too many ports");
	sample(&h);
	h.state = (enum handoff_state)HANDOFF_NSTATES;
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "bad state");
	sample(&h);
	h.nclients = HANDOFF_CLIENTS_MAX + 1;
	CHECK(handoff_format_shell(&h, buf, sizeof(buf)) == -EINVAL, "too many clients");
	sample(&h);
	h.nbad = -1;
	CHECK(handoff_format_json(&h, buf, sizeof(buf)) == -EINVAL, "negative nbad");

	/* Bad descriptor names with blanks or glob characters are written so
	 * the list still splits and an unquoted loop does not glob. */
	sample(&h);
	strcpy(h.bad[0], "a b\nc*'?");
	h.bad[1][0] = 0;
	handoff_format_shell(&h, buf, sizeof(buf));
	CHECK(strstr(buf, "CCM_BAD_DESCRIPTORS='a_b_c___ _'\n") != NULL,
	      "bad names: odd bytes replaced, never empty");
}

static void test_json(void)
{
	static struct handoff h;
	char path[300], cmd[600];
	FILE *f;
	int n;

	sample(&h);
	strcpy(h.error, "q\" b\\ nl\n c\x01 del\x7f e\xc3\xa9 bad\xff\xc3 end");
	n = handoff_format_json(&h, buf, sizeof(buf));
	CHECK(n > 0 && !strncmp(buf, "{\"format\":1,\n\"state\":\"connected\",\n\"node\":1,", 41),
	      "JSON begins with format, state, node");
	CHECK(strstr(buf, "\"error\":\"q\\\" b\\\\ nl\\u000a c\\u0001 del\\u007f e\xc3\xa9 bad\\ufffd\\ufffd end\"") != NULL,
	      "JSON string escaping");
	CHECK(strstr(buf, "\"epoch\":\"18446744073709551615\",") &&
	      strstr(buf, "\"partner_node\":4294967295,") &&
	      strstr(buf, "\"partner_addr\":\"[fd00::2]:7471\","), "JSON scalars; 64-bit epochs as strings");
	CHECK(strstr(buf, "{\"name\":\"x_port\",\"status\":\"local-only\",\"ports\":64,\"port_size\":67108864,"
			  "\"attached\":false,\"queued\":0,\"in_flight\":0,\"given_up\":0}") &&
	      strstr(buf, "\"bad_descriptors\":[\"Bad_Name.conf\",\"c.conf\"],\n"),
	      "JSON clients and bad descriptors");
	CHECK(strstr(buf, "\"link_policy\":\"standby\",\n\"links\":[\n {\"index\":0,\"state\":\"up\","
			  "\"local\":\"10.0.0.1:7471\",\"partner\":\"10.0.0.2:7471\",\"device\":\"rxe0\","
			  "\"priority\":255,\"ports\":5,\"ops\":18446744073709551615,"
			  "\"bytes\":1099511627776,\"msgs\":7,\"downs\":1,\"reissued\":3,\"changed\":0,"
			  "\"rtt_last_ms\":0,\"rtt_max_ms\":0,\"rtt_sum_ms\":0,\"rtt_count\":0},\n {\"index\":1,"
			  "\"state\":\"damped\",\"local\":\"[fd00::1]:7472\"") &&
	      strstr(buf, "\"rtt_count\":0}]}\n"), "JSON links");
	CHECK(handoff_format_json(&h, buf, (size_t)n) == -ENOSPC, "JSON cap = len: -ENOSPC");

	/* A real JSON parser agrees, where there is one. */
	if (system("command -v python3 >/dev/null 2>&1") == 0) {
		n = handoff_format_json(&h, buf, sizeof(buf));
		snprintf(path, sizeof(path), "%s/j.json", tmpdir);
		f = fopen(path, "w");
		fwrite(buf, 1, (size_t)n, f);
		fclose(f);
		snprintf(cmd, sizeof(cmd),
			 "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
			 "assert d[\"format\"]==1 and d[\"clients\"][3][\"status\"]==\"size-mismatch\" "
			 "and d[\"epoch\"]==\"18446744073709551615\" and d[\"error\"].startswith(\"q\\\" b\\\\ nl\\n\")' %s",
			 path);
		CHECK(system(cmd) == 0, "python3 json.load accepts it");
		unlink(path);
	}
}

static const char hdr[] = "# ccm-early handoff, format 1\n";

static const struct {
	const char *body;   /* after the header line; NULL: the whole text */
	const char *whole;
	const char *word;
} bad_text[] = {
	{ NULL, "", "empty" },
	{ NULL, "# ccm-early handoff, format 2\nCCM_STATE='connected'\nCCM_NODE='1'\n", "state:1: not a ccm-early" },
	{ NULL, "CCM_STATE='connected'\nCCM_NODE='1'\n", "state:1: not a ccm-early" },
	{ NULL, "# ccm-early handoff, format 1", "state:1: no newline" },
	{ "", NULL, "CCM_STATE is missing" },
	{ "CCM_STATE='connected'\n", NULL, "CCM_NODE is missing" },
	{ "CCM_NODE='1'\n", NULL, "CCM_STATE is missing" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_FOO='1'\n", NULL, "state:4: CCM_FOO: unknown key" },
	{ "CCM_STATE='connected'\nCCM_NODE=1\n", NULL, "state:3: CCM_NODE: value is not in single quotes" },
	{ "CCM_STATE='connected'\nCCM_NODE=\"1\"\n", NULL, "not in single quotes" },
	{ "CCM_STATE='connected'\nCCM_NODE='1\n", NULL, "unterminated quote" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'x\n", NULL, "after the closing quote" },
	{ "CCM_STATE='connected'\nCCM_NODE='1' \n", NULL, "after the closing quote" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\\'\n", NULL, "after the closing quote" },
	{ "CCM_STATE='connected'\nCCM_NODE='-1'\n", NULL, "CCM_NODE: not a decimal number" },
	{ "CCM_STATE='connected'\nCCM_NODE='+1'\n", NULL, "CCM_NODE: not a decimal number" },
	{ "CCM_STATE='connected'\nCCM_NODE='1.0'\n", NULL, "CCM_NODE: not a decimal number" },
	{ "CCM_STATE='connected'\nCCM_NODE=''\n", NULL, "CCM_NODE: not a decimal number" },
	{ "CCM_STATE='connected'\nCCM_NODE=' 1'\n", NULL, "CCM_NODE: not a decimal number" },
	{ "CCM_STATE='connected'\nCCM_NODE='4294967296'\n", NULL, "CCM_NODE: not a decimal number" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_VERSION='65536'\n", NULL, "CCM_VERSION: not a decimal" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_EPOCH='18446744073709551616'\n", NULL, "CCM_EPOCH: not a decimal" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_EPOCH='99999999999999999999'\n", NULL, "CCM_EPOCH: not a decimal" },
	{ "CCM_STATE='up'\nCCM_NODE='1'\n", NULL, "state:2: CCM_STATE: not a state" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_NODE='1'\n", NULL, "state:4: CCM_NODE: given twice" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'", NULL, "state:3: no newline" },
	{ " CCM_STATE='connected'\nCCM_NODE='1'\n", NULL, "state:2: expected KEY" },
	{ "CCM_STATE='connected'\n\nCCM_NODE='1'\n", NULL, "state:3: expected KEY" },
	{ "CCM_STATE='connected'\n# c\nCCM_NODE='1'\n", NULL, "state:3: expected KEY" },
	{ "CCM_STATE = 'connected'\n", NULL, "state:2: expected KEY" },
	{ "export CCM_STATE='connected'\n", NULL, "state:2: expected KEY" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_ERROR='a\tb'\n", NULL, "CCM_ERROR: control character" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_ERROR='a\rb'\n", NULL, "CCM_ERROR: control character" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_TRANSPORT='0123456789abcdef'\n", NULL, "CCM_TRANSPORT: too long" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_STATUS='ok'\n", NULL, "client 'a' lacks" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_STATUS='fine'\n", NULL, "CCM_CLIENT_a_STATUS: not a client status" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_PORTS='65'\n", NULL, "CCM_CLIENT_a_PORTS: not a number of ports" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_PORT_SIZE='67108865'\n", NULL, "CCM_CLIENT_a_PORT_SIZE: not a port size" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_PORTS='1'\nCCM_CLIENT_a_PORTS='1'\n", NULL, "state:5: CCM_CLIENT_a_PORTS: given twice" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_A_PORTS='1'\n", NULL, "not a client name" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT__PORTS='1'\n", NULL, "CCM_CLIENT__PORTS: unknown key" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_SIZE='1'\n", NULL, "CCM_CLIENT_a_SIZE: unknown key" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_PORTS='1'\n", NULL, "unknown key" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_STATUS='ok'\nCCM_CLIENT_a_PORTS='1'\nCCM_CLIENT_a_PORT_SIZE='4096'\nCCM_CLIENTS='b'\n", NULL, "CCM_CLIENTS does not list" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_STATUS='ok'\nCCM_CLIENT_a_PORTS='1'\nCCM_CLIENT_a_PORT_SIZE='4096'\nCCM_CLIENTS=''\n", NULL, "CCM_CLIENTS does not list" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENT_a_STATUS='ok'\nCCM_CLIENT_a_PORTS='1'\nCCM_CLIENT_a_PORT_SIZE='4096'\nCCM_CLIENTS='a '\n", NULL, "CCM_CLIENTS does not list" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_CLIENTS='a'\n", NULL, "CCM_CLIENTS does not list" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_BAD_DESCRIPTORS='a  b'\n", NULL, "CCM_BAD_DESCRIPTORS: empty name" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_BAD_DESCRIPTORS=' a'\n", NULL, "CCM_BAD_DESCRIPTORS: empty name" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_BAD_DESCRIPTORS='a '\n", NULL, "CCM_BAD_DESCRIPTORS: empty name" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_BAD_DESCRIPTORS='a*'\n", NULL, "CCM_BAD_DESCRIPTORS: a name holds" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_BAD_DESCRIPTORS='a'\\''b'\n", NULL, "CCM_BAD_DESCRIPTORS: a name holds" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_BAD_DESCRIPTORS='0123456789012345678901234567890123456789012345678'\n", NULL, "CCM_BAD_DESCRIPTORS: name too long" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_POLICY='fast'\n", NULL, "CCM_LINK_POLICY: not a link policy" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINKS='5'\n", NULL, "CCM_LINKS: not a number of links" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_4_STATE='up'\n", NULL, "CCM_LINK_4_STATE: unknown key (links are numbered" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_0_COLOUR='up'\n", NULL, "CCM_LINK_0_COLOUR: unknown key" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_0_STATE='sideways'\n", NULL, "CCM_LINK_0_STATE: not a link state" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_0_PRIORITY='256'\n", NULL, "CCM_LINK_0_PRIORITY: not a decimal number in range" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_0_PORTS='257'\n", NULL, "CCM_LINK_0_PORTS: not a decimal number in range" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINK_0_OPS='1'\nCCM_LINK_0_OPS='1'\n", NULL, "CCM_LINK_0_OPS: given twice" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINKS='1'\n""CCM_LINK_0_STATE='up'\nCCM_LINK_0_LOCAL='a'\nCCM_LINK_0_PARTNER='b'\nCCM_LINK_0_DEVICE=''\nCCM_LINK_0_PRIORITY='0'\nCCM_LINK_0_PORTS='0'\nCCM_LINK_0_OPS='0'\nCCM_LINK_0_BYTES='0'\nCCM_LINK_0_MSGS='0'\nCCM_LINK_0_DOWNS='0'\n", NULL, "link 0 lacks one of its keys" },
	{ "CCM_STATE='connected'\nCCM_NODE='1'\nCCM_LINKS='0'\nCCM_LINK_0_REISSUED='0'\n", NULL, "keys for link 0, but CCM_LINKS is 0" },
};

static void test_parse_strict(void)
{
	static struct handoff h;
	static char text[HANDOFF_TEXT_MAX + 64];
	struct errbuf e;
	size_t i, len, off;
	int rc;

	for (i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++) {
		if (bad_text[i].whole)
			snprintf(text, sizeof(text), "%s", bad_text[i].whole);
		else
			snprintf(text, sizeof(text), "%s%s", hdr, bad_text[i].body);
		e.msg[0] = 0;
		rc = handoff_parse(text, strlen(text), &h, &e);
		CHECK(rc == -EINVAL && strstr(e.msg, bad_text[i].word) && !strncmp(e.msg, "state", 5),
		      "refuse #%zu with '%s' (%s)", i, bad_text[i].word, e.msg);
	}

	/* Values that must pass. */
	snprintf(text, sizeof(text), "%sCCM_NODE='007'\nCCM_STATE='error'\nCCM_EPOCH='18446744073709551615'\n"
		 "CCM_ERROR=''\\'''\\'''\\'''\nCCM_CLUSTER='\xc3\xa9t\xc3\xa9'\nCCM_CLIENTS=''\n", hdr);
	rc = handoff_parse(text, strlen(text), &h, &e);
	CHECK(rc == 0 && h.node == 7 && h.state == HANDOFF_ERROR && h.epoch == UINT64_MAX &&
	      !strcmp(h.error, "'''") && !strcmp(h.cluster, "\xc3\xa9t\xc3\xa9"),
	      "any key order, leading zeros, quotes only, UTF-8 (%s)", rc ? e.msg : "ok");

	/* NUL inside a value. */
	len = (size_t)snprintf(text, sizeof(text), "%sCCM_STATE='connected'\nCCM_NODE='1'\nCCM_ERROR='a?b'\n", hdr);
	*strchr(text, '?') = 0;
	rc = handoff_parse(text, len, &h, &e);
	CHECK(rc == -EINVAL && strstr(e.msg, "control character"), "NUL in a value (%s)", e.msg);

	/* 65 clients. */
	off = (size_t)snprintf(text, sizeof(text), "%sCCM_STATE='connected'\nCCM_NODE='1'\n", hdr);
	for (i = 0; i <= HANDOFF_CLIENTS_MAX; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"CCM_CLIENT_c%zu_STATUS='ok'\n", i);
	rc = handoff_parse(text, off, &h, &e);
	CHECK(rc == -EINVAL && strstr(e.msg, "too many clients"), "65 clients (%s)", e.msg);

	/* Size cap. */
	off = (size_t)snprintf(text, sizeof(text), "%sCCM_STATE='connected'\nCCM_NODE='1'\n", hdr);
	memset(text + off, 'x', sizeof(text) - off);
	rc = handoff_parse(text, HANDOFF_TEXT_MAX + 1, &h, &e);
	CHECK(rc == -EFBIG && strstr(e.msg, "64 KiB"), "size cap (%s)", e.msg);
}

static int count_entries(const char *dir, int *hidden)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	*hidden = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		if (de->d_name[0] == '.')
			(*hidden)++;
	}
	closedir(d);
	return n;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int file_has(const char *path, const char *want)
{
	char got[512];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	got[n] = 0;
	if (strcmp(got, want))
		printf("#   %s: got '%s'\n", path, got);
	return !strcmp(got, want);
}

static void test_files(void)
{
	static struct handoff h, g;
	char dir[300], cmd[1200], path[400];
	struct stat st;
	struct errbuf e;
	int rc, hidden, n;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/run/ccm", tmpdir);
	rc = handoff_read(dir, &g, &e);
	CHECK(rc == -ENOENT && strstr(e.msg, "no handoff state") && strstr(e.msg, "/run/ccm/state"),
	      "read before any write (%s)", e.msg);

	sample(&h);
	rc = handoff_write(dir, &h, &e);
	CHECK(rc == 0, "write creates the directory and parents (%s)", rc ? e.msg : "ok");
	n = count_entries(dir, &hidden);
	CHECK(n == 2 && hidden == 0, "exactly state and state.json, no temp files (%d, %d)",
	      n, hidden);
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0755, "directory mode 0755");
	snprintf(path, sizeof(path), "%s/state", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644 && S_ISREG(st.st_mode),
	      "state mode 0644");
	snprintf(path, sizeof(path), "%s/state.json", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "state.json mode 0644");
	rc = handoff_read(dir, &g, &e);
	CHECK(rc == 0 && same(&h, &g), "read back what was written (%s)", rc ? e.msg : "ok");

	h.state = HANDOFF_TERMINATED;
	h.epoch = 5;
	rc = handoff_write(dir, &h, &e);
	rc = rc ? rc : handoff_read(dir, &g, &e);
	CHECK(rc == 0 && same(&h, &g) && count_entries(dir, &hidden) == 2,
	      "rewrite replaces the files");

	/* Sourcing runs nothing: quotes, $(...), backticks, newlines, ;. */
	sample(&h);
	strcpy(h.error, "x'; touch pwned1; '$(touch pwned2)`touch pwned3`\ntouch pwned4\n\"; $HOME \\ '\\''");
	strcpy(h.cluster, "$(touch pwned5)");
	strcpy(h.hs_state, "'`touch pwned6`'");
	rc = handoff_write(dir, &h, &e);
	CHECK(rc == 0, "write hostile text (%s)", rc ? e.msg : "ok");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && sh -euc '. ./state; printf %%s \"$CCM_ERROR\" > out1; "
		 "printf %%s \"$CCM_STATE|$CCM_CLUSTER|$CCM_HS_STATE|$CCM_CLIENTS|$CCM_BAD_DESCRIPTORS\" > out2; "
		 "for c in $CCM_CLIENTS; do eval \"p=\\$CCM_CLIENT_${c}_PORTS\"; printf \"%%s=%%s \" $c $p; done > out3; "
		 "printf %%s \"$CCM_CLIENT_x_port_PORT_SIZE $CCM_CLIENT_x_port_size_STATUS $CCM_EPOCH\" > out4'",
		 dir);
	CHECK(run(cmd) == 0, "sh sources the file");
	snprintf(cmd, sizeof(cmd), "cd '%s' && ls pwned* 2>/dev/null | wc -l | grep -qx 0", dir);
	CHECK(run(cmd) == 0, "no command in any value ran");
	snprintf(path, sizeof(path), "%s/out1", dir);
	CHECK(file_has(path, "x'; touch pwned1; '$(touch pwned2)`touch pwned3` touch pwned4 \"; $HOME \\ '\\''"),
	      "CCM_ERROR arrives intact, newlines as spaces");
	snprintf(path, sizeof(path), "%s/out2", dir);
	CHECK(file_has(path, "connected|$(touch pwned5)|'`touch pwned6`'|x x_port_size|Bad_Name.conf c.conf"),
	      "other values arrive intact");
	snprintf(path, sizeof(path), "%s/out3", dir);
	CHECK(file_has(path, "x=4 x_port_size=1 "), "per-client variables by name");
	snprintf(path, sizeof(path), "%s/out4", dir);
	CHECK(file_has(path, "67108864 ok 18446744073709551615"), "suffix split, epochs");
	snprintf(cmd, sizeof(cmd), "cd '%s' && rm -f out1 out2 out3 out4", dir);
	run(cmd);

	/* A directory we may not write: the write fails clearly and the old
	 * file stays.  root ignores permissions, so drop to nobody for it. */
	sample(&h);
	rc = handoff_write(dir, &h, &e);
	chmod(tmpdir, 0755);
	snprintf(path, sizeof(path), "%s/run", tmpdir);
	chmod(path, 0755);
	chmod(dir, 0555);
	pid = fork();
	if (pid == 0) {
		static struct handoff h2;
		struct errbuf e2;

		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(3);
		sample(&h2);
		h2.state = HANDOFF_ERROR;
		rc = handoff_write(dir, &h2, &e2);
		if (rc != -EACCES)
			_exit(1);
		printf("# read-only: %s\n", e2.msg);
		fflush(stdout);
		_exit(strstr(e2.msg, dir) && strstr(e2.msg, "Permission denied") ? 0 : 2);
	}
	CHECK(pid > 0 && waitpid(pid, &rc, 0) == pid && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
	      "write into a read-only directory fails with -EACCES and a clear message");
	rc = handoff_read(dir, &g, &e);
	CHECK(rc == 0 && same(&h, &g) && count_entries(dir, &hidden) == 2 && hidden == 0,
	      "the old file is intact, no temp file left");
	chmod(dir, 0755);

	rc = handoff_write("/dev/null/ccm", &h, &e);
	CHECK(rc < 0 && strstr(e.msg, "/dev/null"), "state dir under a file (%s)", e.msg);
	h.state = (enum handoff_state)9;
	rc = handoff_write(dir, &h, &e);
	CHECK(rc == -EINVAL && strstr(e.msg, "invalid"), "invalid handoff not written (%s)", e.msg);
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	unlink(path);
	rmdir(dir);
	snprintf(path, sizeof(path), "%s/run", tmpdir);
	rmdir(path);
}

static void test_set_clients(void)
{
	static struct client_set local;
	static struct handoff h;
	struct client_match m[3];

	memset(m, 0, sizeof(m));
	strcpy(m[0].name, "a");
	m[0].status = MATCH_OK;
	m[0].nports = 2;
	m[0].port_size = 4096;
	m[0].remote_nports = 2;
	m[0].remote_port_size = 4096;
	strcpy(m[1].name, "b");
	m[1].status = MATCH_REMOTE_ONLY;
	m[1].remote_nports = 3;
	m[1].remote_port_size = 8192;
	strcpy(m[2].name, "c");
	m[2].status = MATCH_SIZE_MISMATCH;
	m[2].nports = 1;
	m[2].port_size = 4096;
	m[2].remote_nports = 5;
	local.nbad = 1;
	strcpy(local.bad[0].file, "z.conf");
	handoff_set_clients(&h, m, 3, &local);
	CHECK(h.nclients == 3 && h.clients[0].nports == 2 && h.clients[1].nports == 3 &&
	      h.clients[1].port_size == 8192 && h.clients[2].nports == 1 &&
	      h.clients[2].status == MATCH_SIZE_MISMATCH && h.nbad == 1 &&
	      !strcmp(h.bad[0], "z.conf"), "handoff_set_clients");
	handoff_set_clients(&h, m, -ENOSPC, NULL);
	CHECK(h.nclients == 0 && h.nbad == 0, "handoff_set_clients with an error count");
	CHECK(!strcmp(handoff_state_name(HANDOFF_HANDSHAKING), "handshaking") &&
	      !strcmp(handoff_state_name(HANDOFF_ERROR), "error") &&
	      !strcmp(handoff_state_name((enum handoff_state)7), "?"), "state names");
}

/* The staleness rule, fact by fact. */
static void test_stale(void)
{
	static struct handoff h;
	static const struct {
		enum handoff_state state;
		struct handoff_writer w;
		const char *want;           /* in the reason; NULL = not stale */
	} cases[] = {
		{ HANDOFF_CONNECTED, { .exists = true, .started = 1699999990 }, NULL },
		{ HANDOFF_CONNECTED, { .exists = true, .keeper_pid = 4242 }, NULL },
		{ HANDOFF_CONNECTED, { .exists = true, .started = 1700000002 }, NULL },
		{ HANDOFF_CONNECTED, { .exists = false }, "pid 4242, which wrote it, is gone" },
		{ HANDOFF_CONNECTED, { .exists = true, .zombie = true }, "is gone" },
		{ HANDOFF_UNREACHABLE, { .exists = false }, "is gone" },
		{ HANDOFF_HANDSHAKING, { .exists = false }, "is gone" },
		{ HANDOFF_CONNECTED, { .exists = true, .started = 1700000003 },
		  "pid 4242 is another process" },
		{ HANDOFF_CONNECTED, { .exists = true, .keeper_pid = 77 },
		  "the keeper now is pid 77" },
		{ HANDOFF_CONNECTED, { .exists = true, .keeper_pid = 4242, .keeper_silent = true },
		  "does not answer" },
		/* The writer's last word stays true after it is gone. */
		{ HANDOFF_TERMINATED, { .exists = false }, NULL },
		{ HANDOFF_ERROR, { .exists = false }, NULL },
		{ HANDOFF_TERMINATED, { .exists = true, .keeper_pid = 77 }, NULL },
	};
	char why[160];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool stale;

		sample(&h);
		h.state = cases[i].state;
		stale = handoff_stale(&h, &cases[i].w, why, sizeof(why));
		if (cases[i].want)
			CHECK(stale && strstr(why, cases[i].want), "stale case %zu: '%s'", i, why);
		else
			CHECK(!stale && !why[0], "stale case %zu: believed ('%s')", i, why);
	}

	static const char want_json[] =
		"{\"format\":1,\n\"state\":\"stale\",\n\"last_state\":\"connected\",\n"
		"\"stale\":true,\n\"stale_reason\":\"pid 4242, which wrote it, is gone\",\n"
		"\"node\":1,";

	sample(&h);
	CHECK(handoff_format_json_stale(&h, "pid 4242, which wrote it, is gone", buf,
					sizeof(buf)) > 0 &&
	      !strncmp(buf, want_json, sizeof(want_json) - 1),
	      "stale JSON: state stale, last_state, stale, stale_reason (%.140s)", buf);
}

/* A write that fails midway (here: the file size limit, as a full disk
 * would) leaves the previous files whole and no temporary file. */
static void test_failed_write_keeps_the_old_file(void)
{
	static struct handoff h, g;
	char dir[300];
	struct errbuf e;
	int rc, hidden, n, status;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	sample(&h);
	rc = handoff_write(dir, &h, &e);
	CHECK(rc == 0, "first write (%s)", rc ? e.msg : "ok");
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 100, 100 };

		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		h.state = HANDOFF_UNREACHABLE;
		rc = handoff_write(dir, &h, &e);
		_exit(rc == -EFBIG && strstr(e.msg, "write: File too large") ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "a write over the size limit fails with EFBIG and says so");
	rc = handoff_read(dir, &g, &e);
	CHECK(rc == 0 && same(&h, &g), "the previous state is whole (%s)", rc ? e.msg : "ok");
	n = count_entries(dir, &hidden);
	CHECK(n == 2 && hidden == 0, "no temporary file left (%d entries, %d hidden)", n, hidden);
	h.state = HANDOFF_UNREACHABLE;
	rc = handoff_write(dir, &h, &e);
	rc = rc ? rc : handoff_read(dir, &g, &e);
	CHECK(rc == 0 && same(&h, &g), "the next write carries the whole state (%s)",
	      rc ? e.msg : "ok");
	snprintf(dir, sizeof(dir), "rm -rf %s/full", tmpdir);
	CHECK(run(dir) == 0, "clean up");
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	test_format();
	test_invalid();
	test_json();
	test_parse_strict();
	test_files();
	test_set_clients();
	test_stale();
	test_failed_write_keeps_the_old_file();
	rmdir(tmpdir);
	return check_done();
}
