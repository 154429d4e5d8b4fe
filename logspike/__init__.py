"""LogSpike: multiplier-free, event-driven spiking-neural-network processors from PyTorch, verified bit-exact.

The Python API over a network package (SPEC.md section 1):

    import logspike
    net = logspike.from_torch(my_sequential, input_shape=(1, 8, 8))  # a trained torch module
    pkg = net.cat_train("digits", epochs=10).convert()          # conversion-aware training -> package
    pkg = logspike.load("golden/digits_cnn/package")
    res = logspike.predict(pkg, x)                     # golden model: the SPEC results dict
    res, cycles = logspike.simulate(pkg, x, lanes=4)   # the same on the RTL (Verilator), cycles per input
    res = logspike.predict(pkg, x, jobs=2)             # sharded over 2 processes (or client=a Dask Client)
    files = logspike.verilog(pkg, "out/rtl", lanes=4)  # logspike.v, logspike.json, logspike.core
    report = logspike.synth(pkg, target="ecp5", lanes=4)
    imp = logspike.from_nir("net.nir", dt=1e-4, time_steps=16)   # a NIR graph -> imp.package, imp.deviations
    logspike.to_nir(pkg, "net.nir")                    # a multistep package as a NIR graph file

The layers under it, each importing only those below: `logspike.model` (arithmetic, package, golden model,
training, conversion), `logspike.golden` (golden vectors), `logspike.hw` (the processor generator),
`logspike.synth` (synthesis and place and route); `logspike.cli` is the command line.
"""
from __future__ import annotations

__all__ = ["from_torch", "from_nir", "to_nir", "Network", "load", "predict", "simulate", "verilog", "image", "synth"]


class Network:
    """A user's trained network on its way to a package: `from_torch` -> `cat_train` -> `convert`.

    quant: the TTFS coding and weight format (model.quant.QuantConfig; default T=16, tau=2, W=5, F=16).
    """

    def __init__(self, net, quant=None):
        from logspike.model.quant import QuantConfig

        self.float_net, self.quant, self.cat = net, quant or QuantConfig(), None

    def _data(self, data):
        from logspike.model import data as datasets

        d = datasets.load(data) if isinstance(data, str) else data
        if tuple(d.shape) != tuple(self.float_net.input_shape):
            raise ValueError(f"data {d.name}: images {list(d.shape)} but the network takes "
                             f"input_shape {list(self.float_net.input_shape)}")
        return d

    def _folded(self, images):
        from logspike.model.train import fold_and_normalise

        return fold_and_normalise(self.float_net, images)[0]

    def cat_train(self, data="digits", epochs: int = 40, lr: float = 1e-3, batch: int = 64, seed: int = 0):
        """Batch norm folded, activations normalised on the training images, then conversion-aware
        fine-tuning (the best validation epoch kept). data: a data spec ('digits', 'mnist5k', ...) or a
        model.data.Dataset. Returns self."""
        from logspike.model.train import TrainConfig, train_cat

        d = self._data(data)
        cfg = TrainConfig(cat_epochs=epochs, cat_lr=lr, batch=batch, seed=seed)
        self.cat = train_cat(self._folded(d.train.x), d, self.quant, cfg)
        return self

    def convert(self, calib=None):
        """The ttfs package: of the CAT-trained net, or (no CAT, given calibration images) of the
        float net folded and normalised on them."""
        from logspike.model.convert import to_package

        if self.cat is None:
            if calib is None:
                raise ValueError("convert: cat_train first, or give calib images to normalise the float net on")
            return to_package(self._folded(calib), self.quant)
        return to_package(self.cat, self.quant)

    def encode(self, images):
        """Float images in [0, 1] as the package's TTFS input codes."""
        from logspike.model.convert import encode_inputs

        return encode_inputs(images, self.quant)


def from_torch(module, input_shape, **quant) -> Network:
    """A trained `nn.Sequential` (Conv2d, Linear, BatchNorm, ReLU, MaxPool2d, Flatten, Dropout) as a Network;
    quant: QuantConfig fields (time_steps, tau, weight_bits, frac_bits, rounding)."""
    from logspike.model.from_torch import from_torch as import_module
    from logspike.model.quant import QuantConfig

    return Network(import_module(module, input_shape), QuantConfig(**quant))


def load(path):
    """The network package in folder `path` (manifest.json + tensors.npz), validated against SPEC.md."""
    from logspike.model.package import read

    return read(path)


