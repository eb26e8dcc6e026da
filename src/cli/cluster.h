/* Running on several processes or cluster tasks: the launchers' environment (torchrun,
 * Slurm, mpirun) for data-parallel fine-tuning, and shards of a batch edit. */
#ifndef DC_SRC_CLI_CLUSTER_H
#define DC_SRC_CLI_CLUSTER_H

#include <stddef.h>

#include "diffclip.h"

/* The rank and world of a process group from WORLD_SIZE and RANK (else Slurm's
 * SLURM_NTASKS and SLURM_PROCID), MASTER_ADDR (default 127.0.0.1) and MASTER_PORT (default
 * 29500) into o; *local_rank from LOCAL_RANK (else SLURM_LOCALID), -1 when unset. A usage
 * error (non-zero) for a malformed or inconsistent value. */
int cli_dist_from_env(const char *command, const char *usage, dc_finetune_options *o,
                      int *local_rank);

/* This task's share of a list: items index, index + count, ... (0-based index). */
typedef struct cli_shard {
    int index, count;
    int active;                    /* given by --shard or Slurm's array environment */
} cli_shard;

/* --shard K/N (1 <= K <= N, as split -n K/N), else Slurm's SLURM_ARRAY_TASK_ID minus
 * SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, else the whole list. A usage error
 * (non-zero) for a malformed value. */
int cli_shard_resolve(const char *command, const char *usage, const char *given,
                      cli_shard *shard);
int cli_shard_has(const cli_shard *shard, size_t item);

#define CLI_SHARD_HELP                                                                      \
    "  --shard K/N         do only shard K of N (1 <= K <= N): inputs K, K + N, ... (default:\n" \
    "                      Slurm's SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set);\n"  \
    "                      outputs already written are skipped, so a rerun resumes\n"

#endif
