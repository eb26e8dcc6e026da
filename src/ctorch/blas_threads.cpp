/* OpenBLAS's parallel jobs run on LibTorch's thread pool instead of OpenBLAS's own.
 *
 * Debian links LibTorch against OpenBLAS's pthread build, which keeps a second pool of
 * threads beside LibTorch's OpenMP pool. After each multi-threaded sgemm its threads spin for
 * about 2^28 cycles before they sleep, taking cores from the oneDNN convolution that follows:
 * with OpenBLAS 0.3.29 (Debian 13, LibTorch 2.6) that spinning was 8% of a CelebA UNet
 * forward's samples and made it 20% slower than the same code on Debian 12
 * (docs/performance.md). OpenBLAS 0.3.27 and later accept a callback that runs a call's jobs;
 * older ones lack it and keep their own pool. */
#include "internal.hpp"

#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace ctorch {

namespace {

/* cblas.h's openblas_dojob_callback and openblas_threads_callback (OpenBLAS 0.3.27). */
typedef void (*blas_job_fn)(int thread_num, void *jobdata, int dojob_data);
typedef void (*blas_jobs_fn)(int sync, blas_job_fn dojob, int numjobs, size_t jobdata_elsize,
                             void *jobdata, int dojob_data);
typedef void (*set_blas_jobs_fn)(blas_jobs_fn callback);

/* One call at a time, as OpenBLAS's own pool serves them: the jobs' scratch buffers may be
 * keyed by job number rather than by call. */
std::mutex one_blas_call;

void run_blas_jobs(int, blas_job_fn dojob, int numjobs, size_t jobdata_elsize, void *jobdata,
                   int dojob_data) noexcept
{
    char *jobs = static_cast<char *>(jobdata);
    auto run = [&](int64_t i) {
        dojob(static_cast<int>(i), jobs + static_cast<size_t>(i) * jobdata_elsize, dojob_data);
    };
    std::lock_guard<std::mutex> lock(one_blas_call);
    /* OpenBLAS's threaded level-3 jobs wait on each other, so every job needs a thread of
     * its own: a pool thread given several (a smaller team, or a call from inside a parallel
     * region, where at::parallel_for runs inline) starts threads for the rest. OpenBLAS's
     * own pool exits the process when it cannot start a thread; so does this, through
     * std::terminate, as the exception cannot cross OpenBLAS's C frames. */
    at::parallel_for(0, numjobs, 1, [&](int64_t begin, int64_t end) {
        std::vector<std::thread> others;
        for (int64_t i = begin + 1; i < end; i++)
            others.emplace_back(run, i);
        run(begin);
        for (std::thread &t : others)
            t.join();
    });
}

} // namespace

void share_blas_threads()
{
    auto set = reinterpret_cast<set_blas_jobs_fn>(
        dlsym(RTLD_DEFAULT, "openblas_set_threads_callback_function"));
    if (set)
        set(run_blas_jobs);
}

} // namespace ctorch
