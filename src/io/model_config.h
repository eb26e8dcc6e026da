/* The published DiffusionCLIP / DDIM YAML configs (configs/celeba.yml ..., REFERENCE §1):
 * the keys a diffusion model's use depends on, read with their YAML types checked. Other
 * keys (and the sections `sampling`, `training`, `optim`...) are accepted and ignored, as
 * users' copies carry more. */
#ifndef DC_SRC_IO_MODEL_CONFIG_H
#define DC_SRC_IO_MODEL_CONFIG_H

#include <stddef.h>

#define IO_CONFIG_MAX_LIST 16
#define IO_CONFIG_MAX_TEXT 64

/* Which fields the file gave. */
enum {
    IO_CONFIG_IMAGE_SIZE = 1 << 0,
    IO_CONFIG_IN_CHANNELS = 1 << 1,
    IO_CONFIG_OUT_CH = 1 << 2,
    IO_CONFIG_CH = 1 << 3,
    IO_CONFIG_CH_MULT = 1 << 4,
    IO_CONFIG_NUM_RES_BLOCKS = 1 << 5,
    IO_CONFIG_ATTN = 1 << 6,
    IO_CONFIG_RESAMP_WITH_CONV = 1 << 7,
    IO_CONFIG_DROPOUT = 1 << 8,
    IO_CONFIG_VAR_TYPE = 1 << 9,
    IO_CONFIG_BETA_SCHEDULE = 1 << 10,
    IO_CONFIG_BETA_START = 1 << 11,
    IO_CONFIG_BETA_END = 1 << 12,
    IO_CONFIG_TIMESTEPS = 1 << 13,
    IO_CONFIG_DATASET = 1 << 14,
    IO_CONFIG_TYPE = 1 << 15
};

typedef struct io_model_config {
    unsigned present;                    /* IO_CONFIG_* bits */
    /* data: */
    int image_size;
    char dataset[IO_CONFIG_MAX_TEXT];
    /* model: */
    char type[IO_CONFIG_MAX_TEXT];
    int in_channels, out_ch, ch, num_res_blocks;
    double ch_mult[IO_CONFIG_MAX_LIST];
    int ch_mult_count;
    int attn_resolutions[IO_CONFIG_MAX_LIST];
    int attn_count;
    int resamp_with_conv;
    double dropout;
    char var_type[IO_CONFIG_MAX_TEXT];   /* "fixedsmall" or "fixedlarge" */
    /* diffusion: */
    char beta_schedule[IO_CONFIG_MAX_TEXT];
    double beta_start, beta_end;
    int num_timesteps;                   /* num_diffusion_timesteps */
} io_model_config;

/* Reads a config from `size` bytes (label names it) or a file. DC_EFORMAT for malformed or
 * hostile YAML (io_yaml_parse) and for a known key of the wrong type or out of range,
 * naming the key ("model.ch_mult"), its line and what was expected. */
int io_model_config_parse(const void *data, size_t size, const char *label,
                          io_model_config *out);
int io_model_config_read_file(const char *path, io_model_config *out);

#endif
