/* sdnotify: the sd_notify() datagram, done by hand. */
#include "daemon/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify(const char *state)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len, room = sizeof(sa.sun_path);
	socklen_t salen;
	ssize_t n;
	int fd, err = 0;

	if (!env || !*env)
		return 0;
	len = strlen(env);
	/* A path needs room for its NUL; an abstract name has none, and its
	 * length is exactly what the address length says, so the length must
	 * not be sizeof(sa): the name would gain trailing NULs and miss.  (The
	 * self-contained example in systemd's man pages gets this wrong.) */
	if (env[0] == '/' && len < room)
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	else if (env[0] == '@' && len <= room)
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	else
		return -EINVAL;
	memcpy(sa.sun_path, env, len);
	if (env[0] == '@')
		sa.sun_path[0] = '\0';

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	len = strlen(state);
	do
		n = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err ? err : 1;
}
