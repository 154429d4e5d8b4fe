"""The processor's stream protocol, the one home of what the RTL (hw/top.py) and the host (hw/image.py)
agree on: config-beat selects and global-register addresses, result-beat tags, the beat layouts, the END
beat's fields and the layer-table entry that config beats load.

Config stream beat: {sel, addr, data}, taken only while the core is idle.

  sel GLOBAL  addr: a Global register (T, log2 tau, input words, mode, margin, margin is null, min_steps,
              T_max; see Global)
  sel LUT     lut[addr] (multistep: lut[0] = 2^F)
  sel THR     thresholds[addr]
  sel TABLE   layer table[addr] (entry_layout)
  sel WEIGHT  weight word[addr] (P lanes of weight_lane_layout)
  sel BIAS    bias word[addr] (P lanes of A bits)

Result stream beat: {tag, layer, addr, data}.

  tag SPIKE   ttfs: layer index, word address, data = P spike codes
  tag LOGIT   word address, data = P output potentials
  tag COUNT   multistep: layer index, word address, data = P spike counts up to the exit step
  tag END     data = end_layout(cfg) (prediction, cycles, synaptic ops, events, exit step; ttfs exit step 1;
              external weights: the first AXI read error's response and byte address)

External weights (Config.weights = "external"): the AXI4 read port `m_axi` (AxiReadSignature), from the
processor's side; the image's base address and layout are the Global registers XBASE, XBIAS, XWSTART.
"""
from __future__ import annotations

import enum

from amaranth.hdl import signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import CFG_ADDR_BITS, LAYER_INDEX_BITS, XADDR_BITS, Config, off_bits, ubits, widths
from .shiftadd import EXP_BITS


class Sel(enum.IntEnum):
    """What a config beat writes."""
    GLOBAL = 0
    LUT = 1
    THR = 2
    TABLE = 3
    WEIGHT = 4
    BIAS = 5


class Global(enum.IntEnum):
    """Config-beat addresses of the global registers (sel GLOBAL)."""
    T = 0            # ttfs T (multistep: 1, the silent spike code)
    TAULOG = 1       # log2 tau (multistep: 0)
    IN_WORDS = 2     # input words per inference
    MODE = 3         # 0 ttfs, 1 multistep
    # 4 is free: the leak shift is a layer's own (the table entry's `leak`), SPEC version 2
    MARGIN = 5       # exit margin (clamped to 2^A)
    MARGIN_NULL = 6  # the margin is null: no early exit
    MIN_STEPS = 7    # min_steps (clamped to T_max)
    T_MAX = 8
    # external weights only
    XBASE = 9        # byte address of the external image (a multiple of the AXI beat's bytes)
    XBIAS = 10       # bias words at the image's start, each on whole beats
    XWSTART = 11     # the weight words' first beat, counted from XBASE


# the key of each global register in a baked image's "globals" (hw/image.py) and in the decoder's registers
GLOBAL_FIELDS = {Global.T: "T", Global.TAULOG: "taulog", Global.IN_WORDS: "in_words", Global.MODE: "mode",
                 Global.MARGIN: "margin", Global.MARGIN_NULL: "margin_null",
                 Global.MIN_STEPS: "min_steps", Global.T_MAX: "t_max"}
EXTERNAL_GLOBAL_FIELDS = {Global.XBASE: "xbase", Global.XBIAS: "xbias", Global.XWSTART: "xwstart"}


def global_fields(cfg: Config) -> dict:
    """The global registers a build has (the config beats the host sends), Global -> key."""
    return {**GLOBAL_FIELDS, **(EXTERNAL_GLOBAL_FIELDS if cfg.external else {})}


class Tag(enum.IntEnum):
    """What a result beat carries."""
    SPIKE = 0
    LOGIT = 1
    END = 2
    COUNT = 3


# The END beat's data field, lowest bits first (end_layout: with an external-weight build's error fields).
END_LAYOUT = data.StructLayout({"pred": 16, "cycles": 32, "sops": 32, "events": 32, "exit_step": 16})


class Rresp(enum.IntEnum):
    """AXI4 read responses (RRESP); the END beat's `error` is the first one that was not OKAY."""
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


def end_layout(cfg: Config) -> data.StructLayout:
    """The END beat's data: END_LAYOUT, and for external weights `error` (the first RRESP other than OKAY
    during the inference, else 0) and `error_addr` (the byte address of that beat)."""
    if not cfg.external:
        return END_LAYOUT
    return data.StructLayout({**{n: f.shape for n, f in END_LAYOUT}, "error": 2, "error_addr": XADDR_BITS})


