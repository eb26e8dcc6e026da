#include "cluster.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"

/* An integer in [lo, hi] from s; 0 when it is one. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* The first of two variables that is set, and its name. */
static const char *first_env(const char *a, const char *b, const char **name)
{
    const char *v = getenv(a);
    *name = a;
    if (!v || !*v) {
        v = getenv(b);
        *name = b;
    }
    return v && *v ? v : NULL;
}

int cli_dist_from_env(const char *command, const char *usage, dc_finetune_options *o,
                      int *local_rank)
{
    const char *world_name, *rank_name, *local_name;
    const char *world = first_env("WORLD_SIZE", "SLURM_NTASKS", &world_name);
    const char *rank = first_env("RANK", "SLURM_PROCID", &rank_name);
    const char *local = first_env("LOCAL_RANK", "SLURM_LOCALID", &local_name);
    *local_rank = -1;
    if (world && parse_int(world, 1, 1 << 20, &o->world_size))
        return cli_command_usage_error(command, usage, "%s='%s' is not a world size >= 1",
                                       world_name, world);
    if (rank && parse_int(rank, 0, o->world_size - 1, &o->rank))
        return cli_command_usage_error(command, usage, "%s='%s' is not a rank below the world "
                                       "size %d", rank_name, rank, o->world_size);
    if (o->world_size > 1 && !rank)
        return cli_command_usage_error(command, usage, "%s=%d but no RANK (or SLURM_PROCID)",
                                       world_name, o->world_size);
    if (local && parse_int(local, 0, INT_MAX, local_rank))
        return cli_command_usage_error(command, usage, "%s='%s' is not a local rank",
                                       local_name, local);
    const char *addr = getenv("MASTER_ADDR"), *port = getenv("MASTER_PORT");
    if (addr && *addr)
        o->master_addr = addr;
    if (port && *port && parse_int(port, 1, 65535, &o->master_port))
        return cli_command_usage_error(command, usage, "MASTER_PORT='%s' is not a port", port);
    return 0;
}

int cli_shard_resolve(const char *command, const char *usage, const char *given,
                      cli_shard *shard)
{
    *shard = (cli_shard){0, 1, 0};
    if (given) {
        char tail;
        int k, n;
        if (sscanf(given, "%d/%d%c", &k, &n, &tail) != 2 || n < 1 || k < 1 || k > n)
            return cli_command_usage_error(command, usage, "--shard is K/N with 1 <= K <= N, "
                                           "not '%s'", given);
        *shard = (cli_shard){k - 1, n, 1};
        return 0;
    }
    const char *id = getenv("SLURM_ARRAY_TASK_ID"), *count = getenv("SLURM_ARRAY_TASK_COUNT");
    const char *min = getenv("SLURM_ARRAY_TASK_MIN");
    if (!id || !*id)
        return 0;
    int task, tasks, first = 0;
    if (parse_int(id, 0, INT_MAX, &task) || parse_int(count, 1, INT_MAX, &tasks) ||
        (min && *min && parse_int(min, 0, INT_MAX, &first)) || task < first ||
        task - first >= tasks)
        return cli_command_usage_error(command, usage, "SLURM_ARRAY_TASK_ID=%s with "
                                       "SLURM_ARRAY_TASK_MIN=%s and SLURM_ARRAY_TASK_COUNT=%s "
                                       "give no shard (an array of consecutive task ids is "
                                       "needed)", id, min ? min : "(unset)",
                                       count ? count : "(unset)");
    *shard = (cli_shard){task - first, tasks, 1};
    return 0;
}

int cli_shard_has(const cli_shard *shard, size_t item)
{
    return item % (size_t)shard->count == (size_t)shard->index;
}
