/* test_clients: descriptor files, the directory, matching. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf/client_desc.h"

/* clients_match with our side as a set, in its wire form as the exchange
 * sends it. */
static int match(const struct client_set *local, const struct wire_clients *remote,
		 struct client_match *out, int max)
{
	static struct wire_clients ours;

	clients_to_wire(local, &ours);
	return clients_match(&ours, remote, out, max);
}

static const struct {
	const char *fname, *text, *name;
	uint16_t nports;
	uint32_t size, uid;
} good[] = {
	{ "mirror.conf", "ports = 4\nport-size = 1M\n", "mirror", 4, 1u << 20, 0 },
	{ "a.conf", "ports=1\nport-size=4096\nuid=990\n", "a", 1, 4096, 990 },
	{ "a_1.conf", "# x\nport-size = 64M\nports = 64\n", "a_1", 64, 64u << 20, 0 },
	{ "k.conf", "ports = 2\nport-size = 4K\nuid = 4294967294\n", "k", 2, 4096, 4294967294u },
	{ "k2.conf", "ports = 2\nport-size = \"8K\"\n", "k2", 2, 8192, 0 },
	{ "k3.conf", "ports = 2\nport-size = 65536K\n", "k3", 2, 64u << 20, 0 },
	{ "abcdefghijklmnopqrstuvwxyz01234.conf", "ports = 3\nport-size = 12288\n",
	  "abcdefghijklmnopqrstuvwxyz01234", 3, 12288, 0 },
};

static const struct {
	const char *fname, *text, *word;
} bad[] = {
	{ "m.conf", "ports = 0\nport-size = 1M\n", "m.conf:1: ports" },
	{ "m.conf", "ports = 65\nport-size = 1M\n", "m.conf:1: ports" },
	{ "m.conf", "ports = -1\nport-size = 1M\n", "m.conf:1: ports" },
	{ "m.conf", "ports = \"\"\nport-size = 1M\n", "m.conf:1: ports" },
	{ "m.conf", "ports = 4 ports\nport-size = 1M\n", "m.conf:1: ports" },
	{ "m.conf", "ports = 1\nport-size = 0\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 4095\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 4097\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 1000\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 65540K\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 65M\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 1G\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 4k\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = K\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 1KM\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 2K\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 4294967296\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 99999999999K\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 4 K\n", "m.conf:2: port-size" },
	{ "m.conf", "ports = 1\nport-size = 4M\nuid = -1\n", "m.conf:3: uid" },
	{ "m.conf", "ports = 1\nport-size = 4M\nuid = 4294967295\n", "m.conf:3: uid" },
	{ "m.conf", "ports = 1\nport-size = 4M\nuid = root\n", "m.conf:3: uid" },
	{ "m.conf", "port-size = 4M\n", "m.conf: 'ports' is missing" },
	{ "m.conf", "ports = 1\n", "m.conf: 'port-size' is missing" },
	{ "m.conf", "", "m.conf: 'ports' is missing" },
	{ "m.conf", "ports = 1\nports = 1\nport-size = 4M\n", "m.conf:2: 'ports' is set twice" },
	{ "m.conf", "ports = 1\nport-size = 4M\nsize = 1\n", "m.conf:3: unknown key 'size'" },
	{ "m.conf", "ports 1\n", "m.conf:1: expected" },
	{ "m.conf", "ports = 1\x7f\n", "m.conf:1: control" },
	{ "Bad.conf", "ports = 1\nport-size = 4M\n", "client name" },
	{ "1a.conf", "ports = 1\nport-size = 4M\n", "client name" },
	{ "a-b.conf", "ports = 1\nport-size = 4M\n", "client name" },
	{ ".conf", "ports = 1\nport-size = 4M\n", "client name" },
	{ "x.txt", "ports = 1\nport-size = 4M\n", "NAME.conf" },
	{ "abcdefghijklmnopqrstuvwxyz012345.conf", "ports = 1\nport-size = 4M\n",
	  "longer than 31" },
};

static void test_parse(void)
{
	struct client_desc d;
	struct errbuf e;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&d, 0xa5, sizeof(d));
		rc = clients_parse(good[i].fname, good[i].text, strlen(good[i].text), &d, &e);
		CHECK(rc == 0 && !strcmp(d.name, good[i].name) && d.nports == good[i].nports &&
		      d.port_size == good[i].size && d.uid == good[i].uid,
		      "accept %s (%s)", good[i].fname, rc ? e.msg : "ok");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(d.name, "untouched");
		e.msg[0] = 0;
		rc = clients_parse(bad[i].fname, bad[i].text, strlen(bad[i].text), &d, &e);
		CHECK(rc == -EINVAL && strstr(e.msg, bad[i].word) && !strcmp(d.name, "untouched"),
		      "refuse #%zu %s with '%s' (%s)", i, bad[i].fname, bad[i].word, e.msg);
	}
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
}

