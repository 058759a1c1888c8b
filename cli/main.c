/* The `cgprof` command: dispatches `cgprof <command> [options]` to one
 * cmd_<name>.c per subcommand, and holds `help` plus the error and output
 * helpers they share. The control-plane commands (groups, permissions,
 * profile, recommendations, upload) share aws.c; a new command adds a file
 * and one row to `commands`. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli_int.h"

static void help_help(FILE *out);
static int run_help(int argc, char **argv);

static const struct cgprof__cli_command cmd_help = {
    "help", "show help for cgprof or one of its commands", help_help, run_help
};

static const struct cgprof__cli_command *const commands[] = {
    &cgprof__cli_cmd_run,
    &cgprof__cli_cmd_report,
    &cgprof__cli_cmd_upload,
    &cgprof__cli_cmd_groups,
    &cgprof__cli_cmd_permissions,
    &cgprof__cli_cmd_profile,
    &cgprof__cli_cmd_recommendations,
    &cgprof__cli_cmd_version,
    &cmd_help,
};

static const struct cgprof__cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

int cgprof__cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cgprof%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    /* "groups create" -> the manual of "groups". */
    int first = cmd ? (int)strcspn(cmd, " ") : 0;
    fprintf(stderr, "; see 'cgprof help%s%.*s'\n", cmd ? " " : "", first, cmd ? cmd : "");
    return CGPROF_CLI_USAGE;
}

int cgprof__cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("cgprof: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CGPROF_CLI_ERROR;
}

int cgprof__cli_write(const char *path, const struct cgprof_buf *b)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        if ((b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len) ||
            fflush(stdout) != 0)
            return cgprof__cli_fail("cannot write to standard output: %s",
                                    strerror(errno));
        return CGPROF_CLI_OK;
    }
    int rc = cgprof_write_file_atomic(path, b->data ? b->data : "", b->len);
    if (rc != 0)
        return cgprof__cli_fail("cannot write %s: %s", path, cgprof_strerror(rc));
    return CGPROF_CLI_OK;
}

static void overview(FILE *out)
{
    fputs("NAME\n"
          "    cgprof - continuous profiler for unmodified Linux programs\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof <command> [options]\n"
          "    cgprof help [command]\n"
          "    LD_PRELOAD=libcgprof.so CGPROF_OPTIONS=key:value,... program [args]\n"
          "\n"
          "DESCRIPTION\n"
          "    Programs started with LD_PRELOAD=libcgprof.so are sampled and their\n"
          "    profiles stored (locally by default) or sent to Amazon CodeGuru\n"
          "    Profiler or Pyroscope. The cgprof command runs programs under the\n"
          "    profiler, reports on stored profiles, ships spooled ones and\n"
          "    manages CodeGuru profiling groups.\n"
          "\n"
          "COMMANDS\n", out);
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(commands); i++)
        fprintf(out, "    %-16s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n"
          "    Every command accepts --help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof run -- ./myapp\n"
          "    LD_PRELOAD=/usr/local/lib/libcgprof.so ./myapp\n"
          "    cgprof report\n"
          "    cgprof groups create my-app --region eu-west-1\n"
          "    cgprof help report\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 runtime error, 2 usage error.\n", out);
}

static void help_help(FILE *out)
{
    fputs("NAME\n"
          "    cgprof help - show help for cgprof or one of its commands\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof help [command]\n"
          "    cgprof <command> --help\n"
          "\n"
          "DESCRIPTION\n"
          "    Without a command, lists the commands. With one, prints its manual:\n"
          "    synopsis, options, examples and exit status.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof help report\n"
          "\n"
          "EXIT STATUS\n"
          "    0 help printed, 2 unknown command.\n", out);
}

static int run_help(int argc, char **argv)
{
    if (argc > 2)
        return cgprof__cli_usage("help", "expected at most one command, got '%s'", argv[2]);
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help_help(stdout);
        return CGPROF_CLI_OK;
    }
    if (argc < 2) {
        overview(stdout);
        return CGPROF_CLI_OK;
    }
    const struct cgprof__cli_command *c = find_command(argv[1]);
    if (c == NULL)
        return cgprof__cli_usage(NULL, "unknown command '%s'", argv[1]);
    c->help(stdout);
    return CGPROF_CLI_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: cgprof <command> [options]; see 'cgprof help'\n", stderr);
        return CGPROF_CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        overview(stdout);
        return CGPROF_CLI_OK;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    if (name[0] == '-')
        return cgprof__cli_usage(NULL, "unknown option '%s' (options follow the command)",
                                 name);
    const struct cgprof__cli_command *c = find_command(name);
    if (c == NULL)
        return cgprof__cli_usage(NULL, "unknown command '%s'", name);
    return c->run(argc - 1, argv + 1);
}
