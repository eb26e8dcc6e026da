/* Monotonic time, for progress reports. */
#ifndef DC_SRC_CORE_CLOCK_H
#define DC_SRC_CORE_CLOCK_H

/* Monotonic seconds. */
double dci_now(void);

#endif