def _checked(pkg, x):
    from logspike.model.golden import check_inputs

    return check_inputs(pkg, x)


def predict(pkg, x, jobs: int = 1, client=None) -> dict:
    """The golden model on inputs x (one per row): the SPEC section 5 results as arrays.
    jobs: local processes the inputs are split over; client: a dask.distributed Client to run them on."""
    from logspike import shards

    return shards.run(shards.golden_shard, pkg, _checked(pkg, x), jobs=jobs, client=client, progress=False)


def _build(pkg, lanes: int, weights: str = "onchip", axi_data_bits: int = 128):
    from logspike.hw.config import build_for, fits

    cfg = build_for(pkg, lanes, weights=weights, axi_data_bits=axi_data_bits)
    fits(cfg, pkg)
    return cfg


def simulate(pkg, x, lanes: int = 4, jobs: int = 1, client=None, weights: str = "onchip", axi_data_bits: int = 128,
             memory=None) -> tuple[dict, list]:
    """The package on the RTL of the smallest build of `lanes` lanes that holds it: (results, cycles).
    jobs / client: sharded as `predict`; the Verilator model is built once, here. weights="external": the
    weights and biases in a memory behind an AXI4 port of axi_data_bits, `memory` the memory model's
    settings (a logspike.hw.sim.ExternalMemory: latency, bandwidth, stalls); an AXI error raises."""
    from logspike import shards

    res = shards.run(shards.sim_shard, shards.sim_job(_build(pkg, lanes, weights, axi_data_bits), pkg, memory),
                     _checked(pkg, x), jobs=jobs, client=client, progress=False)
    return res, res.pop("cycles").tolist()


def verilog(pkg, out_dir, lanes: int = 4, bake: bool = False, axi_stream: bool = False, axi_width: int | None = None,
            weights: str = "onchip", axi_data_bits: int = 128) -> dict:
    """The processor's Verilog sized for the package (its network baked into memory init if `bake`;
    AXI4-Stream ports if `axi_stream`, each `axi_width` bits wide if given; weights="external": an AXI4
    read port of axi_data_bits to the memory that holds the weights, see `image`)."""
    from pathlib import Path

    from logspike.hw.verilog import generate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return generate(_build(pkg, lanes, weights, axi_data_bits), out, baked=pkg if bake else None,
                    axi_stream=axi_stream or axi_width is not None, axi_width=axi_width)


def image(pkg, out_dir, lanes: int = 4, axi_data_bits: int = 128) -> dict:
    """The external memory's contents for an external-weight build of `lanes` lanes: writes weights.bin (the
    bytes, from the image's base address on) and layout.json (per layer: byte address, bytes, bursts; the
    registers XBIAS and XWSTART); returns their paths."""
    from logspike.hw.image import write_external

    return write_external(_build(pkg, lanes, "external", axi_data_bits), pkg, out_dir)


def synth(pkg_path, target: str = "ecp5", lanes: int = 4, freq: float = 150.0, seeds: int = 1, workdir=None,
          weights: str = "onchip", axi_data_bits: int = 128, placer: str = "default") -> dict:
    """Synthesis (and place and route) of the build for the package in folder `pkg_path`: the flow's report.
    placer (ecp5): nextpnr's placer settings, "default" or "timing" (synth.flow.PLACERS)."""
    from logspike.synth.builds import synthesize_build
    from logspike.synth.flow import require_tools

    require_tools(target)
    return synthesize_build(target, lanes, str(pkg_path), freq=freq, workdir=workdir, seeds=seeds, weights=weights,
                            axi_data_bits=axi_data_bits, placer=placer)


def from_nir(graph, dt: float, time_steps: int | None = None, **quant):
    """A NIR graph (a nir.NIRGraph, or the path of a .nir file) as a multistep package: a NirImport with
    `.package` and `.deviations` (each mapping that is not exact, its node named). quant: weight_bits,
    frac_bits, margin, min_steps (model.nir_io.from_nir)."""
    from logspike.model.nir_io import from_nir as imp

    return imp(graph, dt, time_steps, **quant)


def to_nir(pkg, path=None, dt: float = 1e-4):
    """A multistep package as a NIR graph, written to `path` (a .nir file) if given; returns the graph."""
    import nir

    from logspike.model.nir_io import to_nir as exp

    graph = exp(pkg, dt)
    if path is not None:
        nir.write(str(path), graph)
    return graph
