"""Host side of the processor: a Package to config-stream beats / a baked image,
inputs (ttfs codes or multistep bytes) to input beats, and result-stream beats
back to a SPEC section 5 dict (both modes; see hw/top.py for the formats).

All tables come from the package (validated against model.arith by the
package reader); nothing here re-derives the arithmetic.
"""
from __future__ import annotations

import numpy as np

from logspike.model.package import Package, layer_shapes

from .config import CFG_ADDR_BITS, XADDR_BITS, Config, chw, entry_distance, fits, words_of
from .protocol import Sel, Tag, cfg_data_bits, end_layout, entry_layout, global_fields, res_layout


def pack(layout, values: dict) -> int:
    """Pack a dict of field ints into one integer of a StructLayout (two's complement for signed)."""
    out = 0
    for name, fld in layout:
        v = int(values.get(name, 0))
        w = fld.width
        from amaranth.hdl import Shape
        if not Shape.cast(fld.shape).signed and not 0 <= v < (1 << w):
            raise ValueError(f"field {name} = {v} does not fit {w} bits")
        out |= (v & ((1 << w) - 1)) << fld.offset
    return out


def threshold_table(cfg: Config, thresholds) -> list[int]:
    """The package thresholds padded to max_t with 0, which no clamped potential is below (never fires)."""
    return list(thresholds) + [0] * (cfg.max_t - len(thresholds))


