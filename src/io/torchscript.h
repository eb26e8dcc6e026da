/* TorchScript archives: the state dict that torch.jit.load(f).state_dict() gives. */
#ifndef DC_SRC_IO_TORCHSCRIPT_H
#define DC_SRC_IO_TORCHSCRIPT_H

#include "pickle.h"
#include "state_dict.h"
#include "zip.h"

/* Appends the parameters and buffers of the module tree rooted at `root` (data.pkl's object),
 * as named by the class definitions under FOLDER/code/. */
int io_torchscript_append(io_sd_builder *b, io_zip *zip, const char *folder,
                          const io_pk_obj *root);

#endif
