"""CLIP's BPE tokenizer."""

import ctypes
from ctypes import byref

from ._arrays import take_tensor
from ._ffi import check, lib
from ._handle import Handle, c_path, c_text
from ._types import dc_tensor

__all__ = ["Tokenizer"]


class Tokenizer(Handle):
    """CLIP's tokenizer over its vocabulary file (bpe_simple_vocab_16e6.txt.gz)."""

    _free = "dc_tokenizer_free"

    def __init__(self, vocab_path):
        super().__init__()
        self._open("dc_tokenizer_new", c_path(vocab_path))

    def tokenize(self, texts, context_length=77, truncate=False):
        """int64 (len(texts), context_length) tokens as clip.tokenize makes them; one str
        gives one row."""
        if isinstance(texts, str):
            texts = [texts]
        encoded = [c_text(text, "text %d" % i) for i, text in enumerate(texts)]
        table = (ctypes.c_char_p * len(encoded))(*encoded)
        out = dc_tensor()
        with self._use() as p:
            check(lib().dc_tokenize(p, table, len(encoded), int(context_length),
                                    int(bool(truncate)), byref(out)))
        return take_tensor(out)
