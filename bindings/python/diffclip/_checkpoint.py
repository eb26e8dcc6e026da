"""Checkpoints: reading every tensor of a file, and writing state dicts."""

import ctypes
from ctypes import byref

from ._arrays import TensorIn, copy_tensor
from ._errors import InvalidArgumentError
from ._ffi import check, lib
from ._handle import Handle, c_path, c_text, enum_value
from ._types import Container, dc_named_tensor, dc_tensor

__all__ = ["Checkpoint", "write_checkpoint"]


class Checkpoint(Handle):
    """The tensors of a torch.save zip or legacy file, a TorchScript archive, safetensors or
    .npy, read without executing anything. A read-only mapping from names to arrays."""

    _free = "dc_checkpoint_free"

    def __init__(self, path):
        super().__init__()
        self._open("dc_checkpoint_open", c_path(path))

    @property
    def container(self):
        with self._use() as p:
            return Container(lib().dc_checkpoint_container(p))

    def __len__(self):
        with self._use() as p:
            return lib().dc_checkpoint_count(p)

    def names(self):
        """The tensors' names in file order."""
        with self._use() as p:
            count = lib().dc_checkpoint_count(p)
            return [lib().dc_checkpoint_name(p, i).decode("utf-8", "replace")
                    for i in range(count)]

    keys = names

    def __iter__(self):
        return iter(self.names())

    def __contains__(self, name):
        try:
            self.find(name)
        except InvalidArgumentError:
            return False
        return True

    def find(self, name):
        """The index of the tensor called `name` (InvalidArgumentError if none)."""
        index = ctypes.c_size_t()
        with self._use() as p:
            check(lib().dc_checkpoint_find(p, c_text(name, "name"), byref(index)))
        return index.value

    def tensor(self, key):
        """A copy of tensor `key` (an index or a name) with its stored dtype."""
        if isinstance(key, str):
            key = self.find(key)
        view = dc_tensor()
        with self._use() as p:
            check(lib().dc_checkpoint_tensor(p, int(key), byref(view)))
            return copy_tensor(view)

    def __getitem__(self, name):
        try:
            return self.tensor(self.find(name) if isinstance(name, str) else name)
        except InvalidArgumentError as e:
            raise KeyError(name) from e

    def items(self):
        return [(name, self.tensor(i)) for i, name in enumerate(self.names())]


def write_checkpoint(path, tensors, format="auto"):
    """Writes a state dict: `tensors` is a mapping or a sequence of (name, array) pairs, kept
    in order. format: "auto" (by extension), "torch_zip" or "safetensors"."""
    pairs = list(tensors.items() if hasattr(tensors, "items") else tensors)
    inputs = [(c_text(name, "tensor name"), TensorIn(array, what=name)) for name, array in pairs]
    table = (dc_named_tensor * len(inputs))()
    for entry, (name, tensor) in zip(table, inputs):
        entry.name = name
        entry.tensor = tensor.tensor
    check(lib().dc_checkpoint_write(c_path(path), enum_value("dc_checkpoint_format", format),
                                    table, len(inputs)))
