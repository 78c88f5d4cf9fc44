#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/real_root.h"

void real_root_open(struct real_root *rr)
{
	rr->proc_fd = -1;
	if (access("/etc/initrd-release", F_OK) == 0)
		rr->proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int real_root_follow(const struct real_root *rr, const struct log *log)
{
	struct stat theirs, ours;
	int fd, r = 0;

	if (!rr || rr->proc_fd < 0)
		return 0;
	fd = openat(rr->proc_fd, "1/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		log_at(log, LOG_ERR, "cannot find the real root (/proc/1/root): %s", strerror(-r));
		return r;
	}
	if (fstat(fd, &theirs) < 0 || stat("/", &ours) < 0) {
		r = -errno;
		log_at(log, LOG_ERR, "cannot compare with the real root: %s", strerror(-r));
	} else if (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino) {
		/* The old root is the initramfs, emptied by switch_root: once
		 * we leave it, its memory is given back too. */
		if (fchdir(fd) < 0 || chroot(".") < 0 || chdir("/") < 0) {
			r = -errno;
			log_at(log, LOG_ERR, "cannot move into the real root: %s", strerror(-r));
		} else {
			log_at(log, LOG_NOTE, "the initramfs has gone: now in the real root");
			r = 1;
		}
	}
	close(fd);
	return r;
}

void real_root_close(struct real_root *rr)
{
	if (rr->proc_fd >= 0)
		close(rr->proc_fd);
	rr->proc_fd = -1;
}