def nat_index(shape, P: int) -> np.ndarray:
    """For every element of a [C,H,W] or [N] tensor (row-major), its natural index word*P + lane."""
    c, h, w = chw(shape)
    G = -(-c // P)
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return (((yy * w + xx) * G + cc // P) * P + cc % P).reshape(-1)


def _writer_flags(e: dict) -> dict:
    """The Writer's counter end flags at a restart (hw/sequencer.py entry_layout), from the entry's own
    fields; a field a layer kind leaves out is 0 in the table, and so here."""
    def g(k):
        return e.get(k, 0)
    return dict(g0_end=int(g("in_g") == 0), x0_end=int(g("in_x") == 0), y0_end=int(g("in_y") == 0),
                rx0_wraps=int(g("rx0") + 1 == g("s")), qx0_more=int(g("qx0") + 1 != g("wout")),
                ry0_wraps=int(g("ry0") + 1 == g("s")), qy0_more=int(g("qy0") + 1 != g("hout")), s1=int(g("s") == 1))


def layer_entries(cfg: Config, pkg: Package):
    """Layer-table entries, weight words (a WeightWords) and bias words (as lane lists) of a package."""
    P, WB = cfg.lanes, cfg.weight_bits
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    ins = [tuple(pkg.input_shape)] + shapes[:-1]
    out_i = pkg.output_index()
    ms = pkg.mode == "multistep"
    ents, wwords, bwords = [], WeightWords(P), []
    vwords = cwords = 0  # multistep: persistent potential / spike-counter regions
    for i, l in enumerate(pkg.layers):
        if l["type"] == "flatten":
            continue
        cin, hin, win = chw(ins[i] if l["type"] != "dense" else ins[i])
        # the tensor consumed, in the geometry its producer walked (flatten is transparent)
        src = ins[i]
        j = i
        while j > 0 and pkg.layers[j - 1]["type"] == "flatten":
            j -= 1
            src = ins[j]
        cin, hin, win = chw(src)
        gin = -(-cin // P)
        e = {"index": i, "in_g": gin - 1, "in_x": win - 1, "in_y": hin - 1, "last": int(i == out_i)}
        oc, oh, ow = chw(shapes[i])
        gout = -(-oc // P)
        if l["type"] == "maxpool2d":
            k = l["kernel"]
            e.update(kind=1, dense=1, s=1, pk=k, p_ox=ow - 1, p_oy=oh - 1, rstep=k * win * gin, cstep=k * gin,
                     dystep=win * gin, gout=gout, out_words=oh * ow * gout)
        else:
            E = l["exp_offset"]
            sign, mag, bias = pkg.weights(i)
            wwords.align(cfg.weight_align)
            wbase, bbase = len(wwords), len(bwords)
            if l["type"] == "dense":
                ls = gout
                e.update(kind=0, dense=1, s=1, k=1, hout=1, wout=1, kg=gout)
                nat = nat_index(src, P)
                words = np.zeros((words_of(src, P) * P * gout, P), dtype=np.uint16)
                o = np.arange(mag.shape[0])
                words[nat[:, None] * gout + (o // P)[None, :], (o % P)[None, :]] = codes_of(sign, mag, WB).T
            else:
                ls, words = _conv_fields(e, P, l["kernel"], l["stride"], l["padding"], cin, oc, oh, ow,
                                         codes_of(sign, mag, WB))
            e.update(gout=gout, wg=ow * gout, ls=ls, wstep=P * ls, sg=e["s"] * gout, skg=e["s"] * e["k"] * gout,
                     wbase=wbase, E=E, out_words=oh * ow * gout, bbase=bbase)
            if i == out_i:
                e["last_mask"] = (1 << (oc - (gout - 1) * P)) - 1
            wwords.add(words)
            b = [int(v) for v in bias] + [0] * (gout * P - oc)
            bwords += [b[g * P:(g + 1) * P] for g in range(gout)]
        if ms:
            if l["type"] != "maxpool2d":
                e["vbase"] = vwords
                vwords += e["out_words"]
            if i != out_i:
                e["cbase"] = cwords
                cwords += e["out_words"]
            if l["type"] != "maxpool2d" and i != out_i:   # a spiking layer's neurons (SPEC section 4)
                v_reset = pkg.layer_reset(i)
                e.update(leak=pkg.layer_leak(i), reset_to_value=int(v_reset is not None), v_reset=v_reset or 0)
        e.update(_writer_flags(e))
        ents.append(e)
        if pkg.shortcut(i) is not None:
            e["has_sc"] = 1
            wwords.align(cfg.weight_align)
            sc_ent, sc_words = _shortcut_entry(pkg, i, shapes, P, len(wwords), WB)
            ents.append(sc_ent)
            wwords.add(sc_words)
        if i == out_i:
            break
    # the Writer reads its consumer's walk fields from the *next* entry: nothing to add
    return ents, wwords, bwords


class WeightWords:
    """The weight words of an image, in blocks of [n, P] lane codes ((sign << (W - 1)) | mag, the build's W)."""

    def __init__(self, lanes: int):
        self.lanes, self.blocks, self.n = lanes, [], 0

    def __len__(self):
        return self.n

    def add(self, block: np.ndarray):
        self.blocks.append(block)
        self.n += len(block)

    def align(self, a: int):
        """Zero words up to the next multiple of a (external weights: each entry's weights on a beat)."""
        if self.n % a:
            self.add(np.zeros((-self.n % a, self.lanes), dtype=np.uint16))

    def codes(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, self.lanes), dtype=np.uint16)


def codes_of(sign, mag, W: int) -> np.ndarray:
    """Weight lane codes of a build of W weight bits: the sign above the W - 1 magnitude bits."""
    return (np.asarray(sign).astype(np.uint16) << (W - 1)) | np.asarray(mag).astype(np.uint16)


def _conv_fields(e: dict, P: int, k: int, s: int, p: int, cin: int, oc: int, oh: int, ow: int, codes):
    """A conv layer's walk fields into entry e; its lane stride and weight words from its [K, C, k, k] codes."""
    gout = -(-oc // P)
    # first output / kernel offset of input position 0, clamped to the last output (see the Writer)
    q0, r0 = divmod(p, s)
    qx0, qy0 = min(q0, ow - 1), min(q0, oh - 1)
    rx0, ry0 = r0 + (q0 - qx0) * s, r0 + (q0 - qy0) * s
    e.update(kind=0, dense=0, s=s, k=k, hout=oh, wout=ow, rx0=rx0, ry0=ry0, qx0=qx0, qy0=qy0,
             px0=qx0 * gout, py0=qy0 * ow * gout, wx0=rx0 * gout, wy0=ry0 * k * gout, kg=k * gout)
    words = np.zeros((cin * k * k * gout, P), dtype=np.uint16)
    o, c, ky, kx = np.ix_(np.arange(oc), np.arange(cin), np.arange(k), np.arange(k))
    words[((c * k + ky) * k + kx) * gout + o // P, o % P + 0 * c] = codes
    return k * k * gout, words


def _shortcut_entry(pkg: Package, i: int, shapes, P: int, wbase: int, W: int):
    """The table entry of layer i's shortcut and its weight words. The processor runs a shortcut as a
    layer of its own between layer i's scatter and its fire pass (hw/controller.py): a walk of kernel 1
    and the shortcut's stride re-emits the source's words at the positions it reads (the pool-walk
    fields), so the Writer records them as the input of a 1x1, stride-1 conv (the Writer's consumer
    fields) whose scatter adds into layer i's potentials (the scatter fields). An identity shortcut is
    that conv with the diagonal weights +2^E (Package.shortcut_weights)."""
    sc = pkg.shortcut(i)
    j = sc["from"]
    c, h, w = chw(shapes[j])
    oc, oh, ow = chw(shapes[i])
    s = sc.get("stride", 1)
    gin, gout = -(-c // P), -(-oc // P)
    sign, mag = pkg.shortcut_weights(i)
    e = {"index": i, "sc_entry": 1, "sc_near": int(entry_distance(pkg.layers, j, i) == 1),
         "in_g": gin - 1, "in_x": ow - 1, "in_y": oh - 1,
         "pk": 1, "p_ox": ow - 1, "p_oy": oh - 1, "rstep": s * w * gin, "cstep": s * gin, "dystep": w * gin}
    ls, words = _conv_fields(e, P, 1, 1, 0, c, oc, oh, ow, codes_of(sign, mag, W))
    e.update(gout=gout, wg=ow * gout, ls=ls, wstep=P * ls, sg=gout, skg=gout, wbase=wbase, E=sc["exp_offset"],
             out_words=oh * ow * gout)
    e.update(_writer_flags(e))
    return e, words


def _word(lanes, width):
    out = 0
    for l, v in enumerate(lanes):
        out |= (int(v) & ((1 << width) - 1)) << (l * width)
    return out


def _words_of(codes: np.ndarray, W: int) -> list[int]:
    """Each row of lane codes as one word, lane 0 lowest."""
    out = np.zeros(len(codes), dtype=object)
    for lane in range(codes.shape[1]):
        out += codes[:, lane].astype(object) << (lane * W)
    return [int(v) for v in out]


def bake(cfg: Config, pkg: Package, xbase: int = 0) -> dict:
    """Memory and register contents of a package: the config stream's payload, or a baked image. External
    weights: the weights and biases are external_image's; the registers say where it lies (xbase)."""
    fits(cfg, pkg)
    ents, wwords, bwords = layer_entries(cfg, pkg)
    # fits() sized these with needs(); a mismatch would wrap the memory addresses silently
    if len(wwords) > cfg.max_weight_words or len(bwords) > cfg.max_bias_words:
        raise AssertionError(f"needs() undercounts the image: {len(wwords)} weight / {len(bwords)} bias words")
    el = entry_layout(cfg)
    iw = words_of(pkg.input_shape, cfg.lanes)
    if pkg.mode == "ttfs":
        glob = {"T": pkg.time_steps, "taulog": pkg.tau.bit_length() - 1, "in_words": iw, "mode": 0,
                "t_max": 1, "min_steps": 1, "margin_null": 1}
        lut, thr = list(pkg.lut) + [0] * (cfg.max_tau - pkg.tau), threshold_table(cfg, pkg.thresholds)
    else:
        # binary spikes are the ttfs datapath with T = 1 (code 0 = spike), tau = 1, lut[0] = 2^F
        T = pkg.time_steps
        mg = pkg.exit["margin"]
        glob = {"T": 1, "taulog": 0, "in_words": iw, "mode": 1,
                "margin": 0 if mg is None else min(int(mg), 1 << cfg.acc_bits), "margin_null": int(mg is None),
                "min_steps": min(int(pkg.exit["min_steps"]), T), "t_max": T}
        lut, thr = [1 << cfg.frac_bits] + [0] * (cfg.max_tau - 1), threshold_table(cfg, [])
    if cfg.external:
        B = cfg.axi_data_bits // 8
        if xbase % B or not 0 <= xbase < 1 << XADDR_BITS:
            raise ValueError(f"xbase = {xbase}: must be a multiple of the AXI beat ({B} bytes) below 2^{XADDR_BITS}")
        glob.update(xbase=xbase, xbias=len(bwords), xwstart=len(bwords) * cfg.bias_beats)
    return {
        "globals": glob,
        "lut": lut,
        "thr": thr,
        "table": [pack(el, e) for e in ents],
        "weights": _words_of(wwords.codes(), cfg.weight_bits),
        "bias": [_word(b, cfg.acc_bits) for b in bwords],
    }


def config_beats(cfg: Config, pkg: Package, xbase: int = 0) -> list[int]:
    """The config-stream beats (payload ints) that load this package (external weights: all but the weights
    and biases, which external_image's bytes at byte address xbase hold)."""
    img = bake(cfg, pkg, xbase)
    D = cfg_data_bits(cfg)

    def beat(sel, addr, d):
        if not 0 <= addr < 1 << CFG_ADDR_BITS:  # fits() refuses such packages; never wrap into sel
            raise ValueError(f"config address {addr} does not fit {CFG_ADDR_BITS} bits")
        return (sel << (D + CFG_ADDR_BITS)) | (addr << D) | (d & ((1 << D) - 1))

    g = img["globals"]
    out = [beat(Sel.GLOBAL, a, g.get(k, 0)) for a, k in global_fields(cfg).items()]
    out += [beat(Sel.LUT, i, v) for i, v in enumerate(img["lut"])]
    out += [beat(Sel.THR, i, v) for i, v in enumerate(img["thr"])]
    out += [beat(Sel.TABLE, i, v) for i, v in enumerate(img["table"])]
    if not cfg.external:
        out += [beat(Sel.WEIGHT, i, v) for i, v in enumerate(img["weights"])]
        out += [beat(Sel.BIAS, i, v) for i, v in enumerate(img["bias"])]
    return out


def external_image(cfg: Config, pkg: Package) -> tuple[bytes, dict]:
    """The external memory's contents for an external-weight build (hw/fetch.py), relative to XBASE: every
    bias word on whole beats (bias_beats each, little-endian, lane 0 lowest), then from beat XWSTART the
    weight words, P x W bits each, packed with no gap (word n from bit n * P * W), each table entry's words
    from a beat boundary. Returns (the bytes, padded to a whole beat, and their layout: per layer the byte
    address, bytes and bursts of a straight read of its weights, its shortcut's and its biases, with XBASE on
    a 4 KB boundary)."""
    if not cfg.external:
        raise ValueError("external_image: this build keeps its weights on chip (Config.weights = 'onchip')")
    fits(cfg, pkg)
    ents, wwords, bwords = layer_entries(cfg, pkg)
    P, A, W, DW = cfg.lanes, cfg.acc_bits, cfg.weight_bits, cfg.axi_data_bits
    B, K = DW // 8, cfg.bias_beats
    bias = b"".join(_word(b, A).to_bytes(K * B, "little") for b in bwords)
    codes = wwords.codes()
    bits = ((codes[:, :, None] >> np.arange(W)) & 1).astype(np.uint8).reshape(-1)
    bits = np.concatenate([bits, np.zeros(-len(bits) % DW, dtype=np.uint8)])
    weights = np.packbits(bits, bitorder="little").tobytes()
    wstart = len(bias)

    def region(addr, nbytes):
        return {"address": addr, "bytes": nbytes, "bursts": bursts(cfg, addr, nbytes)}

    layers = []
    for k, e in enumerate(ents):
        if e.get("kind", 0) == 1:
            continue
        nxt_w = next((f["wbase"] for f in ents[k + 1:] if f.get("kind", 0) == 0), len(wwords))
        w = region(wstart + e["wbase"] * P * W // 8, -(-(nxt_w - e["wbase"]) * P * W // 8))
        if e.get("sc_entry"):
            layers[-1]["shortcut"] = w
            continue
        g = e["gout"]
        layers.append({"layer": e["index"], "weights": w, "biases": region(e["bbase"] * K * B, g * K * B)})
    layout = {"bytes": len(bias) + len(weights), "beat_bytes": B, "bias_beats_per_word": K, "bias_words": len(bwords),
              "weights_at": wstart, "weight_word_bits": P * W, "weight_words": len(wwords), "layers": layers}
    return bias + weights, layout


def write_external(cfg: Config, pkg: Package, out_dir) -> dict:
    """external_image into out_dir: weights.bin (the bytes from the image's base address on) and layout.json
    (the layout, the build's AXI parameters and the registers the config stream sets: XBIAS, XWSTART; XBASE
    is where the host puts weights.bin). Returns their paths."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, layout = external_image(cfg, pkg)
    glob = bake(cfg, pkg)["globals"]
    layout = {"lanes": cfg.lanes, "axi_data_bits": cfg.axi_data_bits, "axi_max_burst": cfg.axi_max_burst,
              "registers": {"xbias": glob["xbias"], "xwstart": glob["xwstart"],
                            "xbase": "the byte address weights.bin is written to (a multiple of 4096 for these burst counts)"},
              **layout}
    (out / "weights.bin").write_bytes(data)
    (out / "layout.json").write_text(json.dumps(layout, indent=1) + "\n")
    return {"weights": out / "weights.bin", "layout": out / "layout.json"}


def bursts(cfg: Config, addr: int, nbytes: int) -> int:
    """Bursts of a straight read of nbytes from byte addr (beats of the build, at most axi_max_burst each,
    none across 4 KB)."""
    B = cfg.axi_data_bits // 8
    beat, end = addr // B, -(-(addr + nbytes) // B)
    n = 0
    while beat < end:
        to4k = (4096 - beat * B % 4096) // B
        beat += min(end - beat, to4k, cfg.axi_max_burst)
        n += 1
    return n


def error_region(layout: dict, addr: int) -> str:
    """Which part of an external image a byte address (relative to XBASE) falls in, for error messages."""
    for l in layout["layers"]:
        for part in ("weights", "shortcut", "biases"):
            r = l.get(part)
            if r and r["address"] <= addr < r["address"] + r["bytes"]:
                return f"layer {l['layer']} {part}"
    return "past the image" if addr >= layout["bytes"] else "padding"


def config_beat_fields(cfg: Config, b: int) -> tuple[int, int, int]:
    """A config beat's (sel, addr, data): the inverse of config_beats' packing."""
    D = cfg_data_bits(cfg)
    return b >> (D + CFG_ADDR_BITS), (b >> D) & ((1 << CFG_ADDR_BITS) - 1), b & ((1 << D) - 1)


def input_beats(cfg: Config, pkg: Package, x) -> list[int]:
    """One input sample ([C,H,W] or [N] ttfs codes or multistep bytes) as natural-layout words of P
    lanes; padded lanes silent (code T, or byte 0)."""
    P, CB = cfg.lanes, cfg.sym_bits
    x = np.asarray(x).reshape(-1)
    nat = nat_index(pkg.input_shape, P)
    flat = np.full(words_of(pkg.input_shape, P) * P, pkg.time_steps if pkg.mode == "ttfs" else 0, dtype=np.int64)
    flat[nat] = x
    return [_word(flat[a * P:(a + 1) * P], CB) for a in range(len(flat) // P)]


def parse_results(cfg: Config, pkg: Package, beats: list[int]) -> dict:
    """Result beats of one inference -> (SPEC section 5 dict without the batch axis, counters).
    spikes_L{i}: ttfs SPIKE beats (codes) or multistep COUNT beats (spike counts)."""
    P, CB, A, KB = cfg.lanes, cfg.sym_bits, cfg.acc_bits, cfg.count_bits
    rl = res_layout(cfg)
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    out_i = pkg.output_index()
    res = {}
    flat = {}
    logits = np.zeros(words_of(shapes[out_i], P) * P, dtype=np.int64)
    counters = None

    def field(v, name):
        f = rl[name]
        return (v >> f.offset) & ((1 << f.width) - 1)

    for b in beats:
        tag, layer, addr, d = field(b, "tag"), field(b, "layer"), field(b, "addr"), field(b, "data")
        if tag in (Tag.SPIKE, Tag.COUNT):
            buf = flat.setdefault(layer, np.full(words_of(shapes[layer], P) * P, -1, dtype=np.int64))
            lw = CB if tag == Tag.SPIKE else KB
            for l in range(P):
                buf[addr * P + l] = (d >> (l * lw)) & ((1 << lw) - 1)
        elif tag == Tag.LOGIT:
            for l in range(P):
                v = (d >> (l * A)) & ((1 << A) - 1)
                logits[addr * P + l] = v - (1 << A) if v >> (A - 1) else v
        elif tag == Tag.END:
            counters = {name: (d >> f.offset) & ((1 << f.width) - 1) for name, f in end_layout(cfg)}
    if counters is None:
        raise RuntimeError("no END beat in the result stream")
    for layer, buf in flat.items():
        shp = shapes[layer]
        res[f"spikes_L{layer}"] = buf[nat_index(shp, P)].reshape(shp)
    res["logits"] = logits[nat_index(shapes[out_i], P)].reshape(-1)
    res["pred"] = np.int64(counters["pred"])
    res["exit_step"] = np.int64(counters["exit_step"])
    return res, counters
