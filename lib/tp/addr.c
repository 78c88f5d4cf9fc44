/* addr: numeric "ADDR[:PORT]" parsing and formatting for struct tp_addr.
 *
 * Accepted forms:
 *   1.2.3.4          IPv4, default port
 *   1.2.3.4:7471     IPv4 and port
 *   ::1              bare IPv6 (two or more colons), default port
 *   [::1]            bracketed IPv6, default port
 *   [::1]:7471       bracketed IPv6 and port
 * Numeric only, through inet_pton: this runs in an initramfs, where there is
 * no resolver to ask and a name lookup could hang the boot.  The stored host
 * is the canonical inet_ntop form, so two spellings of one address compare
 * equal with strcmp.  Zone ids ("fe80::1%eth0") are not accepted. */
#include "tp/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/num.h"

int tp_parse_addr(const char *s, uint16_t default_port, struct tp_addr *out,
		  struct errbuf *e)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *port = NULL, *h = s, *end, *c;
	uint16_t pnum = default_port;
	uint32_t pv;
	int af = AF_INET;
	size_t n;

	if (s[0] == '[') {
		h = s + 1;
		end = strchr(h, ']');
		if (!end)
			return errbuf_set(e, -EINVAL, "address '%.80s': missing ']'", s);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return errbuf_set(e, -EINVAL,
					  "address '%.80s': expected ':PORT' after ']'", s);
		af = AF_INET6;
	} else {
		c = strchr(s, ':');
		end = s + strlen(s);
		if (c && strchr(c + 1, ':'))
			af = AF_INET6;  /* bare IPv6: every colon is the address's */
		else if (c) {
			end = c;
			port = c + 1;
		}
	}
	n = (size_t)(end - h);
	if (n == 0)
		return errbuf_set(e, -EINVAL, "address '%.80s': empty host", s);
	if (n >= sizeof(host))
		return errbuf_set(e, -EINVAL, "address '%.80s': host too long", s);
	memcpy(host, h, n);
	host[n] = 0;
	if (inet_pton(af, host, bin) != 1)
		return errbuf_set(e, -EINVAL,
				  "address '%.80s': '%s' is not a numeric %s address",
				  s, host, af == AF_INET ? "IPv4" : "IPv6");
	if (port) {
		if (num_parse_u32(port, 1, 65535, &pv) < 0)
			return errbuf_set(e, -EINVAL, "address '%.80s': port '%.16s' is not a "
					  "number in 1..65535", s, port);
		pnum = (uint16_t)pv;
	}
	if (!inet_ntop(af, bin, out->host, sizeof(out->host)))
		return errbuf_set(e, -EINVAL, "address '%.80s': cannot format", s);
	out->port = pnum;
	return 0;
}

int tp_to_sockaddr(const struct tp_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a->host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		return (int)sizeof(*in4);
	}
	if (inet_pton(AF_INET6, a->host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return (int)sizeof(*in6);
	}
	return -EINVAL;
}

bool tp_same_host(const struct sockaddr *sa, const struct tp_addr *a)
{
	struct sockaddr_storage want;

	if (!sa || tp_to_sockaddr(a, 0, &want) < 0 || sa->sa_family != want.ss_family)
		return false;
	if (sa->sa_family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)sa)->sin_addr,
			       &((struct sockaddr_in *)&want)->sin_addr, sizeof(struct in_addr));
	return !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
		       &((struct sockaddr_in6 *)&want)->sin6_addr, sizeof(struct in6_addr));
}

const char *tp_format_addr(const struct tp_addr *a, char *buf, size_t len)
{
	const char *fmt = strchr(a->host, ':') ? "[%s]:%u" : "%s:%u";

	snprintf(buf, len, fmt, a->host, (unsigned)a->port);
	return buf;
}
