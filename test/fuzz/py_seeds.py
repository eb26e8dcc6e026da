"""Seeds that only Python writes naturally: deflated zips (zipfile), pickles of every protocol
(pickle), and, when PyTorch is importable, small torch.save files (zip and legacy containers,
views, nested dicts) and a TorchScript archive, with their pickles.

    py_seeds.py OUT_DIR    (fills OUT_DIR/<target>/; make builds it once per change)
"""
import collections
import io
import os
import pickle
import sys
import zipfile


def write(out, target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


def zip_seeds(out):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00." * 20)
        z.writestr("archive/data/0", bytes(range(256)) * 4)
        z.writestr(zipfile.ZipInfo("archive/stored"), b"stored bytes")
        z.writestr("archive/empty", b"")
        z.comment = b"a comment"
    write(out, "zip", "deflated.zip", buf.getvalue())

    class Unseekable(io.RawIOBase):   # makes zipfile write data descriptors
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

    stream = Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/data.pkl", b"x" * 100)
        z.writestr("a/version", b"3\n")
    write(out, "zip", "data_descriptors.zip", bytes(stream.data))


def pickle_seeds(out):
    """Protocols 0-2 spell strings, bytes and big integers with opcodes and globals that
    PyTorch files do not use (and the unpickler refuses), so each protocol gets what it can."""
    shared = [1, 2.5, (3,)]
    numbers = [0, -1, 255, 65535, -2**31, 2**63 - 1, 0.5, -1e300, float("inf"), None, True,
               False, (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), shared, shared, list(range(1200))]
    plain = collections.OrderedDict([("numbers", numbers), ("text", ("", "é😀")),
                                     ("nested", {"a": [shared], "b": {"c": None}})])
    full = dict(plain, bytes=(b"bytes", b"\x00" * 300), big=(2**70, -2**80),
                sets=(set([1, 2]), frozenset(["a"])))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for name, sample in (("numbers", numbers), ("plain", plain), ("full", full)):
            if (name, protocol) in (("plain", 0), ("full", 0), ("full", 1), ("full", 2)):
                continue
            write(out, "pickle", "%s%d.pkl" % (name, protocol), pickle.dumps(sample, protocol))


def torch_seeds(out):
    import torch

    torch.manual_seed(0)
    base = torch.arange(12, dtype=torch.float32)
    state = collections.OrderedDict([
        ("conv.weight", torch.randn(2, 3, 1, 1)),
        ("conv.bias", torch.nn.Parameter(torch.randn(2))),
        ("view", base[2:8].view(2, 3)),
        ("transposed", base.view(3, 4).t()),
        ("same_storage", base),
        ("half", torch.randn(3).half()),
        ("bfloat", torch.randn(3).bfloat16()),
        ("long", torch.tensor([1, -2, 1 << 40])),
        ("flag", torch.tensor([True, False])),
        ("scalar", torch.tensor(3.5)),
        ("empty", torch.zeros(0, 4)),
    ])
    saves = {
        "state.pt": (state, True),
        "state_legacy.pt": (state, False),
        "nested.pt": ({"state_dict": state, "epoch": 3, "optimizer": None}, True),
        "list_legacy.pt": ([state, {"epoch": 1}], False),
    }
    for name, (obj, new_zip) in saves.items():
        buf = io.BytesIO()
        torch.save(obj, buf, _use_new_zipfile_serialization=new_zip)
        write(out, "checkpoint", name, buf.getvalue())

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)
            self.register_buffer("running", torch.ones(2))

        def forward(self, x):
            return self.linear(x) + self.running

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])
            self.scale = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)[:, :1].repeat(1, 3)
            return x * self.scale

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Net()), buf)
    write(out, "checkpoint", "torchscript.pt", buf.getvalue())

    for name in ("state.pt", "nested.pt", "torchscript.pt"):
        with open(os.path.join(out, "checkpoint", name), "rb") as f:
            data = f.read()
        write(out, "zip", name, data)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for entry in z.namelist():
                if entry.endswith(".pkl"):
                    write(out, "pickle", name + "_" + entry.split("/")[-1], z.read(entry))


def main():
    out = sys.argv[1]
    zip_seeds(out)
    pickle_seeds(out)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("py_seeds.py: no PyTorch in %s: no torch.save or TorchScript seeds" % sys.executable)
        return
    torch_seeds(out)


if __name__ == "__main__":
    main()
