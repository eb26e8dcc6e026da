/* A caching CPU allocator for LibTorch. glibc serves every block above 32 MiB (its largest
 * mmap threshold) with a fresh mmap, so each large activation costs a page fault per 4 KiB
 * and a munmap when freed: at 256x256 a float32 UNet forward faulted 1.2 GB of pages
 * (310,000 faults), some 10% of its CPU time. This allocator keeps freed blocks of 16 MiB or
 * more (the 256x256 activations in float32 and bfloat16) for the next request of the same
 * rounded size, up to a byte limit, so that a model run twice at the same shapes touches
 * memory it already owns. Smaller blocks, which glibc recycles well, go straight to it:
 * caching them too (from 1 MiB) saved few more faults but held 650 MiB more at the peak of a
 * per-step fine-tuning image, in blocks of sizes that step did not ask for again. */
#include "compat.hpp"
#include "internal.hpp"

#include <c10/core/CPUAllocator.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace ctorch {
namespace {

/* Every block starts with this header, one alignment unit long, so that the deleter (which
 * gets only the data pointer) knows the block's size. */
constexpr size_t ALIGNMENT = 64;
constexpr size_t CACHED_MIN = size_t(16) << 20;     /* smaller blocks are not cached */
constexpr size_t ROUNDING = size_t(64) << 10;       /* cached sizes are multiples of this */

struct header {
    size_t bytes;                                   /* usable bytes after the header */
};
static_assert(sizeof(header) <= ALIGNMENT, "header fits its alignment unit");

struct cache {
    std::mutex mutex;
    std::map<size_t, std::vector<void *>> free_blocks;   /* by size; blocks are bases */
    size_t cached_bytes = 0, limit = 0;
};

/* Never destroyed: tensors may be freed during static destruction at exit. */
cache &the_cache()
{
    static cache *c = new cache;
    return *c;
}

void *system_block(size_t bytes)
{
    void *base = nullptr;
    if (posix_memalign(&base, ALIGNMENT, ALIGNMENT + bytes) != 0)
        return nullptr;
    static_cast<header *>(base)->bytes = bytes;
    return base;
}

void *data_of(void *base) { return static_cast<char *>(base) + ALIGNMENT; }

void release(void *data)
{
    if (!data)
        return;
    void *base = static_cast<char *>(data) - ALIGNMENT;
    size_t bytes = static_cast<header *>(base)->bytes;
    if (bytes >= CACHED_MIN) {
        cache &c = the_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (c.cached_bytes + bytes <= c.limit) {
            try {
                c.free_blocks[bytes].push_back(base);
                c.cached_bytes += bytes;
                return;
            } catch (...) {
                /* No memory for the bookkeeping: free the block instead. */
            }
        }
    }
    free(base);
}

class caching_allocator final : public host_allocator {
public:
    c10::DeleterFnPtr raw_deleter() const override { return &release; }

protected:
    c10::DataPtr do_allocate(size_t n) const override
    {
        size_t bytes = n;
        if (bytes >= CACHED_MIN) {
            if (bytes > SIZE_MAX - ROUNDING)
                throw std::bad_alloc();
            bytes = (bytes + ROUNDING - 1) / ROUNDING * ROUNDING;
            cache &c = the_cache();
            std::lock_guard<std::mutex> lock(c.mutex);
            auto it = c.free_blocks.find(bytes);
            if (it != c.free_blocks.end() && !it->second.empty()) {
                void *base = it->second.back();
                it->second.pop_back();
                c.cached_bytes -= bytes;
                return {data_of(base), data_of(base), &release, c10::Device(c10::kCPU)};
            }
        }
        void *base = system_block(bytes);
        if (!base && bytes >= CACHED_MIN && trim_cache())
            base = system_block(bytes);
        if (!base)
            throw c10::OutOfMemoryError(
                {__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                "CPU allocator: out of memory allocating " + std::to_string(n) + " bytes");
        return {data_of(base), data_of(base), &release, c10::Device(c10::kCPU)};
    }

private:
    /* Frees every cached block; whether there was any. */
    static bool trim_cache()
    {
        cache &c = the_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        bool any = c.cached_bytes > 0;
        for (auto &entry : c.free_blocks)
            for (void *base : entry.second)
                free(base);
        c.free_blocks.clear();
        c.cached_bytes = 0;
        return any;
    }
};

/* DIFFCLIP_CPU_CACHE_MB when it is an integer >= 0 (0 keeps LibTorch's own allocator), else
 * the default. */
size_t cache_limit_bytes()
{
    constexpr long default_mib = 1024;
    long mib = default_mib;
    const char *env = getenv("DIFFCLIP_CPU_CACHE_MB");
    if (env && *env) {
        char *end = nullptr;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (errno == 0 && *end == '\0' && v >= 0 && v <= (1L << 30))
            mib = v;
    }
    return static_cast<size_t>(mib) << 20;
}

} // namespace

void install_cpu_allocator()
{
    size_t limit = cache_limit_bytes();
    if (limit == 0)
        return;
    the_cache().limit = limit;
    static caching_allocator *allocator = new caching_allocator;
    /* Above the default allocator's priority (0), so that LibTorch keeps ours. */
    c10::SetCPUAllocator(allocator, 1);
}

} // namespace ctorch
