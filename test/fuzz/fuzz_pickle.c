/* The restricted unpickler (io_pickle_load), with and without TorchScript classes allowed,
 * over every pickle the input holds back to back (as the legacy container stores them). */
#include "fuzz.h"
#include "io/pickle.h"

#include <stdlib.h>

enum { MAX_PICKLES = 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int script = 0; script <= 1; script++) {
        io_pickle pk;
        io_pickle_init(&pk, "fuzz.pkl", script);
        size_t at = 0;
        for (int n = 0; n < MAX_PICKLES && at < size; n++) {
            size_t consumed = 0;
            io_pk_obj *result;
            if (io_pickle_load(&pk, data + at, size - at, &consumed, &result) != DC_OK)
                break;
            if (consumed == 0 || consumed > size - at)
                abort();   /* a loaded pickle has a length within the input */
            at += consumed;
        }
        io_pickle_free(&pk);
    }
    return 0;
}