static void rm_rf(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
}

static void test_dir(void)
{
	char dir[] = "/tmp/test_clients.XXXXXX", path[300], name[32];
	struct client_set *s = malloc(sizeof(*s));
	struct errbuf e;
	int rc, i;

	if (!s || !mkdtemp(dir))
		abort();
	put(dir, "b.conf", "ports = 2\nport-size = 8K\n");
	put(dir, "a.conf", "ports = 1\nport-size = 4K\nuid = 5\n");
	put(dir, "c.conf", "ports = 0\nport-size = 4K\n");         /* corrupt */
	put(dir, "d.conf~", "garbage");                            /* backup */
	put(dir, "b.conf.bak", "garbage");
	put(dir, ".e.conf", "garbage");                            /* hidden */
	put(dir, "README", "garbage");
	put(dir, "Bad Name.conf", "ports = 1\nport-size = 4K\n");  /* bad name */
	snprintf(path, sizeof(path), "%s/f.conf", dir);
	mkdir(path, 0755);                                         /* not a file */

	rc = clients_load_dir(dir, s, &e);
	CHECK(rc == 0, "load dir with a corrupt file among good ones (%s)", rc ? e.msg : "ok");
	CHECK(s->count == 2 && !strcmp(s->c[0].name, "a") && !strcmp(s->c[1].name, "b"),
	      "good ones loaded, sorted (%d)", s->count);
	CHECK(s->c[0].uid == 5 && s->c[1].nports == 2 && s->c[1].port_size == 8192,
	      "values loaded");
	CHECK(s->nbad == 3, "three refused (%d)", s->nbad);
	CHECK(s->nbad == 3 && !strcmp(s->bad[0].file, "Bad_Name.conf") &&
	      !strcmp(s->bad[1].file, "c.conf") && !strcmp(s->bad[2].file, "f.conf"),
	      "refused files sorted, names sanitised");
	CHECK(s->nbad == 3 && strstr(s->bad[0].why, "client name") &&
	      strstr(s->bad[1].why, "c.conf:1: ports") &&
	      strstr(s->bad[2].why, "not a regular file"),
	      "each refusal keeps its reason (%s | %s | %s)", s->bad[0].why,
	      s->bad[1].why, s->bad[2].why);

	/* More than CCM_CLIENTS_MAX valid descriptors. */
	for (i = 0; i < CCM_CLIENTS_MAX - 1; i++) {
		snprintf(name, sizeof(name), "x%02d.conf", i);
		put(dir, name, "ports = 1\nport-size = 4K\n");
	}
	rc = clients_load_dir(dir, s, &e);
	CHECK(rc == -E2BIG && strstr(e.msg, "more than 32"), "33 clients refused (%s)", e.msg);
	rm_rf(dir);

	/* More than CCM_PORTS_TOTAL ports in all. */
	mkdir(dir, 0700);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "p%d.conf", i);
		put(dir, name, "ports = 64\nport-size = 4K\n");
	}
	rc = clients_load_dir(dir, s, &e);
	CHECK(rc == -E2BIG && strstr(e.msg, "320 ports"), "too many ports (%s)", e.msg);
	rm_rf(dir);

	rc = clients_load_dir(dir, s, &e);
	CHECK(rc == 0 && s->count == 0 && s->nbad == 0, "missing directory: no clients");
	rc = clients_load_dir("/dev/null", s, &e);
	CHECK(rc == -ENOTDIR && strstr(e.msg, "/dev/null"), "not a directory (%s)", e.msg);
	free(s);
}

static void desc(struct client_set *s, const char *name, uint16_t n, uint32_t size)
{
	struct client_desc *d = &s->c[s->count++];

	memset(d, 0, sizeof(*d));
	strcpy(d->name, name);
	d->nports = n;
	d->port_size = size;
}

static void wdesc(struct wire_clients *w, const char *name, uint16_t n, uint32_t size)
{
	struct wire_client *c = &w->c[w->count++];

	memset(c, 0, sizeof(*c));
	strcpy(c->name, name);
	c->nports = n;
	c->port_size = size;
}

