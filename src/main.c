/* borg-infer: joins the MPI job if there is one, gives each rank its role,
 * runs the command and maps its status to an exit code. The only place
 * that reports a command's failure or exits. */
#include <stdio.h>
#include <string.h>

#include "borg/config.h"
#include "borg/control.h"
#include "borg/cpu.h"
#include "borg/coordinator.h"
#include "borg/error.h"
#include "borg/inspect.h"
#include "borg/log.h"
#include "borg/matmul.h"
#include "borg/net.h"
#include "borg/perplexity.h"
#include "borg/progress.h"
#include "borg/runstate.h"
#include "borg/stage_rank.h"


static borg_command command_named(const char *name)
{
    static const struct {
        const char *name;
        borg_command cmd;
    } table[] = {{"run", CMD_RUN},      {"info", CMD_INFO},     {"tokenize", CMD_TOKENIZE},
                 {"plan", CMD_PLAN},    {"cancel", CMD_CANCEL}, {"perplexity", CMD_PERPLEXITY},
                 {"status", CMD_STATUS}};
    for (size_t i = 0; name && i < sizeof table / sizeof *table; i++)
        if (!strcmp(name, table[i].name))
            return table[i].cmd;
    return CMD_NONE;
}

/* An exit before MPI starts, recorded as rank 0 records one after: the
 * launcher takes an mpirun that ends with no record for a failed start
 * (every process under it writes the same record). */
static int exit_before_mpi(borg_status st)
{
    runstate_exit(borg_exit_code(st));
    return borg_exit_code(st);
}

int main(int argc, char **argv)
{
    borg_config cfg;
    borg_err err = {0};
    borg_status st = cli_parse(argc, argv, &cfg, &err);
    if (st) {
        fprintf(stderr, "borg-infer: %s\n", err.msg);
        return exit_before_mpi(st);
    }
    if (cfg.command == CMD_HELP) {
        cli_usage(stdout, command_named(cfg.text));
        return exit_before_mpi(BORG_OK);
    }
    if (cfg.command == CMD_VERSION) {
        printf("borg-infer %s\n", BORG_VERSION);
        return exit_before_mpi(BORG_OK);
    }
    if (cfg.command == CMD_CANCEL) {
        if ((st = control_request_cancel(cfg.run_dir, cfg.cancel_ids, cfg.n_cancel_ids, &err)))
            fprintf(stderr, "borg-infer: %s\n", err.msg);
        return exit_before_mpi(st);
    }
    if (cfg.command == CMD_STATUS) {
        if ((st = status_show(cfg.run_dir, stdout, &err)))
            fprintf(stderr, "borg-infer: %s\n", err.msg);
        return exit_before_mpi(st);
    }
    log_setup(cfg.log_json, cfg.quiet, cfg.verbose, NULL);
    if ((st = cpu_isa_check(&err))) {
        log_event(LOG_ERROR, "failed", NULL, LOG_FIELDS(LOG_I("exit_code", borg_exit_code(st))), "%s", err.msg);
        return exit_before_mpi(st);
    }
    if (cfg.activations)
        matmul_set_q8_activations(cfg.activations == 8);
    /* A drain signal that comes while MPI starts (Slurm's warning can come
     * at any time) must not kill the rank: caught now, kept by rank 0. */
    const int runs = cfg.command == CMD_RUN || cfg.command == CMD_PERPLEXITY;
    if (runs)
        control_catch_signals();
    borg_net *net;
    if ((st = net_init(&argc, &argv, &net, &err))) {
        log_event(LOG_ERROR, "failed", NULL, LOG_FIELDS(LOG_I("exit_code", borg_exit_code(st))), "%s", err.msg);
        return borg_exit_code(st);
    }
    int rank = net_rank(net);
    log_set_rank(rank);
    if (rank == 0 && (st = runstate_started(&err))) {
        log_event(LOG_ERROR, "failed", NULL, LOG_FIELDS(LOG_I("exit_code", borg_exit_code(st))), "%s", err.msg);
        net_finalize(net, borg_exit_code(st));
        return borg_exit_code(st);
    }
    /* Rank 0 only coordinates when there are stage ranks. */
    if (runs && !cfg.threads && (st = net_default_threads(net, rank != 0 || net_size(net) == 1, &cfg.threads, &err))) {
        log_event(LOG_ERROR, "failed", NULL, LOG_FIELDS(LOG_I("exit_code", borg_exit_code(st))), "%s", err.msg);
        net_finalize(net, borg_exit_code(st));
        return borg_exit_code(st);
    }
    if (cfg.command == CMD_RUN && rank == 0) {
        st = coordinator_run(&cfg, net, &err);
        runstate_exit(borg_exit_code(st));
    } else if (cfg.command == CMD_PERPLEXITY && rank == 0) {
        st = perplexity_run(&cfg, net, stdout, &err);
        runstate_exit(borg_exit_code(st));
    } else if (runs) {
        control_ignore_signals();
        st = stage_rank_main(&cfg, net, &err);
    } else if (rank == 0 && cfg.command == CMD_INFO)
        st = inspect_info(&cfg, stdout, &err);
    else if (rank == 0 && cfg.command == CMD_TOKENIZE)
        st = inspect_tokenize(&cfg, stdout, &err);
    else if (rank == 0 && cfg.command == CMD_PLAN)
        st = inspect_plan(&cfg, stdout, &err);
    if (rank == 0 && !runs)
        runstate_exit(borg_exit_code(st)); /* a failed inspection is not a failed start */
    if (st) {
        log_event(LOG_ERROR, "failed", NULL, LOG_FIELDS(LOG_I("exit_code", borg_exit_code(st))), "%s", err.msg);
        /* A coordinator that fails leaves stages waiting for batches; a
         * stage that fails has told the coordinator, which ends the job. */
        if (rank == 0 && net_size(net) > 1 && st != BORG_EINCOMPLETE)
            net_abort(net, borg_exit_code(st));
    }
    net_finalize(net, borg_exit_code(st));
    return borg_exit_code(st);
}
