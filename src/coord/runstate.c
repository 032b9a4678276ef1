/* The BORG_STATE_FILE record (see borg/runstate.h). Each state is written
 * to a temporary name and renamed over the file, so the launcher never
 * reads half of one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/runstate.h"

static borg_status write_state(const char *path, const char *text, borg_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return borg_fail(err, BORG_EIO, "BORG_STATE_FILE %s: %s", path, strerror(ENAMETOOLONG));
    FILE *f = fopen(tmp, "w");
    if (!f)
        return borg_fail(err, BORG_EIO, "BORG_STATE_FILE %s: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        remove(tmp);
        return borg_fail(err, BORG_EIO, "BORG_STATE_FILE %s: %s", path, strerror(e));
    }
    return BORG_OK;
}

/* Records one state word; without BORG_STATE_FILE nobody is watching and
 * there is nothing to do. */
static borg_status record(const char *text, borg_err *err)
{
    const char *path = getenv("BORG_STATE_FILE");
    return path && *path ? write_state(path, text, err) : BORG_OK;
}

borg_status runstate_started(borg_err *err) { return record("started\n", err); }

borg_status runstate_running(borg_err *err) { return record("running\n", err); }

void runstate_exit(int exit_code)
{
    char text[32];
    snprintf(text, sizeof text, "exit %d\n", exit_code);
    record(text, NULL); /* at exit the code says it all; nothing is left to tell */
}
