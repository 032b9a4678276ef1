/* Facts about this process that timing and reports need. */
#ifndef BORG_PROC_H
#define BORG_PROC_H

/* Seconds on a monotonic clock (for intervals only). */
double proc_now_s(void);

/* The most resident memory this process has had, in MiB (0 if unknown). */
double proc_peak_rss_mib(void);

#endif
