#include "borg/error.h"

#include <stdarg.h>
#include <stdio.h>

borg_status borg_fail(borg_err *err, borg_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int borg_exit_code(borg_status s)
{
    switch (s) {
    case BORG_OK: return 0;
    case BORG_EUSAGE:
    case BORG_EINPUT: return 2;
    case BORG_EINCOMPLETE:
    case BORG_EPEER: return 3;
    default: return 1;
    }
}
