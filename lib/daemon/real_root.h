/* real_root: a keeper started in the initramfs outlives switch_root, but
 * in the initramfs' root: systemd (or switch_root) moves /dev, /proc, /sys
 * and /run into the real root and takes PID 1 there, not us.  Whatever the
 * keeper opens by path afterwards -- a restarted session's RDMA devices,
 * state directory, control socket and client descriptors, or key files read
 * again -- must come from the real root, where the operator, the clients
 * and the devices are.  An fd on /proc opened at start moves with /proc;
 * through it PID 1's root stays reachable, and the keeper joins it. */
#ifndef CCM_REAL_ROOT_H
#define CCM_REAL_ROOT_H

#include "base/log.h"

struct real_root {
	int proc_fd;  /* /proc, opened at start in an initramfs; else -1 */
};

/* At start: keep the way to the real root if we run in an initramfs
 * (/etc/initrd-release exists, as systemd's own rule for root storage
 * daemons checks); elsewhere the keeper's root is already the real one,
 * and a keeper run in a chroot on purpose must stay there. */
void real_root_open(struct real_root *rr);

/* Before opening anything by path: if PID 1's root is no longer ours
 * (switch_root happened), make it ours (chroot, chdir "/").  1 when the
 * keeper moved, 0 when there was nothing to do, -errno when it could not
 * (logged; the keeper stays where it is). */
int real_root_follow(const struct real_root *rr, const struct log *log);

void real_root_close(struct real_root *rr);

#endif
