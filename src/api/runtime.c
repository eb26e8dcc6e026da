/* The library's version and the public runtime controls, over ctorch. */
#include "../ctorch/ctorch.h"
#include "../core/error.h"
#include "diffclip.h"

_Static_assert(DC_VERSION_NUMBER ==
                   DC_VERSION_MAJOR * 10000 + DC_VERSION_MINOR * 100 + DC_VERSION_PATCH,
               "DC_VERSION_NUMBER follows the version");

DC_API const char *dc_version(void) { return DC_VERSION_STRING; }

DC_API unsigned dc_version_number(void) { return DC_VERSION_NUMBER; }

DC_API dc_status dc_set_num_threads(int n) { return (dc_status)ct_set_num_threads(n); }

DC_API int dc_get_num_threads(void) { return ct_get_num_threads(); }

DC_API int dc_cuda_available(void) { return ct_cuda_available(); }

DC_API dc_status dc_device_check(const char *device)
{
    int index;
    return (dc_status)ct_parse_device(device, &index);
}

DC_API const char *dc_backend_info(void) { return ct_backend_info(); }

DC_API dc_status dc_cuda_memory_peak(const char *device, int64_t *peak_allocated,
                                     int64_t *peak_reserved)
{
    int index;
    int64_t allocated = 0, reserved = 0;
    /* "cpu" and "auto" without a GPU are CT_CPU, which ctorch refuses. */
    DCI_TRY(ct_parse_device(device, &index));
    DCI_TRY(ct_cuda_memory_peak(index, &allocated, &reserved));
    if (peak_allocated)
        *peak_allocated = allocated;
    if (peak_reserved)
        *peak_reserved = reserved;
    return DC_OK;
}

DC_API dc_status dc_cuda_memory_reset_peak(const char *device)
{
    int index;
    DCI_TRY(ct_parse_device(device, &index));
    return (dc_status)ct_cuda_memory_reset_peak(index);
}
