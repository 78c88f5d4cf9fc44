/* clock: the monotonic clock, in milliseconds.  Read only by the event
 * loops (the daemon's, libccm's waits, the CLI's); everything below them
 * is handed the time. */
#ifndef CCM_CLOCK_H
#define CCM_CLOCK_H

#include <stdint.h>

uint64_t clock_ms(void);

#endif
