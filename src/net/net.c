#define _GNU_SOURCE
#include "borg/net.h"
#include "borg/proc.h"
#include "inproc.h"

#include <mpi.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>
#endif
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(OMPI_HAVE_MPI_EXT_FTMPI) && OMPI_HAVE_MPI_EXT_FTMPI
#define BORG_ULFM 1
#else
#define BORG_ULFM 0
#endif

/* Seconds MPI_Finalize may take after a recovery. */
enum { FINALIZE_LIMIT_S = 10 };

/* Frames in flight from one rank; more would only queue in MPI. */
enum { MAX_PENDING = 16 };
#define FRAME_TAG 7

struct borg_net {
    int mpi;           /* 0 when running without an MPI launcher */
    inproc_link *link; /* one end of an in-process pair (net_pair), else NULL */
    int recovered;     /* the job lost a rank on the way */
    long sends;        /* frames sent so far */
    long corrupt_at;   /* test fault: damage the frame with this number (1-based); 0: never */
    int rank, size;
    MPI_Comm comm;
    frame_buf pending[MAX_PENDING];
    MPI_Request req[MAX_PENDING];
    int busy[MAX_PENDING];
};

static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

/* How many processes the launcher says it started (0: it does not say). */
static long launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v)
            return strtol(v, NULL, 10);
    }
    return 0;
}

static borg_status mpi_fail(borg_err *err, int rc, const char *what)
{
#if BORG_ULFM
    int cls = 0;
    MPI_Error_class(rc, &cls);
    if (cls == MPIX_ERR_PROC_FAILED || cls == MPIX_ERR_PROC_FAILED_PENDING || cls == MPIX_ERR_REVOKED)
        return borg_fail(err, BORG_EPEER, "%s: a rank of the job has failed", what);
#endif
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return borg_fail(err, BORG_EIO, "%s failed: %s", what, msg);
}

borg_status net_init(int *argc, char ***argv, borg_net **out, borg_err *err)
{
    borg_net *n = calloc(1, sizeof *n);
    if (!n)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    n->size = 1;
    if (launched_by_mpi()) {
        int provided;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            free(n);
            return borg_fail(err, BORG_EIO, "MPI_Init_thread failed (code %d)", rc);
        }
        n->mpi = 1;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_dup(MPI_COMM_WORLD, &n->comm);
        MPI_Comm_set_errhandler(n->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(n->comm, &n->rank);
        MPI_Comm_size(n->comm, &n->size);
        /* A process whose launcher's link failed can come up as an MPI
         * singleton: it would run the whole batch alone, beside the others
         * doing the same, all writing one results file. */
        long told = launcher_size();
        if (told > 1 && n->size == 1) {
            MPI_Finalize();
            free(n);
            return borg_fail(err, BORG_EIO,
                             "started as one of %ld processes, but MPI sees only this one: the launcher's "
                             "connection failed (PMIx); nothing was run",
                             told);
        }
    }
    /* BORG_TEST_CORRUPT_FRAME=RANK:N makes rank RANK flip one payload bit of
     * the N-th frame it sends, after its CRC was computed. For the tests of
     * frame checking only. */
    const char *fault = getenv("BORG_TEST_CORRUPT_FRAME");
    int fault_rank;
    long fault_n;
    if (fault && sscanf(fault, "%d:%ld", &fault_rank, &fault_n) == 2 && fault_rank == n->rank)
        n->corrupt_at = fault_n;
    *out = n;
    return BORG_OK;
}

borg_status net_pair(borg_net **a, borg_net **b, borg_err *err)
{
    inproc_link *link;
    borg_status st = inproc_create(&link, err);
    if (st)
        return st;
    borg_net *end[2] = {calloc(1, sizeof **a), calloc(1, sizeof **b)};
    if (!end[0] || !end[1]) {
        free(end[0]);
        free(end[1]);
        inproc_hangup(link, 0);
        inproc_hangup(link, 1);
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < 2; i++) {
        end[i]->link = link;
        end[i]->rank = i;
        end[i]->size = 2;
    }
    *a = end[0];
    *b = end[1];
    return BORG_OK;
}

/* The exit code a process leaves with if MPI_Finalize hangs (below). */
static volatile sig_atomic_t g_exit_code;

static void finalize_timed_out(int sig)
{
    (void)sig;
    _exit(g_exit_code);
}

void net_finalize(borg_net *n, int exit_code)
{
    if (!n)
        return;
    if (n->link)
        inproc_hangup(n->link, n->rank);
    if (n->mpi) {
        net_flush(n, NULL);
        MPI_Comm_free(&n->comm);
        /* After a rank failed, Open MPI 5's MPI_Finalize can wait forever
         * on the dead rank (seen about one run in three). The results are
         * written by then; leave with our own code rather than hang. */
        if (n->recovered) {
            g_exit_code = exit_code;
            signal(SIGALRM, finalize_timed_out);
            alarm(FINALIZE_LIMIT_S);
        }
        MPI_Finalize();
        alarm(0);
    }
    for (int i = 0; i < MAX_PENDING; i++)
        frame_buf_free(&n->pending[i]);
    free(n);
}

