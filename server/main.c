/*
 * main.c - tarnd's command line.
 *
 * Everything past argument parsing lives in server.c; this file only turns
 * argv into server_opts and a start-up failure into one line on stderr and
 * exit status 2 (1 is kept for failures while running).
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/config.h"
#include "server/core/version.h"
#include "server/server.h"

#define MAX_SETS 256

static void
usage(FILE *f)
{
    fprintf(f, "Usage: tarnd [-c FILE] [--set key=value ...]\n"
               "\n"
               "tarnd is tarn's storage server: the WAL service and the page "
               "server of a\nPostgreSQL 15 lakebase, in one process. It runs "
               "in the foreground and logs\nto stderr (or log_file).\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE    read settings from FILE (INI; see "
               "conf/tarnd.conf)\n"
               "  -s, --set KEY=VALUE  override one setting (repeatable; "
               "applied last)\n"
               "      --check-config   load the settings, print them and exit\n"
               "      --print-config   print a documented config file with "
               "every key and\n"
               "                       its default, and exit\n"
               "  -h, --help           show this help and exit\n"
               "  -V, --version        show the version and exit\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the "
               "settings\nmarked \"reload\" and reopens the log file.\n");
}

static int
check_config(const char *path, const char *const *sets, size_t nsets)
{
    tarn_config c;
    tarn_err err;
    const cfg_key *keys;
    size_t n;

    if (cfg_load(&c, path, sets, nsets, &err) != TARN_OK) {
        fprintf(stderr, "tarnd: %s\n", err.msg);
        return 2;
    }
    keys = cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char buf[512];
        printf("%s = %s\n", keys[i].name,
               cfg_format(&c, &keys[i], buf, sizeof(buf)));
    }
    cfg_free(&c);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 'C'},
        {"print-config", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *sets[MAX_SETS];
    server_opts o = {0};
    tarn_server *s;
    tarn_err err;
    bool check = false;
    int ch, code;

    /*
     * Fix glibc's mmap threshold.  Left dynamic, it rises to the size of
     * the largest block freed so far, and from then on the 1 MiB chunks
     * of in-memory layers and the indexes of layer writers are carved
     * from the malloc heaps, where a block freed below a live one is never
     * given back: the RSS would stay at the high-water mark of every
     * layer ever held.  Blocks of 256 KiB and more get mappings of their
     * own and go back to the kernel when freed.
     */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    o.sets = sets;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:s:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.config_path = optarg;
            break;
        case 's':
            if (o.nsets == MAX_SETS) {
                fprintf(stderr, "tarnd: more than %d --set options\n",
                        MAX_SETS);
                return 2;
            }
            sets[o.nsets++] = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'P':
            cfg_write_example(stdout);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tarnd %s\n", TARN_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "tarnd: option %s needs a value (try --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "tarnd: unknown option %s (try --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tarnd: unexpected argument '%s' (try --help)\n",
                argv[optind]);
        return 2;
    }
    if (check)
        return check_config(o.config_path, sets, o.nsets);
    if (server_create(&o, &s, &err) != TARN_OK) {
        fprintf(stderr, "tarnd: %s\n", err.msg);
        return 2;
    }
    code = server_run(s);
    server_destroy(s);
    return code;
}
