/* Internal access to the tokenizer behind a public dc_tokenizer, for other handles that
 * tokenize (dc_clip_loss). */
#ifndef DC_SRC_API_TOKENIZER_H
#define DC_SRC_API_TOKENIZER_H

#include "../nn/tokenizer.h"
#include "diffclip.h"

nn_tokenizer *dci_tokenizer_impl(dc_tokenizer *tok);

#endif
