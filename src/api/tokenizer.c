/* The public tokenizer handle over src/nn/tokenizer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/tokenizer.h"
#include "diffclip.h"
#include "../core/error.h"
#include "tokenizer.h"

struct dc_tokenizer {
    nn_tokenizer *impl;
};

nn_tokenizer *dci_tokenizer_impl(dc_tokenizer *tok) { return tok ? tok->impl : NULL; }

DC_API dc_status dc_tokenizer_new(dc_tokenizer **out, const char *vocab_path)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_tokenizer_new: out is NULL");
    *out = NULL;
    dc_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return dci_err(DC_ENOMEM, "out of memory for a tokenizer");
    int status = nn_tokenizer_load(&tok->impl, vocab_path);
    if (status != DC_OK) {
        free(tok);
        return status;
    }
    *out = tok;
    return DC_OK;
}

DC_API void dc_tokenizer_free(dc_tokenizer *tok)
{
    if (!tok)
        return;
    nn_tokenizer_free(tok->impl);
    free(tok);
}

DC_API dc_status dc_tokenize(dc_tokenizer *tok, const char *const *texts, size_t count,
                             int context_length, int truncate, dc_tensor *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "dc_tokenize: out is NULL");
    memset(out, 0, sizeof *out);
    if (!tok || (count && !texts))
        return dci_err(DC_EINVAL, "dc_tokenize: %s is NULL", tok ? "texts" : "tokenizer");
    if (context_length < 1)
        return dci_err(DC_EINVAL, "dc_tokenize: context length %d is not positive",
                       context_length);
    if (count > (size_t)INT64_MAX / sizeof(int64_t) / (size_t)context_length)
        return dci_err(DC_ENOMEM, "dc_tokenize: %zu texts of %d tokens are too many", count,
                       context_length);
    size_t bytes = count * (size_t)context_length * sizeof(int64_t);
    int64_t *data = malloc(bytes ? bytes : 1);
    if (!data)
        return dci_err(DC_ENOMEM, "dc_tokenize: out of memory for %zu texts", count);
    int status = nn_tokenize(tok->impl, texts, count, context_length, truncate, data);
    if (status != DC_OK) {
        free(data);
        return status;
    }
    out->dtype = DC_INT64;
    out->ndim = 2;
    out->shape[0] = (int64_t)count;
    out->shape[1] = context_length;
    out->data = data;
    return DC_OK;
}
