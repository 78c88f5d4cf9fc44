/* fuzz_control: arbitrary bytes from a local client, as one datagram on the
 * keeper's control socket.  control_next must decode or refuse it without
 * crashing, and hand out only requests whose fields are within bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct control *keeper;
static char dir[] = "/tmp/fuzz_keeper.XXXXXX";

static void setup(void)
{
	struct errbuf e;

	if (!mkdtemp(dir) || control_open(dir, NULL, &keeper, &e) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct control_req req;
	int fd, n = 0;

	if (!keeper)
		setup();
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	strcpy(a.sun_path, control_path(keeper));
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	/* First byte picks how many messages the rest is cut into. */
	if (size > 0) {
		size_t parts = 1 + data[0] % 3, each = (size - 1) / parts;

		for (size_t i = 0; i < parts; i++)
			send(fd, data + 1 + i * each, i + 1 == parts ? size - 1 - i * each : each,
			     MSG_NOSIGNAL);
	}
	while (n++ < 16 && control_next(keeper, &req) == 1) {
		switch (req.type) {
		case CREQ_ATTACH:
			if (!memchr(req.client, '\0', sizeof(req.client)))
				abort();
			break;
		case CREQ_SEND:
			if (req.len < 1 || req.len > CTL_MSG_MAX)
				abort();
			break;
		default:
			break;
		}
		control_error(keeper, req.conn, -EINVAL, "fuzz");
	}
	close(fd);
	/* Let the keeper see the close before the next input. */
	while (control_next(keeper, &req) == 1)
		;
	return 0;
}
