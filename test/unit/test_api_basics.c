#include <string.h>

#include "core/error.h"
#include "harness.h"

TEST(version_matches_header) { CHECK(strcmp(dc_version(), DC_VERSION_STRING) == 0); }

TEST(error_message_is_recorded_and_prefixed)
{
    CHECK(dci_err(DC_EFORMAT, "truncated at %d", 7) == DC_EFORMAT);
    CHECK(strcmp(dc_last_error(), "truncated at 7") == 0);
    dci_err_prefix(DC_EFORMAT, "model.pt");
    CHECK(strcmp(dc_last_error(), "model.pt: truncated at 7") == 0);
}

TEST(dtype_names_and_sizes)
{
    CHECK(strcmp(dc_dtype_name(DC_BFLOAT16), "bfloat16") == 0);
    CHECK(dc_dtype_size(DC_FLOAT64) == 8 && dc_dtype_size(DC_BOOL) == 1);
    CHECK(dc_dtype_name((dc_dtype)99) == NULL);
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 0};
    CHECK(dc_tensor_numel(&t) == 1);
    dc_tensor_free(NULL);
}
