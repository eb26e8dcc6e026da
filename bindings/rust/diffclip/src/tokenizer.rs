use std::os::raw::{c_char, c_int};
use std::path::Path;

use crate::error::{invalid, Result};
use crate::handle::{c_path, c_text, handle, open};
use crate::sys;
use crate::tensor::Tensor;

handle!(
    /// CLIP's byte-level BPE tokenizer (openai/CLIP's simple_tokenizer and clip.tokenize).
    Tokenizer,
    sys::dc_tokenizer,
    sys::dc_tokenizer_free
);

impl Tokenizer {
    /// Reads the vocabulary (bpe_simple_vocab_16e6.txt.gz).
    pub fn new(vocab_path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = c_path(vocab_path.as_ref())?;
        let ptr = open(|out| unsafe { sys::dc_tokenizer_new(out, path.as_ptr()) })?;
        Ok(Tokenizer { ptr })
    }

    /// An int64 (texts.len(), context_length) tensor of tokens; a text needing more than
    /// context_length tokens is an error unless `truncate`.
    pub fn tokenize(
        &mut self,
        texts: &[&str],
        context_length: usize,
        truncate: bool,
    ) -> Result<Tensor> {
        let context =
            c_int::try_from(context_length).map_err(|_| invalid("context length too large"))?;
        let owned = texts
            .iter()
            .enumerate()
            .map(|(i, text)| c_text(text, &format!("text {i}")))
            .collect::<Result<Vec<_>>>()?;
        let pointers: Vec<*const c_char> = owned.iter().map(|t| t.as_ptr()).collect();
        let tok = self.raw();
        Tensor::from_call(|out| unsafe {
            sys::dc_tokenize(
                tok,
                pointers.as_ptr(),
                pointers.len(),
                context,
                truncate as c_int,
                out,
            )
        })
    }
}
