/* YAML configs (io_model_config_parse over io_yaml_parse): any bytes give a status; a config
 * read has every text NUL-terminated and its list counts within bounds. */
#include "fuzz.h"
#include "io/model_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_model_config c;
    if (io_model_config_parse(data, size, "fuzz.yml", &c) == DC_OK) {
        if (c.ch_mult_count > IO_CONFIG_MAX_LIST || c.attn_count > IO_CONFIG_MAX_LIST ||
            c.ch_mult_count < 0 || c.attn_count < 0)
            __builtin_trap();
        fuzz_touch(c.var_type, strlen(c.var_type));
        fuzz_touch(c.beta_schedule, strlen(c.beta_schedule));
        fuzz_touch(c.dataset, strlen(c.dataset));
        fuzz_touch(c.type, strlen(c.type));
    }
    return 0;
}
