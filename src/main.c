/* borg-infer: picks the command, runs it, maps its status to an exit code.
 * The only place that prints errors or exits. */
#include <stdio.h>
#include <string.h>

#include "borg/config.h"
#include "borg/coordinator.h"
#include "borg/error.h"
#include "borg/inspect.h"

#define BORG_VERSION "0.1.0"

static borg_command command_named(const char *name)
{
    if (name && !strcmp(name, "run"))
        return CMD_RUN;
    if (name && !strcmp(name, "info"))
        return CMD_INFO;
    if (name && !strcmp(name, "tokenize"))
        return CMD_TOKENIZE;
    return CMD_NONE;
}

int main(int argc, char **argv)
{
    borg_config cfg;
    borg_err err = {0};
    borg_status st = cli_parse(argc, argv, &cfg, &err);
    if (st) {
        fprintf(stderr, "borg-infer: %s\n", err.msg);
        return borg_exit_code(st);
    }
    switch (cfg.command) {
    case CMD_HELP:
        cli_usage(stdout, command_named(cfg.text));
        return 0;
    case CMD_VERSION:
        printf("borg-infer %s\n", BORG_VERSION);
        return 0;
    case CMD_INFO: st = inspect_info(&cfg, stdout, &err); break;
    case CMD_TOKENIZE: st = inspect_tokenize(&cfg, stdout, &err); break;
    case CMD_RUN: st = coordinator_run(&cfg, &err); break;
    default: st = BORG_EUSAGE; break;
    }
    if (st)
        fprintf(stderr, "borg-infer: %s\n", err.msg);
    return borg_exit_code(st);
}