void net_abort(borg_net *n, int code)
{
    if (n && n->mpi)
        MPI_Abort(n->comm, code);
}

int net_rank(const borg_net *n) { return n->rank; }
int net_size(const borg_net *n) { return n->size; }

static void nap(long *ns)
{
    struct timespec ts = {0, *ns};
    nanosleep(&ts, NULL);
    /* Back off to 1 ms: latency stays low when frames come quickly, and an
     * idle rank costs next to nothing. */
    if (*ns < 1000000)
        *ns = *ns * 2;
}

/* Marks completed sends free; returns the index of a free slot or -1. */
static int reap(borg_net *n, borg_err *err, borg_status *st)
{
    int free_slot = -1;
    *st = BORG_OK;
    for (int i = 0; i < MAX_PENDING; i++) {
        if (n->busy[i]) {
            int done = 0;
            int rc = MPI_Test(&n->req[i], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) {
                *st = mpi_fail(err, rc, "MPI_Test on a send");
                n->busy[i] = 0;
            } else if (done) {
                n->busy[i] = 0;
            }
        }
        if (!n->busy[i] && free_slot < 0)
            free_slot = i;
    }
    return free_slot;
}

borg_status net_send(borg_net *n, int dest, frame_buf *f, borg_err *err)
{
    if (n->link)
        return inproc_send(n->link, dest, f, err);
    if (!n->mpi)
        return borg_fail(err, BORG_EINTERNAL, "send to rank %d without MPI", dest);
    borg_status st;
    long ns = 20000;
    int slot;
    while ((slot = reap(n, err, &st)) < 0 && !st)
        nap(&ns);
    if (st)
        return st;
    frame_buf spare = n->pending[slot];
    n->pending[slot] = *f;
    *f = spare;
    f->len = 0;
    const frame_buf *out = &n->pending[slot];
    if (++n->sends == n->corrupt_at && out->len > sizeof(frame_header))
        out->p[out->len - 1] ^= 0x10;
    if (out->len > (size_t)INT32_MAX)
        return borg_fail(err, BORG_EINPUT, "frame of %zu bytes is too large to send", out->len);
    int rc = MPI_Isend(out->p, (int)out->len, MPI_BYTE, dest, FRAME_TAG, n->comm, &n->req[slot]);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Isend");
    n->busy[slot] = 1;
    return BORG_OK;
}

borg_status net_recv(borg_net *n, frame_buf *f, int *src, double timeout_s, borg_err *err)
{
    if (n->link) {
        *src = 1 - n->rank;
        return inproc_recv(n->link, n->rank, f, timeout_s, err);
    }
    if (!n->mpi)
        return borg_fail(err, BORG_EINTERNAL, "receive without MPI");
    double deadline = timeout_s >= 0 ? proc_now_s() + timeout_s : 0;
    long ns = 20000;
    MPI_Status status;
    for (;;) {
        int flag = 0;
        int rc = MPI_Iprobe(MPI_ANY_SOURCE, FRAME_TAG, n->comm, &flag, &status);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, rc, "MPI_Iprobe");
        if (flag)
            break;
        borg_status st;
        reap(n, err, &st);
        if (st)
            return st;
        if (timeout_s >= 0 && proc_now_s() > deadline)
            return BORG_EINCOMPLETE;
        nap(&ns);
    }
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    if (count < 0)
        return borg_fail(err, BORG_EIO, "frame of unknown size from rank %d", status.MPI_SOURCE);
    if ((size_t)count > f->cap) {
        uint8_t *p = realloc(f->p, (size_t)count);
        if (!p)
            return borg_fail(err, BORG_ENOMEM, "out of memory for a frame of %d bytes", count);
        f->p = p;
        f->cap = (size_t)count;
    }
    int rc = MPI_Recv(f->p, count, MPI_BYTE, status.MPI_SOURCE, FRAME_TAG, n->comm, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Recv");
    f->len = (size_t)count;
    *src = status.MPI_SOURCE;
    return BORG_OK;
}

borg_status net_flush(borg_net *n, borg_err *err)
{
    if (!n->mpi)
        return BORG_OK;
    long ns = 20000;
    for (;;) {
        borg_status st;
        reap(n, err, &st);
        if (st)
            return st;
        int any = 0;
        for (int i = 0; i < MAX_PENDING; i++)
            any |= n->busy[i];
        if (!any)
            return BORG_OK;
        nap(&ns);
    }
}

int net_can_recover(const borg_net *n) { return n->mpi && BORG_ULFM; }