static void test_match(void)
{
	static struct client_set local;
	static struct wire_clients remote, w;
	struct client_match m[2 * CCM_CLIENTS_MAX];
	enum client_match_status st;
	int n, i;

	desc(&local, "a", 4, 1u << 20);
	desc(&local, "b", 2, 4096);
	desc(&local, "d", 1, 8192);
	desc(&local, "f", 3, 8192);
	wdesc(&remote, "e", 1, 4096);
	wdesc(&remote, "d", 1, 8192);
	wdesc(&remote, "b", 2, 8192);
	wdesc(&remote, "c", 3, 4096);
	wdesc(&remote, "c", 9, 4096);      /* repeated: first one counts */
	wdesc(&remote, "f", 4, 8192);
	n = match(&local, &remote, m, 2 * CCM_CLIENTS_MAX);
	CHECK(n == 6, "six names (%d)", n);
	if (n != 6)
		return;
	for (i = 1; i < n; i++)
		EXPECT(strcmp(m[i - 1].name, m[i].name) < 0, "sorted at %d", i);
	CHECK(!strcmp(m[0].name, "a") && m[0].status == MATCH_LOCAL_ONLY &&
	      m[0].nports == 4 && m[0].port_size == 1u << 20 && m[0].remote_nports == 0 &&
	      m[0].remote_port_size == 0, "a local-only");
	CHECK(!strcmp(m[1].name, "b") && m[1].status == MATCH_SIZE_MISMATCH &&
	      m[1].nports == 2 && m[1].port_size == 4096 && m[1].remote_nports == 2 &&
	      m[1].remote_port_size == 8192, "b size-mismatch (size)");
	CHECK(!strcmp(m[2].name, "c") && m[2].status == MATCH_REMOTE_ONLY &&
	      m[2].nports == 0 && m[2].remote_nports == 3 && m[2].remote_port_size == 4096,
	      "c remote-only, once");
	CHECK(!strcmp(m[3].name, "d") && m[3].status == MATCH_OK && m[3].nports == 1 &&
	      m[3].remote_nports == 1 && m[3].port_size == 8192, "d ok");
	CHECK(!strcmp(m[4].name, "e") && m[4].status == MATCH_REMOTE_ONLY, "e remote-only");
	CHECK(!strcmp(m[5].name, "f") && m[5].status == MATCH_SIZE_MISMATCH,
	      "f size-mismatch (ports)");
	CHECK(match(&local, &remote, m, 5) == -ENOSPC, "max too small");
	CHECK(match(&local, &remote, m, 2) == -ENOSPC, "max smaller than local");

	/* A remote name without its NUL must not be read past. */
	memset(&w, 0, sizeof(w));
	w.count = 1;
	memset(w.c[0].name, 'z', sizeof(w.c[0].name));
	w.c[0].nports = 1;
	n = match(&local, &w, m, 2 * CCM_CLIENTS_MAX);
	CHECK(n == 5 && strlen(m[4].name) == CCM_NAME_MAX, "unterminated remote name");
	memset(&w, 0, sizeof(w));
	w.count = 1000;      /* a bogus count is clamped, never overrun */
	n = match(&local, &w, m, 2 * CCM_CLIENTS_MAX);
	CHECK(n == 5, "bogus remote count clamped (%d)", n);

	memset(&w, 0, sizeof(w));
	local.count = 0;
	CHECK(match(&local, &w, m, 0) == 0, "nothing on either side");
	desc(&local, "a", 4, 1u << 20);
	desc(&local, "b", 2, 4096);
	clients_to_wire(&local, &w);
	CHECK(w.count == 2 && !strcmp(w.c[1].name, "b") && w.c[1].nports == 2 &&
	      w.c[1].port_size == 4096, "clients_to_wire");
	n = match(&local, &w, m, 4);
	CHECK(n == 2 && m[0].status == MATCH_OK && m[1].status == MATCH_OK,
	      "a set matches its own wire form");

	CHECK(!strcmp(client_match_name(MATCH_OK), "ok") &&
	      !strcmp(client_match_name(MATCH_LOCAL_ONLY), "local-only") &&
	      !strcmp(client_match_name(MATCH_REMOTE_ONLY), "remote-only") &&
	      !strcmp(client_match_name(MATCH_SIZE_MISMATCH), "size-mismatch") &&
	      !strcmp(client_match_name((enum client_match_status)9), "?"),
	      "status names");
	for (i = 0; i < CLIENT_MATCH_NSTATUS; i++)
		CHECK(client_match_parse(client_match_name((enum client_match_status)i), &st) == 0 &&
		      (int)st == i, "status name %d parses back", i);
	CHECK(client_match_parse("OK", &st) == -EINVAL, "status parse is exact");
}

int main(void)
{
	test_parse();
	test_dir();
	test_match();
	return check_done();
}
