/* Data-parallel collectives over LibTorch's c10d: a TCPStore hosted by rank 0 for the
 * rendezvous and a Gloo process group (ct_dist_* in ctorch.h). Only APIs that 1.13 and 2.x
 * share are used; the store's options that differ live in compat.hpp. */
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <c10/core/GradMode.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <string>
#include <vector>

#include "compat.hpp"
#include "internal.hpp"

using namespace ctorch;

struct ct_dist {
    int rank, world;
    std::string master;
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

/* Gradients are reduced in flat buckets of this many bytes: one copy per bucket instead of
 * one collective per tensor, without doubling the memory of a 113M-parameter model. */
static const int64_t BUCKET_BYTES = 64 << 20;

/* A failed collective becomes DC_EIO with a message naming the rank that can no longer be
 * reached where it is known (with two ranks, the other one), then Gloo's own words. */
static int lost_peer(const ct_dist *d, const char *what, const std::exception &e)
{
    std::string detail = e.what();
    size_t newline = detail.find('\n');
    if (newline != std::string::npos)
        detail.resize(newline);
    if (d->world == 2)
        return dci_err(DC_EIO, "rank %d of 2: lost rank %d during %s (%s)", d->rank,
                       1 - d->rank, what, detail.c_str());
    return dci_err(DC_EIO, "rank %d of %d: lost a rank during %s (%s)", d->rank, d->world,
                   what, detail.c_str());
}

template <class F>
static int collective(ct_dist *d, const char *what, F &&body) noexcept
{
    try {
        ensure_threads();
        c10::AutoGradMode no_grad(false);
        body();
        return DC_OK;
    } catch (const std::exception &e) {
        return lost_peer(d, what, e);
    } catch (...) {
        return status_from_exception(what);
    }
}

static void wait_all(const c10::intrusive_ptr<c10d::ProcessGroupGloo> &group,
                     std::vector<at::Tensor> &one, bool reduce)
{
    auto work = reduce ? group->allreduce(one) : group->broadcast(one);
    work->wait();
}

extern "C" int ct_dist_new(ct_dist **out, int rank, int world, const char *master_addr,
                           int master_port, double timeout_seconds)
{
    CT_REQUIRE(out);
    *out = nullptr;
    CT_REQUIRE(master_addr);
    if (world < 1 || rank < 0 || rank >= world)
        return dci_err(DC_EINVAL, "%s: rank %d of world size %d", __func__, rank, world);
    if (master_port < 1 || master_port > 65535)
        return dci_err(DC_EINVAL, "%s: port %d is not in 1..65535", __func__, master_port);
    if (!(timeout_seconds > 0) || timeout_seconds > 86400.0 * 7)
        return dci_err(DC_EINVAL, "%s: timeout %g s must be > 0 and at most a week", __func__,
                       timeout_seconds);
    auto timeout = std::chrono::milliseconds((long long)(timeout_seconds * 1000.0));
    auto *d = new (std::nothrow) ct_dist{rank, world, master_addr, {}, {}};
    if (!d)
        return dci_err(DC_ENOMEM, "%s: out of memory", __func__);
    try {
        ensure_threads();
        /* Under torchrun's agent store (TORCHELASTIC_USE_AGENT_STORE=True) the agent already
         * serves MASTER_PORT: every rank is a client, under the attempt's prefix, as
         * PyTorch's own env:// rendezvous does. Otherwise rank 0 serves it. */
        const char *agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
        bool agent_store = agent && std::string(agent) == "True";
        c10d::TCPStoreOptions so;
        so.port = (std::uint16_t)master_port;
        so.isServer = rank == 0 && !agent_store;
        so.numWorkers = (std::size_t)world;
        so.waitWorkers = true;
        so.timeout = timeout;
        store_options_compat(so);
        d->store = c10::make_intrusive<c10d::TCPStore>(d->master, so);
        if (agent_store) {
            const char *attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
            d->store = c10::make_intrusive<c10d::PrefixStore>(
                std::string("/worker/attempt_") + (attempt && *attempt ? attempt : "0"),
                d->store);
        }
        auto options = c10d::ProcessGroupGloo::Options::create(timeout);
        /* Loopback runs (tests, one machine) bind loopback; elsewhere GLOO_SOCKET_IFNAME
         * names the interface, as for PyTorch, or the host name's address is used. */
        const char *ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname && *ifname)
            options->devices.push_back(
                c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (d->master == "127.0.0.1" || d->master == "localhost")
            options->devices.push_back(
                c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        d->group = c10::make_intrusive<c10d::ProcessGroupGloo>(d->store, rank, world, options);
    } catch (const std::exception &e) {
        std::string detail = e.what();
        size_t newline = detail.find('\n');
        if (newline != std::string::npos)
            detail.resize(newline);
        delete d;
        return dci_err(DC_EIO, "rank %d of %d: cannot join the process group at %s:%d "
                       "within %g s (%s)", rank, world, master_addr, master_port,
                       timeout_seconds, detail.c_str());
    } catch (...) {
        delete d;
        return status_from_exception(__func__);
    }
    *out = d;
    return DC_OK;
}

extern "C" void ct_dist_free(ct_dist *d)
{
    try {
        delete d;
    } catch (...) {
        /* a group whose peers are gone may fail to close: nothing left to report to */
    }
}

extern "C" int ct_dist_rank(const ct_dist *d) { return d ? d->rank : 0; }
extern "C" int ct_dist_world(const ct_dist *d) { return d ? d->world : 1; }

extern "C" int ct_dist_allreduce_f64(ct_dist *d, double *values, size_t n)
{
    CT_REQUIRE(d);
    CT_REQUIRE(values);
    return collective(d, "a reduction", [&] {
        std::vector<at::Tensor> one{
            at::from_blob(values, {(int64_t)n}, at::kDouble).clone()};
        wait_all(d->group, one, true);
        std::memcpy(values, one[0].data_ptr<double>(), n * sizeof *values);
    });
}

extern "C" int ct_dist_broadcast_bytes(ct_dist *d, void *data, size_t n)
{
    CT_REQUIRE(d);
    CT_REQUIRE(data);
    return collective(d, "a broadcast", [&] {
        std::vector<at::Tensor> one{at::from_blob(data, {(int64_t)n}, at::kByte).clone()};
        wait_all(d->group, one, false);
        std::memcpy(data, one[0].data_ptr<uint8_t>(), n);
    });
}

extern "C" int ct_dist_broadcast_(ct_dist *d, ct_tensor *const *tensors, size_t n)
{
    CT_REQUIRE(d);
    CT_REQUIRE(tensors);
    for (size_t i = 0; i < n; i++)
        CT_REQUIRE(tensors[i]);
    return collective(d, "the broadcast of the weights", [&] {
        for (size_t i = 0; i < n; i++) {
            std::vector<at::Tensor> one{tensors[i]->t.detach().contiguous()};
            wait_all(d->group, one, false);
            if (!one[0].is_same(tensors[i]->t))
                tensors[i]->t.detach().copy_(one[0]);
        }
    });
}

/* Sums the flat copies of `grads` across ranks and writes them back, scale applied first. */
static void reduce_bucket(ct_dist *d, std::vector<at::Tensor> &grads, double scale)
{
    if (grads.empty())
        return;
    std::vector<at::Tensor> views;
    for (auto &g : grads)
        views.push_back(g.reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(views, 0).mul_(scale)};
    wait_all(d->group, flat, true);
    int64_t offset = 0;
    for (auto &g : grads) {
        int64_t n = g.numel();
        g.copy_(flat[0].narrow(0, offset, n).view_as(g));
        offset += n;
    }
    grads.clear();
}

extern "C" int ct_dist_allreduce_grads(ct_dist *d, ct_tensor *const *params, size_t n,
                                       double scale)
{
    CT_REQUIRE(d);
    CT_REQUIRE(params);
    for (size_t i = 0; i < n; i++)
        CT_REQUIRE(params[i]);
    return collective(d, "the all-reduce of the gradients", [&] {
        std::vector<at::Tensor> bucket;
        int64_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
            at::Tensor &p = params[i]->t;
            /* Every rank reduces the same tensors: a weight this rank's loss did not reach
             * takes part with a zero gradient. */
            if (!p.grad().defined())
                p.mutable_grad() = at::zeros_like(p);
            at::Tensor g = p.grad();
            bucket.push_back(g);
            bytes += g.numel() * (int64_t)g.element_size();
            if (bytes >= BUCKET_BYTES) {
                reduce_bucket(d, bucket, scale);
                bytes = 0;
            }
        }
        reduce_bucket(d, bucket, scale);
    });
}
