// RAII over libdiffclip's C API for C++17 (header only, no other dependency).
//
// - Handles are std::unique_ptr with the handle's free function as deleter; make<H>() calls a
//   constructor (dc_model_load, dc_checkpoint_open, ...) and owns what it returns. A new
//   handle type is one `using` line.
// - Tensor and Image own the buffers the library allocates for outputs and free them.
// - Every failing call throws diffclip::Error, which carries the status and dc_last_error().
//
// SPDX-License-Identifier: MIT
#ifndef DIFFCLIP_HPP
#define DIFFCLIP_HPP

#include <diffclip.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace diffclip {

class Error : public std::runtime_error {
public:
    Error(dc_status status, const std::string &message)
        : std::runtime_error(message + " (" + dc_status_name(status) + ")"), status_(status)
    {
    }
    dc_status status() const noexcept { return status_; }

private:
    dc_status status_;
};

inline void check(dc_status status)
{
    if (status != DC_OK)
        throw Error(status, dc_last_error());
}

template <typename T, void (*Free)(T *)> struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T *)> using Handle = std::unique_ptr<T, Deleter<T, Free>>;

using Checkpoint = Handle<dc_checkpoint, dc_checkpoint_free>;
using Model = Handle<dc_model, dc_model_free>;
using LatentCache = Handle<dc_latent_cache, dc_latent_cache_free>;
using Tokenizer = Handle<dc_tokenizer, dc_tokenizer_free>;
using Clip = Handle<dc_clip, dc_clip_free>;
using IdNet = Handle<dc_idnet, dc_idnet_free>;
using FaceDescriptor = Handle<dc_face_descriptor, dc_face_descriptor_free>;

// Runs constructor(&raw, args...) and owns the handle it made:
//   auto model = diffclip::make<diffclip::Model>(dc_model_load, path, nullptr);
template <typename H, typename Constructor, typename... Args>
H make(Constructor constructor, Args &&...args)
{
    typename H::pointer raw = nullptr;
    check(constructor(&raw, std::forward<Args>(args)...));
    return H(raw);
}

// An array the library allocated (an output argument), freed with dc_tensor_free.
class Tensor {
public:
    Tensor() noexcept : t_() {}
    ~Tensor() { dc_tensor_free(&t_); }
    Tensor(Tensor &&other) noexcept : t_(other.t_) { other.t_ = dc_tensor(); }
    Tensor &operator=(Tensor &&other) noexcept
    {
        if (this != &other) {
            dc_tensor_free(&t_);
            t_ = other.t_;
            other.t_ = dc_tensor();
        }
        return *this;
    }
    Tensor(const Tensor &) = delete;
    Tensor &operator=(const Tensor &) = delete;

    // For an output argument: releases what this held.
    dc_tensor *out() noexcept
    {
        dc_tensor_free(&t_);
        return &t_;
    }
    const dc_tensor *get() const noexcept { return &t_; }
    dc_dtype dtype() const noexcept { return t_.dtype; }
    std::vector<int64_t> shape() const
    {
        return std::vector<int64_t>(t_.shape, t_.shape + t_.ndim);
    }
    int64_t numel() const noexcept { return dc_tensor_numel(&t_); }
    // The elements as T; throws unless T is the tensor's dtype.
    template <typename T> const T *data() const;

private:
    dc_tensor t_;
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr dc_dtype value = DC_FLOAT32; };
template <> struct dtype_of<double> { static constexpr dc_dtype value = DC_FLOAT64; };
template <> struct dtype_of<int64_t> { static constexpr dc_dtype value = DC_INT64; };
template <> struct dtype_of<int32_t> { static constexpr dc_dtype value = DC_INT32; };
template <> struct dtype_of<uint8_t> { static constexpr dc_dtype value = DC_UINT8; };

template <typename T> const T *Tensor::data() const
{
    if (t_.dtype != dtype_of<T>::value)
        throw Error(DC_EINVAL, std::string("the tensor holds ") + dc_dtype_name(t_.dtype));
    return static_cast<const T *>(t_.data);
}

// A dc_tensor describing the caller's memory (for input arguments; nothing is copied).
template <typename T> dc_tensor view(const T *data, const std::vector<int64_t> &shape)
{
    if (shape.size() > DC_MAX_DIMS)
        throw Error(DC_EINVAL, "more than DC_MAX_DIMS dimensions");
    dc_tensor t = dc_tensor();
    t.dtype = dtype_of<T>::value;
    t.ndim = static_cast<int>(shape.size());
    for (size_t i = 0; i < shape.size(); i++)
        t.shape[i] = shape[i];
    t.data = const_cast<T *>(data);  // the library only reads inputs
    return t;
}

// An image the library allocated, freed with dc_image_free.
class Image {
public:
    Image() noexcept : img_() {}
    ~Image() { dc_image_free(&img_); }
    Image(Image &&other) noexcept : img_(other.img_) { other.img_ = dc_image(); }
    Image &operator=(Image &&other) noexcept
    {
        if (this != &other) {
            dc_image_free(&img_);
            img_ = other.img_;
            other.img_ = dc_image();
        }
        return *this;
    }
    Image(const Image &) = delete;
    Image &operator=(const Image &) = delete;

    dc_image *out() noexcept
    {
        dc_image_free(&img_);
        return &img_;
    }
    const dc_image *get() const noexcept { return &img_; }
    int width() const noexcept { return img_.width; }
    int height() const noexcept { return img_.height; }
    const uint8_t *data() const noexcept { return img_.data; }

private:
    dc_image img_;
};

inline Tensor read_npy(const std::string &path)
{
    Tensor t;
    check(dc_npy_read(path.c_str(), t.out()));
    return t;
}

inline void write_npy(const std::string &path, const dc_tensor &t)
{
    check(dc_npy_write(path.c_str(), &t));
}

inline Image read_image(const std::string &path)
{
    Image img;
    check(dc_image_read(path.c_str(), img.out()));
    return img;
}

}  // namespace diffclip

#endif  // DIFFCLIP_HPP
