/* test_addr: tp_parse_addr / tp_format_addr / tp_to_sockaddr. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "tp/transport.h"

static const struct {
	const char *in;
	const char *host;
	uint16_t port;
} good[] = {
	{ "1.2.3.4", "1.2.3.4", 7471 },
	{ "1.2.3.4:80", "1.2.3.4", 80 },
	{ "10.0.0.1:65535", "10.0.0.1", 65535 },
	{ "10.0.0.1:1", "10.0.0.1", 1 },
	{ "10.0.0.1:00080", "10.0.0.1", 80 },
	{ "[::1]:7471", "::1", 7471 },
	{ "[::1]:9", "::1", 9 },
	{ "::1", "::1", 7471 },
	{ "::", "::", 7471 },
	{ "[fe80::1]", "fe80::1", 7471 },
	{ "fd00::2", "fd00::2", 7471 },
	{ "0:0:0:0:0:0:0:1", "::1", 7471 },        /* canonical form */
	{ "[FD00:0::0002]:1234", "fd00::2", 1234 },
	{ "[::ffff:1.2.3.4]:5", "::ffff:1.2.3.4", 5 },
};

static const struct {
	const char *in;
	const char *word;  /* the message must mention this */
} bad[] = {
	{ "", "empty host" },
	{ ":80", "empty host" },
	{ "[]:80", "empty host" },
	{ "1.2.3.4:", "port" },
	{ "1.2.3.4:0", "port" },
	{ "1.2.3.4:65536", "port" },
	{ "1.2.3.4:99999", "port" },
	{ "1.2.3.4:123456", "port" },
	{ "1.2.3.4:+80", "port" },
	{ "1.2.3.4:-1", "port" },
	{ "1.2.3.4: 80", "port" },
	{ "1.2.3.4:80 ", "port" },
	{ "1.2.3.4:0x50", "port" },
	{ "[::1]:", "port" },
	{ "[::1]:0", "port" },
	{ "[::1]:70000", "port" },
	{ "localhost", "numeric IPv4" },
	{ "host.example:80", "numeric IPv4" },
	{ "1.2.3", "numeric IPv4" },
	{ "256.1.1.1", "numeric IPv4" },
	{ " 1.2.3.4", "numeric IPv4" },
	{ "1.2.3.4 ", "numeric IPv4" },
	{ "[1.2.3.4]:80", "numeric IPv6" },
	{ "fe80::1%eth0", "numeric IPv6" },
	{ "::g", "numeric IPv6" },
	{ "[::1", "missing ']'" },
	{ "[::1]x", "after ']'" },
	{ "[::1]7471", "after ']'" },
	{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff", "too long" },
};

int main(void)
{
	char buf[80];
	struct tp_addr a, b;
	struct errbuf e;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&a, 0xa5, sizeof(a));
		e.msg[0] = 0;
		rc = tp_parse_addr(good[i].in, 7471, &a, &e);
		CHECK(rc == 0 && !strcmp(a.host, good[i].host) && a.port == good[i].port,
		      "parse '%s' -> %s port %u (%s)", good[i].in, good[i].host,
		      good[i].port, rc ? e.msg : "ok");
		rc = tp_parse_addr(tp_format_addr(&a, buf, sizeof(buf)), 1, &b, &e);
		CHECK(rc == 0 && !strcmp(a.host, b.host) && a.port == b.port,
		      "round trip '%s' via '%s'", good[i].in, buf);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&a, 0, sizeof(a));
		strcpy(a.host, "untouched");
		e.msg[0] = 0;
		rc = tp_parse_addr(bad[i].in, 7471, &a, &e);
		CHECK(rc == -EINVAL && strstr(e.msg, bad[i].word) &&
		      !strcmp(a.host, "untouched"),
		      "refuse '%s' mentioning '%s' (got %d: %s)", bad[i].in,
		      bad[i].word, rc, e.msg);
	}
	CHECK(tp_parse_addr("1.2.3.4", 7471, &a, NULL) == 0, "NULL errbuf is fine");
	CHECK(tp_parse_addr("x", 7471, &a, NULL) == -EINVAL, "NULL errbuf on error");

	strcpy(a.host, "1.2.3.4");
	a.port = 7471;
	CHECK(!strcmp(tp_format_addr(&a, buf, sizeof(buf)), "1.2.3.4:7471"),
	      "format v4: %s", buf);
	strcpy(a.host, "::1");
	CHECK(!strcmp(tp_format_addr(&a, buf, sizeof(buf)), "[::1]:7471"),
	      "format v6: %s", buf);
	CHECK(!strcmp(tp_format_addr(&a, buf, 5), "[::1"), "format truncates safely");

	{
		struct sockaddr_storage ss;
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		strcpy(a.host, "10.0.0.1");
		CHECK(tp_to_sockaddr(&a, 7471, &ss) == (int)sizeof(*in4) &&
		      in4->sin_family == AF_INET && ntohs(in4->sin_port) == 7471 &&
		      ntohl(in4->sin_addr.s_addr) == 0x0a000001, "sockaddr v4");
		strcpy(a.host, "fd00::2");
		CHECK(tp_to_sockaddr(&a, 0, &ss) == (int)sizeof(*in6) &&
		      in6->sin6_family == AF_INET6 && in6->sin6_port == 0 &&
		      in6->sin6_addr.s6_addr[0] == 0xfd && in6->sin6_addr.s6_addr[15] == 2,
		      "sockaddr v6, port 0");
		strcpy(a.host, "host.example");
		CHECK(tp_to_sockaddr(&a, 1, &ss) == -EINVAL, "sockaddr: names are refused");
	}
	return check_done();
}
