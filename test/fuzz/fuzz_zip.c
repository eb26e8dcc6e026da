/* The zip reader (io_zip_open), then reading every entry (stored and inflated, CRC-checked)
 * and looking each up by name. */
#include "fuzz.h"
#include "io/zip.h"

#include <stdlib.h>

enum { MAX_ENTRIES_READ = 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_zip zip;
    if (io_zip_open(&zip, data, size, "fuzz.zip") != DC_OK)
        return 0;
    for (size_t i = 0; i < zip.count && i < MAX_ENTRIES_READ; i++) {
        io_zip_entry *entry = &zip.entries[i];
        fuzz_touch(entry->name, entry->name_length);
        if (!io_zip_find(&zip, entry->name))
            abort();   /* every entry can be found by its name */
        const uint8_t *contents;
        size_t length;
        if (io_zip_read(&zip, entry, &contents, &length) == DC_OK)
            fuzz_touch(contents, length);
    }
    io_zip_close(&zip);
    return 0;
}
