"""Build parameters of one LogSpike processor and the check that a package fits it.

A build fixes the datapath widths (lanes P, weight bits W, fraction bits F,
accumulator bits A) and the capacities of its memories; any package that
`fits` runs on it after a config-stream load, without rebuilding.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from logspike.model.package import WEIGHTED, Package, layer_shapes


class FitError(ValueError):
    """The package needs more than this build provides (names the field and the limit)."""


class ExternalMemoryError(RuntimeError):
    """An inference's END beat flagged an AXI read error (external weights; hw/sim.py names the layer)."""


# Fixed stream field widths (hw/protocol.py): no build can exceed them.
CFG_ADDR_BITS = 16    # config-stream beat address: weight, bias and layer-table memories load through it
LAYER_INDEX_BITS = 8  # package layer index carried in every layer-table entry and result beat
XADDR_BITS = 32       # the external memory's byte address (AXI4 ARADDR)


def external_bytes(cfg: "Config", weight_words: int, bias_words: int) -> int:
    """Bytes of an external image (hw/image.py external_image): the bias words, each on whole beats, then the
    weight words packed with no gap, padded to a whole beat."""
    B = cfg.axi_data_bits // 8
    return bias_words * cfg.bias_beats * B + -(-weight_words * cfg.weight_word_bits // cfg.axi_data_bits) * B


def check_lanes(lanes: int) -> int:
    """P must be a power of two; checked first so callers never divide by a bad P."""
    if lanes < 1 or lanes & (lanes - 1):
        raise ValueError(f"lanes = {lanes}: must be a power of two (1, 2, 4, ...)")
    return lanes


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def ubits(n: int) -> int:
    """Unsigned width holding 0..n."""
    return max(1, int(n).bit_length())


def widths(cfg: "Config"):
    """(XA, WA): widths of potential-word and weight-word address arithmetic."""
    return cfg.word_addr_bits + 2, cfg.waddr_bits + 1


def off_bits(cfg: "Config") -> int:
    """Width of a first kernel offset r: clamping to the last output lets r reach kernel + stride - 2."""
    return ubits(cfg.max_kernel + cfg.max_stride)


@dataclass(frozen=True)
class Config:
    lanes: int = 4            # P: output neurons (channels) updated per cycle; a power of two
    weight_bits: int = 5      # W: 1 sign + W-1 magnitude bits (package W <= this)
    frac_bits: int = 12       # F (package must match)
    acc_bits: int = 24        # A: package acc_bits must be <= A
    max_t: int = 16           # largest T; codes are ubits(max_t) bits
    max_tau: int = 4          # largest tau (power of two)
    max_layers: int = 8       # layer-table entries (flatten layers take none)
    max_neurons: int = 1024   # largest layer (in words of P lanes: ceil over channel groups)
    max_weight_words: int = 4096  # weight memory depth, words of P x W bits
    max_bias_words: int = 64  # bias memory depth, words of P x A bits
    max_inputs: int = 1024    # input layer size (same word rule as max_neurons)
    max_dim: int = 64         # largest H or W of any tensor
    max_kernel: int = 7
    max_stride: int = 4
    # multistep capacity (one build runs both modes)
    max_steps: int = 16       # largest T_max; step and spike-count registers are ubits(max_steps) bits
    max_state_words: int = 256  # potentials of ALL weighted layers at once (they persist across steps)
    max_count_words: int = 256  # spike counters of all spiking and pooling layers
    multistep: bool = True    # False: no multistep datapath (leak, state memories, exit rule): ttfs packages only
    fire_split: int = 1       # 2: the firing comparator bank has P/2 lanes, two cycles a word (hw/firing.py)
    thr_bits: int = 0         # width of the firing compares (unsigned, hw/firing.py); 0: acc_bits - 1, any valid threshold
    weight_bank_words: int = 0  # weight memory banks of this many words (a power of two, hw/banks.py); 0: as ECP5 RAMs need
    # where weights and biases live: "onchip" (block RAM, loaded over the config stream) or "external" (a memory
    # the processor reads through an AXI4 read port, hw/fetch.py; max_weight_words then only sizes addresses)
    weights: str = "onchip"
    axi_data_bits: int = 128   # external: AXI4 RDATA width, 64..256, a power of two
    fetch_ops: int = 512       # external: ops the Scatter may run ahead of their weights (prefetch depth)
    fetch_beats: int = 256     # external: read-data buffer, beats (credit: a burst is issued only into room)
    axi_max_burst: int = 64    # external: beats per burst, 1..256
    axi_outstanding: int = 16  # external: bursts in flight at once, >= 2 (a border event's run is a burst of a few
                               # beats: latency x bandwidth must be covered by these)
    max_event_ops: int = 64    # external: the most ops one event issues (ceil(k/s)^2 output groups); sizes the
                               # room the Scatter needs in the op buffer before it starts an event
    max_weight_step: int = 0   # the largest weight-address step or offset a table entry holds, where it exceeds
                               # max_weight_words (a conv of one input group at many lanes); sizes addresses only

    def __post_init__(self):
        check_lanes(self.lanes)
        if self.max_tau & (self.max_tau - 1):
            raise ValueError(f"max_tau = {self.max_tau}: must be a power of two")
        if self.acc_bits < self.frac_bits + 2:
            raise ValueError("acc_bits must be >= frac_bits + 2")
        if self.fire_split not in (1, 2) or (self.fire_split == 2 and self.lanes < 2):
            raise ValueError(f"fire_split = {self.fire_split}: must be 1, or 2 with at least 2 lanes")
        if not 0 <= self.thr_bits <= self.acc_bits - 1:
            raise ValueError(f"thr_bits = {self.thr_bits}: must be 0 (acc_bits - 1) or 1 .. acc_bits - 1 = {self.acc_bits - 1}")
        w = self.weight_bank_words
        if w < 0 or w & (w - 1):
            raise ValueError(f"weight_bank_words = {w}: must be 0 (chosen for ECP5 block RAMs) or a power of two")
        for f in ("max_steps", "max_state_words", "max_count_words"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f} = {getattr(self, f)}: must be >= 1")
        if self.weights not in ("onchip", "external"):
            raise ValueError(f"weights = {self.weights!r}: must be 'onchip' or 'external'")
        d = self.axi_data_bits
        if d not in (64, 128, 256):
            raise ValueError(f"axi_data_bits = {d}: must be 64, 128 or 256")
        for f, lo in (("fetch_ops", 16), ("fetch_beats", 16)):
            v = getattr(self, f)
            if v < lo or v & (v - 1):
                raise ValueError(f"{f} = {v}: must be a power of two >= {lo}")
        if not 1 <= self.axi_max_burst <= min(256, self.fetch_beats // 2):
            raise ValueError(f"axi_max_burst = {self.axi_max_burst}: must be 1 .. min(256, fetch_beats / 2)")
        if self.weights == "external" and d < self.lanes * self.weight_bits:
            raise ValueError(f"axi_data_bits = {d}: an external-weight build needs at least lanes x weight_bits = "
                             f"{self.lanes * self.weight_bits} (a weight word within one beat)")
        if not 2 <= self.axi_outstanding <= 64:
            raise ValueError(f"axi_outstanding = {self.axi_outstanding}: must be 2 .. 64")
        if not 1 <= self.max_event_ops <= self.fetch_ops // 2:
            raise ValueError(f"max_event_ops = {self.max_event_ops}: must be 1 .. fetch_ops / 2 = {self.fetch_ops // 2}")

    # derived widths -------------------------------------------------------
    @property
    def code_bits(self) -> int:
        return ubits(self.max_t)

    @property
    def sym_bits(self) -> int:
        """Lane width of input words, code buffers and event records: a ttfs code or a multistep byte."""
        return max(self.code_bits, 8)

    @property
    def thr_width(self) -> int:
        """Bits of a threshold register and of each firing compare."""
        return self.thr_bits or self.acc_bits - 1

    @property
    def step_bits(self) -> int:
        return ubits(self.max_steps)

    @property
    def count_bits(self) -> int:
        return ubits(self.max_steps)

    @property
    def lane_bits(self) -> int:
        return clog2(self.lanes)

    @property
    def tau_log_bits(self) -> int:
        return ubits(clog2(self.max_tau))

    @property
    def words(self) -> int:
        """Depth of each potential / code / event buffer."""
        return max(-(-self.max_neurons // self.lanes), -(-self.max_inputs // self.lanes), 1)

    @property
    def word_addr_bits(self) -> int:
        return max(1, clog2(self.words) + 1)  # +1: room for the signed walk of conv addresses

    @property
    def waddr_bits(self) -> int:
        return max(1, clog2(max(self.max_weight_words, self.max_weight_step)) + 1)

    @property
    def weight_bank_depth(self) -> int:
        """Words per weight-memory bank; max_weight_words (one memory) unless banked (hw/banks.py)."""
        w = self.weight_bank_words or bank_depth_for(self.max_weight_words, self.lanes * self.weight_bits)
        return min(w, self.max_weight_words)

    @property
    def dim_bits(self) -> int:
        return ubits(self.max_dim + self.max_kernel)

    @property
    def k_bits(self) -> int:
        return ubits(self.max_kernel)

    @property
    def s_bits(self) -> int:
        return ubits(self.max_stride)

    @property
    def external(self) -> bool:
        return self.weights == "external"

    @property
    def weight_word_bits(self) -> int:
        """Bits of one weight word: P lanes of W bits (the external image packs them with no gap)."""
        return self.lanes * self.weight_bits

    @property
    def fetch_unit_bits(self) -> int:
        """g = gcd(weight word, AXI beat): every word starts at a multiple of g bits within a beat, so the
        Gearbox (hw/fetch.py) shifts by multiples of g only."""
        return math.gcd(self.weight_word_bits, self.axi_data_bits)

    @property
    def bias_beats(self) -> int:
        """AXI beats per bias word (P x A bits, each word starting on a beat)."""
        return -(-self.lanes * self.acc_bits // self.axi_data_bits)

    @property
    def weight_align(self) -> int:
        """Each layer's weights start at a multiple of this many words: on a beat (external), else anywhere."""
        if not self.external:
            return 1
        return self.axi_data_bits // self.fetch_unit_bits

    def as_dict(self) -> dict:
        return asdict(self)


def words_of(shape, P: int) -> int:
    """Words of P lanes that hold a [C, H, W] (or [N] = [N, 1, 1]) tensor: H*W*ceil(C/P)."""
    c, h, w = (tuple(shape) + (1, 1))[:3] if len(shape) == 1 else tuple(shape)
    return h * w * -(-c // P)


def chw(shape):
    return (shape[0], 1, 1) if len(shape) == 1 else tuple(shape)


def align_up(n: int, a: int) -> int:
    return -(-n // a) * a


def needs(pkg: Package, lanes: int, word_align: int = 1) -> dict:
    """What a package needs of a build with `lanes` lanes (capacities in the Config's units); word_align: each
    table entry's weights start at a multiple of it (Config.weight_align). event_ops: the most ops one event
    issues (an event reaches at most ceil(k / s)^2 kernel offsets, each over every output group)."""
    P = lanes
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    n = {"inputs": words_of(pkg.input_shape, P) * P, "neurons": P, "dim": max(chw(pkg.input_shape)[1:]),
         "layers": sum(1 for l in pkg.layers if l["type"] != "flatten"), "weight_words": 0, "bias_words": 0,
         "kernel": 1, "stride": 1, "steps": 0, "state_words": 0, "count_words": 0, "event_ops": 1, "weight_step": 0}
    ms = pkg.mode == "multistep"
    if ms:
        n["steps"] = pkg.time_steps
    prev = tuple(pkg.input_shape)
    out_i = pkg.output_index()
    for i, (l, shp) in enumerate(zip(pkg.layers, shapes)):
        n["neurons"] = max(n["neurons"], words_of(shp, P) * P)
        n["dim"] = max(n["dim"], *chw(shp)[1:])
        if l["type"] in ("conv2d", "maxpool2d"):
            n["kernel"] = max(n["kernel"], l["kernel"])
        if l["type"] in WEIGHTED:
            g = -(-chw(shp)[0] // P)
            nin = words_of(prev, P) * P if l["type"] == "dense" else chw(prev)[0]
            reach = 1
            if l["type"] == "conv2d":
                n["stride"] = max(n["stride"], l["stride"])
                nin *= l["kernel"] * l["kernel"]
                reach = (-(-l["kernel"] // l["stride"])) ** 2
            n["event_ops"] = max(n["event_ops"], reach * g)
            n["weight_step"] = max(n["weight_step"], weight_step(l, shp, P))
            n["weight_words"] = align_up(n["weight_words"], word_align) + nin * g
            if "shortcut" in l:   # its own table entry, a 1x1 conv of the source's channels (hw/image.py)
                n["layers"] += 1
                n["weight_words"] = align_up(n["weight_words"], word_align) + chw(shapes[l["shortcut"]["from"]])[0] * g
            n["bias_words"] += g
            if ms:  # every weighted layer's potentials persist across steps
                n["state_words"] += words_of(shp, P)
        if ms and (l["type"] == "maxpool2d" or (l["type"] in WEIGHTED and i != out_i)):
            n["count_words"] += words_of(shp, P)
        if i == out_i:
            break
        if l["type"] != "flatten":  # a dense layer after flatten reads the tensor in its producer's word layout
            prev = shp
    return n


def weight_step(layer: dict, out_shape, P: int) -> int:
    """The largest weight-address field of a weighted layer's table entry (hw/image.py): its lane stride times
    P (the row step per input group), the kernel-row and stride steps and the first offsets' terms. Where the
    layer has one input group, P times its lane stride passes its own weights, though no address reaches it."""
    _, oh, ow = chw(out_shape)
    g = -(-chw(out_shape)[0] // P)
    if layer["type"] != "conv2d":
        return P * g
    k, s, p = layer["kernel"], layer["stride"], layer["padding"]
    q0, r0 = divmod(p, s)
    r_first = max(r0 + (q0 - min(q0, o - 1)) * s for o in (oh, ow))
    return max(P * k * k * g, s * k * g, r_first * k * g)


def entry_distance(layers, j: int, i: int) -> int:
    """Layer-table entries from layer j to layer i (flatten layers take none)."""
    return sum(1 for l in layers[j + 1:i + 1] if l["type"] != "flatten")


def fits(cfg: Config, pkg: Package) -> None:
    """Raise FitError naming the package field and the build limit it exceeds."""

    def fail(field, value, limit):
        raise FitError(f"package {field} = {value}: does not fit this build ({limit})")

    if pkg.mode not in ("ttfs", "multistep"):
        fail("mode", pkg.mode, "this build runs ttfs and multistep packages")
    if pkg.mode == "multistep" and not cfg.multistep:
        fail("mode", pkg.mode, "this build has no multistep datapath (built with multistep = False)")
    # a weight's value depends on its magnitude code alone (SPEC section 2): W bits of codes are a
    # subset of a wider build's, so a narrower package runs unchanged
    if pkg.weight_bits > cfg.weight_bits:
        fail("weight_bits", pkg.weight_bits, f"build weight_bits = {cfg.weight_bits}; at most that")
    if pkg.frac_bits != cfg.frac_bits:
        fail("frac_bits", pkg.frac_bits, f"build frac_bits = {cfg.frac_bits}; must be equal")
    if pkg.acc_bits > cfg.acc_bits:
        fail("acc_bits", pkg.acc_bits, f"build acc_bits = {cfg.acc_bits}")
    for i, l in enumerate(pkg.layers):
        if "shortcut" in l:
            # the source's words stay in the code buffer only while its bank is not written again: until the
            # second layer after it (hw/controller.py)
            j = l["shortcut"]["from"]
            d = entry_distance(pkg.layers, j, i)
            if d > 2:
                fail(f"layers[{i}].shortcut.from", j, f"{d} layers back; the processor keeps a shortcut's source "
                     "for 2 layers: its own input's producer or the layer before that")
    P = cfg.lanes
    if len(pkg.layers) > 1 << LAYER_INDEX_BITS:
        fail("layers", f"{len(pkg.layers)} layers", f"results tag the layer index with {LAYER_INDEX_BITS} bits: at most {1 << LAYER_INDEX_BITS}")
    n = needs(pkg, P, cfg.weight_align)
    if not cfg.external:
        # no build of P lanes can load more words than the config stream addresses, whatever its capacities
        top = 1 << CFG_ADDR_BITS
        for field, key in (("weights", "weight_words"), ("biases", "bias_words")):
            if n[key] > top:
                fail(field, f"{n[key]} words of {P} lanes", f"the config stream's {CFG_ADDR_BITS}-bit address loads at most {top} words; "
                     "more lanes need fewer words, or build with external weights")
    else:
        if n["event_ops"] > cfg.max_event_ops:
            fail("layers", f"an event of {n['event_ops']} ops (ceil(kernel / stride)^2 x output groups)",
                 f"build max_event_ops = {cfg.max_event_ops}")
        size = external_bytes(cfg, n["weight_words"], n["bias_words"])
        if size > 1 << XADDR_BITS:
            fail("weights", f"an external image of {size} bytes", f"the AXI port's {XADDR_BITS}-bit address reaches {1 << XADDR_BITS}")
    if pkg.mode == "ttfs":
        if pkg.time_steps > cfg.max_t:
            fail("time_steps", pkg.time_steps, f"build max_t = {cfg.max_t}")
        if pkg.tau > cfg.max_tau:
            fail("tau", pkg.tau, f"build max_tau = {cfg.max_tau}")
        for t, v in enumerate(pkg.thresholds):
            if v >= 1 << cfg.thr_width:
                fail(f"thresholds[{t}]", v, f"build thr_bits = {cfg.thr_width}: thresholds < {1 << cfg.thr_width}")
    else:
        if pkg.time_steps > cfg.max_steps:
            fail("time_steps", pkg.time_steps, f"multistep T_max; build max_steps = {cfg.max_steps}")
        if n["state_words"] > cfg.max_state_words:
            fail("potentials", f"{n['state_words']} words of {P} lanes (all weighted layers persist across steps)",
                 f"build max_state_words = {cfg.max_state_words}")
        if n["count_words"] > cfg.max_count_words:
            fail("spike counters", f"{n['count_words']} words of {P} lanes (all spiking and pooling layers)",
                 f"build max_count_words = {cfg.max_count_words}")
    if n["inputs"] > max(cfg.max_inputs, P):
        fail("input_shape", pkg.input_shape, f"needs {n['inputs'] // P} words of {P} lanes; build max_inputs = {cfg.max_inputs}")
    if n["layers"] > cfg.max_layers:
        fail("layers", f"{n['layers']} non-flatten layers", f"build max_layers = {cfg.max_layers}")
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    out_i = pkg.output_index()
    for i, (l, shp) in enumerate(zip(pkg.layers, shapes)):
        name = f"layers[{i}]"
        if words_of(shp, P) > cfg.words:
            fail(f"{name} output shape", list(shp), f"needs {words_of(shp, P)} words of {P} lanes; build holds {cfg.words} (max_neurons = {cfg.max_neurons})")
        for d in chw(shp)[1:]:
            if d > cfg.max_dim:
                fail(f"{name} output shape", list(shp), f"build max_dim = {cfg.max_dim}")
        if l["type"] == "conv2d":
            if l["kernel"] > cfg.max_kernel:
                fail(f"{name}.kernel", l["kernel"], f"build max_kernel = {cfg.max_kernel}")
            if l["stride"] > cfg.max_stride:
                fail(f"{name}.stride", l["stride"], f"build max_stride = {cfg.max_stride}")
            if l["padding"] >= l["kernel"] + cfg.max_stride:
                fail(f"{name}.padding", l["padding"], "must be < kernel + max_stride")
            if i == out_i and shp[1] * shp[2] != 1:
                fail(f"{name}.type", "conv2d", "the output layer must be dense (or a conv with a 1x1 output)")
        if l["type"] == "maxpool2d" and l["kernel"] > cfg.max_kernel:
            fail(f"{name}.kernel", l["kernel"], f"build max_kernel = {cfg.max_kernel}")
        if i == out_i:
            break
    for d in chw(pkg.input_shape)[1:]:
        if d > cfg.max_dim:
            fail("input_shape", pkg.input_shape, f"build max_dim = {cfg.max_dim}")
    if n["weight_words"] > cfg.max_weight_words:
        fail("weights", f"{n['weight_words']} words of {P} lanes", f"build max_weight_words = {cfg.max_weight_words}")
    if n["weight_step"] >= 1 << widths(cfg)[1]:
        fail("layers", f"a weight-address step of {n['weight_step']}", f"the build's {widths(cfg)[1]}-bit weight "
             "addresses (max_weight_words, max_weight_step)")
    if n["bias_words"] > cfg.max_bias_words:
        fail("biases", f"{n['bias_words']} words of {P} lanes", f"build max_bias_words = {cfg.max_bias_words}")


# ECP5 DP16KD shapes, words x bits (the 36-bit one is the pseudo-dual-port mode the weight memory maps to)
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def bank_depth_for(depth: int, width: int) -> int:
    """Words per bank for a depth x width memory: depth itself (one memory) when a DP16KD shape holds it
    one RAM deep in as few RAMs as any shape; else the depth of the cheapest shape (the deepest of ties),
    which Yosys would otherwise stack behind a read mux."""
    cost = {d: -(-depth // d) * -(-width // w) for d, w in DP16KD_SHAPES}
    best = min(cost.values())
    if any(c == best for d, c in cost.items() if d >= depth):
        return depth
    return max(d for d, c in cost.items() if c == best)


def build_for(pkg, lanes: int, **over):
    """The smallest build of `lanes` lanes that fits this package (capacities from the package).

    A ttfs package gets a build without the multistep datapath; the
    capacities of the mode the package does not use are left at their minimum
    (override them, e.g. multistep / max_steps / max_state_words /
    max_count_words, for a build that must also hold other packages;
    build_for_all does). From 16 lanes on the firing comparator bank is
    time-shared over two cycles (fire_split = 2): at full width it would be
    over a quarter of the logic. weights="external" (with the AXI fields of
    Config, else their defaults) sizes the op buffer to twice the largest
    event of the package, at least the default."""
    over = {k: v for k, v in over.items() if v is not None}
    probe = Config(lanes=check_lanes(lanes), weight_bits=pkg.weight_bits, acc_bits=pkg.acc_bits, frac_bits=pkg.frac_bits,
                   **{k: over[k] for k in ("weights", "axi_data_bits") if k in over})
    n = needs(pkg, lanes, probe.weight_align)
    ttfs = pkg.mode == "ttfs"
    kw = dict(lanes=lanes, weight_bits=pkg.weight_bits, frac_bits=pkg.frac_bits, acc_bits=pkg.acc_bits,
              max_t=pkg.time_steps if ttfs else 1, max_tau=pkg.tau if ttfs else 1, max_layers=n["layers"],
              max_neurons=n["neurons"], max_inputs=n["inputs"], max_weight_words=n["weight_words"],
              max_bias_words=n["bias_words"], max_dim=n["dim"], max_kernel=n["kernel"], max_stride=n["stride"],
              max_steps=max(1, n["steps"]), max_state_words=max(1, n["state_words"]),
              max_count_words=max(1, n["count_words"]), multistep=not ttfs, fire_split=2 if lanes >= 16 else 1,
              # only where the weight addresses (max_weight_words' width, widths()) would not hold it
              max_weight_step=n["weight_step"] if n["weight_step"] >> (clog2(max(1, n["weight_words"])) + 2) else 0,
              # firing compares of frac_bits + 2 bits (thresholds below 4.0), wider if this package needs it
              thr_bits=min(pkg.acc_bits - 1, max([pkg.frac_bits + 2] + [int(v).bit_length() for v in (pkg.thresholds if ttfs else [])])))
    if probe.external:
        kw.update(max_event_ops=n["event_ops"], fetch_ops=max(Config.fetch_ops, 1 << clog2(2 * n["event_ops"])))
    kw.update(over)
    return Config(**kw)


def build_for_all(pkgs, lanes: int, **over):
    """One build that holds every package: the field-wise largest of their own builds."""
    dicts = [build_for(p, lanes, **over).as_dict() for p in pkgs]
    return Config(**{k: dicts[0][k] if k == "weights" else max(d[k] for d in dicts) for k in dicts[0]})