class AxiReadSignature(wiring.Signature):
    """An AXI4 read-only manager port (AR and R channels) from the manager's side. INCR bursts of whole
    beats; ARSIZE is the beat; one ID (ARID 0, RID ignored), so data returns in request order."""

    def __init__(self, data_bits: int):
        super().__init__({
            "arid": Out(1), "araddr": Out(XADDR_BITS), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
            "arcache": Out(4), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rid": In(1), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        })


def weight_lane_layout(cfg: Config) -> data.StructLayout:
    """One lane of a weight word: the log magnitude code and the sign (SPEC section 2)."""
    return data.StructLayout({"mag": cfg.weight_bits - 1, "sign": 1})


def entry_layout(cfg: Config) -> data.StructLayout:
    XA, WA = widths(cfg)
    D, K, S, P, R = cfg.dim_bits, cfg.k_bits, cfg.s_bits, cfg.lanes, off_bits(cfg)
    return data.StructLayout({
        "kind": 1,           # 0 weighted (dense or conv), 1 maxpool
        "last": 1,           # output layer: emit logits, no firing
        # residual (SPEC version 2): has_sc on a layer whose shortcut entry follows it in the table; that
        # entry (sc_entry) is the shortcut's 1x1 conv of the source's re-emitted words (hw/controller.py),
        # sc_near when the source is the layer's own input (else the layer before it)
        "has_sc": 1, "sc_entry": 1, "sc_near": 1,
        "index": LAYER_INDEX_BITS,  # package layer index (result tag)
        # the tensor this layer consumes, as its producer walks it
        "in_g": XA, "in_x": D, "in_y": D,   # groups-1, width-1, height-1
        "dense": 1,          # consumer is dense: weight rows continue across words, no coordinates
        "wstep": WA,         # P * lane stride: weight-row step per input word (dense) or group (conv)
        "s": S, "rx0": R, "ry0": R, "qx0": D, "qy0": D,
        "px0": XA, "py0": XA, "wx0": WA, "wy0": WA,
        "kg": WA,            # k * Gout (weight step per ky)
        # the Writer's counter end flags at a restart, precomputed by the host (hw/image.py) so the restart
        # loads flip-flops from the entry, with no compare of entry fields behind the FSM's restart decision:
        # g0_end = in_g == 0 (x0_end, y0_end likewise), rx0_wraps = rx0 + 1 == s, qx0_more = qx0 + 1 != wout,
        # ry0_wraps, qy0_more likewise with hout, s1 = s == 1
        "g0_end": 1, "x0_end": 1, "y0_end": 1, "rx0_wraps": 1, "qx0_more": 1, "ry0_wraps": 1, "qy0_more": 1, "s1": 1,
        # scatter
        "k": K, "hout": D, "wout": D, "gout": XA, "wg": XA,  # wg = Wout * Gout
        "ls": WA, "sg": WA, "skg": WA, "wbase": WA, "E": signed(EXP_BITS),
        # fire / emit
        "out_words": XA, "bbase": ubits(cfg.max_bias_words), "last_mask": P,
        # maxpool
        "pk": K, "p_ox": D, "p_oy": D, "rstep": XA, "cstep": XA, "dystep": XA,
        # multistep: this layer's persistent potentials and spike counters
        "vbase": ubits(cfg.max_state_words), "cbase": ubits(cfg.max_count_words),
        # multistep spiking layer: its leak shift, and whether a spike sets V to v_reset (else V - 2^F)
        **({"leak": 5, "reset_to_value": 1, "v_reset": signed(cfg.frac_bits + 1)} if cfg.multistep else {}),
    })


def cfg_data_bits(cfg: Config) -> int:
    P = cfg.lanes
    return max(entry_layout(cfg).size, P * cfg.weight_bits, P * cfg.acc_bits, cfg.acc_bits + 1, cfg.frac_bits + 1, 32)


def cfg_layout(cfg: Config) -> data.StructLayout:
    return data.StructLayout({"data": cfg_data_bits(cfg), "addr": CFG_ADDR_BITS, "sel": 3})


def res_data_bits(cfg: Config) -> int:
    return max(cfg.lanes * cfg.sym_bits, cfg.lanes * cfg.acc_bits, cfg.lanes * cfg.count_bits, end_layout(cfg).size)


def res_layout(cfg: Config) -> data.StructLayout:
    return data.StructLayout({"data": res_data_bits(cfg), "addr": widths(cfg)[0], "layer": LAYER_INDEX_BITS, "tag": 2})
