/* `cgprof version`: the version of the command (the same as libcgprof.so's
 * cgprof_version(), from preload/preload.h). Dispatch is in main.c. */
#include <string.h>

#include "../preload/preload.h"
#include "cli_int.h"

static void help(FILE *out)
{
    fputs("NAME\n"
          "    cgprof version - print the version\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof version\n"
          "    cgprof --version\n"
          "\n"
          "DESCRIPTION\n"
          "    Prints \"cgprof VERSION\" on standard output. libcgprof.so built from\n"
          "    the same tree reports the same version through cgprof_version().\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof version\n"
          "\n"
          "EXIT STATUS\n"
          "    0 printed, 2 usage error.\n", out);
}

static int run(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help(stdout);
        return CGPROF_CLI_OK;
    }
    if (argc > 1)
        return cgprof__cli_usage("version", "unexpected argument '%s'", argv[1]);
    printf("cgprof %s\n", CGPROF_VERSION);
    return CGPROF_CLI_OK;
}

const struct cgprof__cli_command cgprof__cli_cmd_version = {
    "version", "print the version", help, run
};