borg_status net_recover(borg_net *n, int *failed, int *n_failed, int *coordinator_lost, borg_err *err)
{
    *n_failed = 0;
    *coordinator_lost = 0;
#if BORG_ULFM
    MPIX_Comm_revoke(n->comm);
    /* Sends still pending went to the old communicator: the revoke makes
     * them complete (in error), and they are void. Freeing them instead
     * would report that error to MPI_COMM_WORLD's handler. */
    long ns = 20000;
    for (int tries = 0; tries < 2000; tries++) {
        int any = 0;
        for (int i = 0; i < MAX_PENDING; i++) {
            int done = 0;
            if (n->busy[i] && (MPI_Test(&n->req[i], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done))
                n->busy[i] = 0;
            any |= n->busy[i];
        }
        if (!any)
            break;
        nap(&ns);
    }
    for (int i = 0; i < MAX_PENDING; i++)
        n->busy[i] = 0;
    MPI_Comm shrunk;
    int rc = MPIX_Comm_shrink(n->comm, &shrunk);
    if (rc != MPI_SUCCESS)
        return borg_fail(err, BORG_EPEER, "MPIX_Comm_shrink failed (code %d)", rc);
    /* Failed ranks are named as the launcher numbered them (world ranks):
     * after a first recovery the communicator's own numbers shift, and a
     * log naming those would point at the wrong process. Rank 0 is world
     * rank 0 while it lives. */
    MPI_Group old_group, new_group, failed_group, world_group;
    MPI_Comm_group(n->comm, &old_group);
    MPI_Comm_group(shrunk, &new_group);
    MPI_Comm_group(MPI_COMM_WORLD, &world_group);
    MPI_Group_difference(old_group, new_group, &failed_group);
    int k = 0;
    MPI_Group_size(failed_group, &k);
    for (int i = 0; i < k && failed; i++) {
        int translated;
        MPI_Group_translate_ranks(failed_group, 1, &i, world_group, &translated);
        failed[i] = translated;
        if (translated == 0)
            *coordinator_lost = 1;
    }
    *n_failed = k;
    MPI_Group_free(&failed_group);
    MPI_Group_free(&new_group);
    MPI_Group_free(&old_group);
    MPI_Group_free(&world_group);
    MPI_Comm_free(&n->comm);
    n->comm = shrunk;
    MPI_Comm_set_errhandler(n->comm, MPI_ERRORS_RETURN);
    /* All survivors leave recovery together, on the same membership. */
    int flag = 1;
    rc = MPIX_Comm_agree(n->comm, &flag);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPIX_Comm_agree");
    MPI_Comm_rank(n->comm, &n->rank);
    MPI_Comm_size(n->comm, &n->size);
    n->recovered = 1;
    return BORG_OK;
#else
    (void)failed;
    return borg_fail(err, BORG_EPEER, "this MPI cannot recover from a failed rank (no ULFM)");
#endif
}

borg_status net_default_threads(borg_net *n, int computes, int *threads, borg_err *err)
{
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0 || CPU_COUNT(&mine) < 1) {
        *threads = 1;
        return BORG_OK;
    }
    int cpus = CPU_COUNT(&mine);
    *threads = cpus;
    if (!n->mpi || n->size == 1)
        return BORG_OK;
    MPI_Comm node;
    if (MPI_Comm_split_type(n->comm, MPI_COMM_TYPE_SHARED, n->rank, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return borg_fail(err, BORG_EIO, "MPI_Comm_split_type failed while placing threads");
    int local;
    MPI_Comm_size(node, &local);
    /* Each rank's CPU mask, then one byte saying whether it computes. */
    const int rec = (int)sizeof(cpu_set_t) + 1;
    unsigned char *all = malloc((size_t)rec * (size_t)local), self[sizeof(cpu_set_t) + 1];
    if (!all) {
        MPI_Comm_free(&node);
        return borg_fail(err, BORG_ENOMEM, "out of memory placing threads");
    }
    memcpy(self, &mine, sizeof mine);
    self[sizeof mine] = computes != 0;
    int rc = MPI_Allgather(self, rec, MPI_BYTE, all, rec, MPI_BYTE, node);
    MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS) {
        free(all);
        return borg_fail(err, BORG_EIO, "MPI_Allgather failed while placing threads");
    }
    int sharers = 0;
    for (int i = 0; i < local; i++) {
        cpu_set_t other, both;
        memcpy(&other, all + (size_t)i * rec, sizeof other);
        CPU_AND(&both, &other, &mine);
        sharers += all[(size_t)i * rec + sizeof other] && CPU_COUNT(&both) > 0;
    }
    free(all);
    if (sharers > 1)
        *threads = cpus / sharers > 0 ? cpus / sharers : 1;
    return BORG_OK;
}
