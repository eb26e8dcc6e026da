/* The library's version and the public runtime controls, over ctorch. */
#include "../ctorch/ctorch.h"
#include "diffclip.h"

DC_API const char *dc_version(void) { return DC_VERSION_STRING; }

DC_API dc_status dc_set_num_threads(int n) { return (dc_status)ct_set_num_threads(n); }

DC_API int dc_get_num_threads(void) { return ct_get_num_threads(); }

DC_API int dc_cuda_available(void) { return ct_cuda_available(); }
