#define _GNU_SOURCE
#include "borg/control.h"
#include "borg/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A signal handler can only talk through a flag like this. */
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void set_handlers(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void control_catch_signals(void) { set_handlers(on_stop_signal); }
void control_ignore_signals(void) { set_handlers(SIG_IGN); }
int control_stop_requested(void) { return g_stop != 0; }

struct run_control {
    char *cancel_path;
    off_t offset; /* how far the cancel file has been read */
    double last_poll;
    char **ids;
    int n_ids, cap_ids;
};

borg_status control_open(const char *run_dir, run_control **out, borg_err *err)
{
    run_control *c = calloc(1, sizeof *c);
    if (!c)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    if (run_dir) {
        if (mkdir(run_dir, 0755) != 0 && errno != EEXIST) {
            free(c);
            return borg_fail(err, BORG_EIO, "%s: cannot create run directory: %s", run_dir, strerror(errno));
        }
        if (asprintf(&c->cancel_path, "%s/cancel", run_dir) < 0) {
            free(c);
            return borg_fail(err, BORG_ENOMEM, "out of memory");
        }
        /* Cancellations from an earlier run of the same directory still hold. */
    }
    *out = c;
    return BORG_OK;
}

void control_close(run_control *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_ids; i++)
        free(c->ids[i]);
    free(c->ids);
    free(c->cancel_path);
    free(c);
}

static borg_status add_id(run_control *c, const char *id, size_t len)
{
    if (c->n_ids == c->cap_ids) {
        int cap = c->cap_ids ? 2 * c->cap_ids : 16;
        char **ids = realloc(c->ids, sizeof *ids * (size_t)cap);
        if (!ids)
            return BORG_ENOMEM;
        c->ids = ids;
        c->cap_ids = cap;
    }
    if (!(c->ids[c->n_ids] = strndup(id, len)))
        return BORG_ENOMEM;
    c->n_ids++;
    return BORG_OK;
}

borg_status control_poll(run_control *c, borg_err *err)
{
    if (!c->cancel_path)
        return BORG_OK;
    double t = proc_now_s();
    if (t - c->last_poll < 0.25)
        return BORG_OK;
    c->last_poll = t;
    int fd = open(c->cancel_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? BORG_OK : borg_fail(err, BORG_EIO, "%s: %s", c->cancel_path, strerror(errno));
    struct stat sb;
    borg_status st = BORG_OK;
    if (fstat(fd, &sb) == 0 && sb.st_size > c->offset) {
        size_t len = (size_t)(sb.st_size - c->offset);
        char *buf = malloc(len);
        ssize_t got = buf ? pread(fd, buf, len, c->offset) : -1;
        if (got < 0) {
            st = borg_fail(err, BORG_EIO, "%s: cannot read: %s", c->cancel_path, strerror(errno));
        } else {
            /* Only whole lines: a writer may be half-way through the next. */
            char *p = buf, *end = buf + got;
            char *nl;
            while (!st && (nl = memchr(p, '\n', (size_t)(end - p)))) {
                if (nl > p && add_id(c, p, (size_t)(nl - p)))
                    st = borg_fail(err, BORG_ENOMEM, "out of memory");
                c->offset += nl + 1 - p;
                p = nl + 1;
            }
        }
        free(buf);
    }
    close(fd);
    return st;
}

int control_cancelled(const run_control *c, const char *id)
{
    for (int i = 0; i < c->n_ids; i++)
        if (!strcmp(c->ids[i], id))
            return 1;
    return 0;
}

borg_status control_request_cancel(const char *run_dir, char *const *ids, int n, borg_err *err)
{
    char *path;
    if (asprintf(&path, "%s/cancel", run_dir) < 0)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        borg_status st = borg_fail(err, errno == ENOENT ? BORG_EUSAGE : BORG_EIO, "%s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    borg_status st = BORG_OK;
    for (int i = 0; i < n && !st; i++) {
        if (strchr(ids[i], '\n')) {
            st = borg_fail(err, BORG_EUSAGE, "a job id cannot contain a newline");
            break;
        }
        char *line;
        int len = asprintf(&line, "%s\n", ids[i]);
        if (len < 0) {
            st = borg_fail(err, BORG_ENOMEM, "out of memory");
            break;
        }
        if (write(fd, line, (size_t)len) != len)
            st = borg_fail(err, BORG_EIO, "%s: write failed: %s", path, strerror(errno));
        free(line);
    }
    close(fd);
    free(path);
    return st;
}
