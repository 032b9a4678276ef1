/* Error reporting shared by every module.
 *
 * A function that can fail returns a borg_status and, on failure, writes a
 * message naming the file, line or tensor at fault into the caller's
 * borg_err. Nothing below main() prints or exits. */
#ifndef BORG_ERROR_H
#define BORG_ERROR_H

#include <stddef.h>

typedef enum {
    BORG_OK = 0,
    BORG_EUSAGE = 1,      /* bad command line */
    BORG_EINPUT = 2,      /* bad model file or job input: exit code 2 */
    BORG_EINCOMPLETE = 3, /* run stopped early, resumable: exit code 3 */
    BORG_ENOMEM = 4,
    BORG_EIO = 5,
    BORG_EINTERNAL = 6,
    BORG_EPEER = 7 /* another rank of the job failed: recover, or stop resumable (exit 3) */
} borg_status;

#define BORG_ERR_MSG 512

typedef struct borg_err {
    borg_status code;
    char msg[BORG_ERR_MSG];
} borg_err;

/* Records code and a printf-style message in err (which may be NULL) and
 * returns code, so callers can write `return borg_fail(err, ...)`. */
borg_status borg_fail(borg_err *err, borg_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Process exit code for a status: 0 ok, 2 bad input or usage, 3 incomplete,
 * 1 anything else. */
int borg_exit_code(borg_status s);

#endif
