"""Layer-table layout, event-record layout, and the three address generators.

Every tensor lives in *natural layout*: word address = (y*W + x)*G + g with
G = ceil(C/P) channel groups, lane l = channel g*P + l ([N] is [N, 1, 1]).
A conv's output word (position, group of P channels) is exactly what P lanes
compute at once, so no layer ever reorders data; flatten is free because the
host permutes the following dense layer's weight rows into this order.

- `Writer` (event-list builder): consumes one word of P codes per cycle in
  natural order (input loader, firing unit or pooling unit), writes it to the
  code buffer and, when any lane is non-silent, appends an event record whose
  header holds everything the consuming layer's scatter needs: the weight row
  base and the first target potential word, plus (q, r) = divmod(y + pad,
  stride) for both axes. All of it is built with counters and adds while the
  words stream past, so the scatter needs no division and no multiplier.
- `Scatter` (address generator): walks the event records, each non-silent
  lane (priority encoder, silent lanes cost nothing), and for each event every
  valid output position reached by a kernel offset (ky = r, r+s, ... with
  oy = q, q-1, ...) and every output channel group: one (event, group) op per
  cycle, with the next record prefetched.
- `pool_walk`: reads the k x k input words of every pooled word.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data

from .config import LAYER_INDEX_BITS, Config, ubits
from .shiftadd import EXP_BITS


def widths(cfg: Config):
    """(XA, WA): widths of potential-word and weight-word address arithmetic."""
    return cfg.word_addr_bits + 2, cfg.waddr_bits + 1


def entry_layout(cfg: Config) -> data.StructLayout:
    XA, WA = widths(cfg)
    D, K, S, P = cfg.dim_bits, cfg.k_bits, cfg.s_bits, cfg.lanes
    return data.StructLayout({
        "kind": 1,           # 0 weighted (dense or conv), 1 maxpool
        "last": 1,           # output layer: emit logits, no firing
        "index": LAYER_INDEX_BITS,  # package layer index (result tag)
        # the tensor this layer consumes, as its producer walks it
        "in_g": XA, "in_x": D, "in_y": D,   # groups-1, width-1, height-1
        "dense": 1,          # consumer is dense: weight rows continue across words, no coordinates
        "wstep": WA,         # P * lane stride: weight-row step per input word (dense) or group (conv)
        "s": S, "rx0": S, "ry0": S, "qx0": D, "qy0": D,
        "px0": XA, "py0": XA, "wx0": WA, "wy0": WA,
        "kg": WA,            # k * Gout (weight step per ky)
        # scatter
        "k": K, "hout": D, "wout": D, "gout": XA, "wg": XA,  # wg = Wout * Gout
        "ls": WA, "sg": WA, "skg": WA, "wbase": WA, "E": signed(EXP_BITS),
        # fire / emit
        "out_words": XA, "bbase": ubits(cfg.max_bias_words), "last_mask": P,
        # maxpool
        "pk": K, "p_ox": D, "p_oy": D, "rstep": XA, "cstep": XA, "dystep": XA,
        # multistep: this layer's persistent potentials and spike counters
        "vbase": ubits(cfg.max_state_words), "cbase": ubits(cfg.max_count_words),
    })


def record_layout(cfg: Config) -> data.StructLayout:
    XA, WA = widths(cfg)
    return data.StructLayout({
        "codes": data.ArrayLayout(cfg.sym_bits, cfg.lanes),
        "wbase": WA, "pbase": XA,
        "qx": cfg.dim_bits, "qy": cfg.dim_bits, "rx": cfg.s_bits, "ry": cfg.s_bits,
    })


def lane_times(m: Module, l, ls, WA: int):
    """l * ls by shift-and-add over the log2(P) bits of the lane index."""
    acc = Const(0, WA)
    for b in range(len(l)):
        acc = acc + Mux(l[b], ls << b, 0)
    out = Signal(WA)
    m.d.comb += out.eq(acc)
    return out


def first_set(m: Module, mask, nbits: int, name: str):
    """Priority encoder: index of the lowest set bit (0 when none)."""
    idx = Signal(max(1, (nbits - 1).bit_length()), name=name)
    for i in reversed(range(nbits)):
        with m.If(mask[i]):
            m.d.comb += idx.eq(i)
    return idx


class Writer:
    """Event-list builder; see the module docstring. Drive `valid`/`codes`; the
    record and the buffer writes come out combinationally in the same cycle.
    `silent` is the lane value that is no event: T (ttfs codes, multistep
    binary spikes with T = 1) or 0 (multistep graded bytes)."""

    def __init__(self, m: Module, cfg: Config, silent, ent):
        XA, WA = widths(cfg)
        P, D, S = cfg.lanes, cfg.dim_bits, cfg.s_bits
        self.valid = Signal()
        self.codes = Signal(data.ArrayLayout(cfg.sym_bits, P))
        self.restart = Signal()  # load the counters for consumer entry `ent`
        self.addr = Signal(XA)   # word address of the current word
        self.count = Signal(XA)  # records written so far
        self.rec = Signal(record_layout(cfg))
        self.nonsilent = Signal()
        g, x, y = Signal(XA), Signal(D), Signal(D)
        wg = Signal(WA)
        rx, ry = Signal(S), Signal(S)
        qx, qy = Signal(D), Signal(D)
        px, py = Signal(XA), Signal(XA)
        wx, wy = Signal(WA), Signal(WA)
        ns = [self.codes[l] != silent for l in range(P)]
        m.d.comb += [
            self.nonsilent.eq(Cat(*ns).any()),
            self.rec.codes.eq(self.codes),
            self.rec.wbase.eq(wg + wx + wy),
            self.rec.pbase.eq(px + py),
            self.rec.qx.eq(qx), self.rec.qy.eq(qy), self.rec.rx.eq(rx), self.rec.ry.eq(ry),
        ]

        def x_reset():
            return [rx.eq(ent.rx0), qx.eq(ent.qx0), px.eq(ent.px0), wx.eq(ent.wx0)]

        with m.If(self.restart):
            m.d.sync += [g.eq(0), x.eq(0), y.eq(0), wg.eq(0), self.addr.eq(0), self.count.eq(0),
                         ry.eq(ent.ry0), qy.eq(ent.qy0), py.eq(ent.py0), wy.eq(ent.wy0)] + x_reset()
        with m.Elif(self.valid):
            m.d.sync += self.addr.eq(self.addr + 1)
            with m.If(self.nonsilent):
                m.d.sync += self.count.eq(self.count + 1)
            with m.If(g != ent.in_g):
                m.d.sync += [g.eq(g + 1), wg.eq(wg + ent.wstep)]
            with m.Else():
                m.d.sync += g.eq(0)
                m.d.sync += wg.eq(Mux(ent.dense, wg + ent.wstep, 0))
                with m.If(ent.dense):
                    pass
                with m.Elif(x != ent.in_x):
                    m.d.sync += x.eq(x + 1)
                    with m.If(rx + 1 == ent.s):
                        m.d.sync += [rx.eq(0), qx.eq(qx + 1), px.eq(px + ent.gout), wx.eq(0)]
                    with m.Else():
                        m.d.sync += [rx.eq(rx + 1), wx.eq(wx + ent.gout)]
                with m.Else():
                    m.d.sync += [x.eq(0)] + x_reset()
                    with m.If(y != ent.in_y):
                        m.d.sync += y.eq(y + 1)
                        with m.If(ry + 1 == ent.s):
                            m.d.sync += [ry.eq(0), qy.eq(qy + 1), py.eq(py + ent.wg), wy.eq(0)]
                        with m.Else():
                            m.d.sync += [ry.eq(ry + 1), wy.eq(wy + ent.kg)]


class Scatter:
    """Address generator of the scatter phase; see the module docstring.

    `silent` as for the Writer. Inputs: `start` (one cycle), `n_rec`, `rdata` (record read one cycle after
    `raddr`). Outputs per cycle: `op` (valid), `waddr`, `paddr`, `t`; `busy`
    until every op is issued; `events` pulses once per event started."""

    def __init__(self, m: Module, cfg: Config, silent, ent):
        XA, WA = widths(cfg)
        P, D, S = cfg.lanes, cfg.dim_bits, cfg.s_bits
        RB = cfg.word_addr_bits + 1
        self.start = Signal()
        self.n_rec = Signal(XA)
        self.rdata = Signal(record_layout(cfg))
        self.raddr = Signal(RB)
        self.op = Signal()
        self.waddr = Signal(WA)
        self.paddr = Signal(XA)
        self.t = Signal(cfg.sym_bits)
        self.busy = Signal()
        self.event = Signal()

        rec = Signal(record_layout(cfg))
        mask = Signal(P)
        ri = Signal(RB)
        changed = Signal()
        active = Signal()
        loading = Signal()
        ky, kx = Signal(ubits(cfg.max_kernel + cfg.max_stride)), Signal(ubits(cfg.max_kernel + cfg.max_stride))
        oy, ox = Signal(D), Signal(D)
        wrow_y, wpos = Signal(WA), Signal(WA)
        prow_y, ppos = Signal(XA), Signal(XA)
        go = Signal(XA)
        t = Signal(cfg.sym_bits)
        m.d.comb += [self.raddr.eq(ri + 1), self.busy.eq(active | loading), self.t.eq(t)]
        m.d.sync += changed.eq(0)

        def init(src, in_mask):
            """Start the event of the lowest set lane of in_mask in record src."""
            l = first_set(m, in_mask, P, "sc_lane")
            lo = lane_times(m, l, ent.ls, WA)
            wrow = Signal(WA)
            m.d.comb += wrow.eq(ent.wbase + src.wbase + lo)
            return [rec.eq(src), mask.eq(in_mask & ~(Const(1, P) << l)), t.eq(src.codes[l]),
                    ky.eq(src.ry), oy.eq(src.qy), kx.eq(src.rx), ox.eq(src.qx),
                    wrow_y.eq(wrow), wpos.eq(wrow), prow_y.eq(src.pbase), ppos.eq(src.pbase), go.eq(0),
                    active.eq(1)]

        rmask = Signal(P)
        m.d.comb += rmask.eq(Cat(*[self.rdata.codes[l] != silent for l in range(P)]))
        from_rec = init(rec, mask)
        from_rd = init(self.rdata, rmask)

        with m.If(self.start):
            m.d.sync += [ri.eq(-1), changed.eq(1), active.eq(0), loading.eq(self.n_rec != 0)]
        with m.Elif(loading):
            with m.If(~changed):
                m.d.sync += from_rd + [ri.eq(ri + 1), changed.eq(1), loading.eq(0)]
                m.d.comb += self.event.eq(1)
        with m.Elif(active):
            # a first offset r = (y + pad) mod s may already lie past the kernel (stride > kernel)
            valid_pos = (oy < ent.hout) & (ox < ent.wout) & (kx < ent.k) & (ky < ent.k)
            m.d.comb += [self.op.eq(valid_pos), self.waddr.eq(wpos + go), self.paddr.eq(ppos + go)]
            with m.If(valid_pos & (go + 1 != ent.gout)):
                m.d.sync += go.eq(go + 1)
            with m.Else():
                m.d.sync += go.eq(0)
                with m.If((kx + ent.s < ent.k) & (ox != 0) & (ky < ent.k)):
                    m.d.sync += [kx.eq(kx + ent.s), ox.eq(ox - 1), wpos.eq(wpos + ent.sg), ppos.eq(ppos - ent.gout)]
                with m.Elif((ky + ent.s < ent.k) & (oy != 0)):
                    m.d.sync += [ky.eq(ky + ent.s), oy.eq(oy - 1), wrow_y.eq(wrow_y + ent.skg),
                                 prow_y.eq(prow_y - ent.wg), wpos.eq(wrow_y + ent.skg), ppos.eq(prow_y - ent.wg),
                                 kx.eq(rec.rx), ox.eq(rec.qx)]
                with m.Elif(mask != 0):
                    m.d.sync += from_rec
                    m.d.comb += self.event.eq(1)
                with m.Elif(ri + 1 != self.n_rec):
                    with m.If(~changed):
                        m.d.sync += from_rd + [ri.eq(ri + 1), changed.eq(1)]
                        m.d.comb += self.event.eq(1)
                    with m.Else():
                        m.d.sync += [active.eq(0), loading.eq(1)]
                with m.Else():
                    m.d.sync += active.eq(0)


class PoolWalk:
    """Read addresses of a k x k / stride k min-pool, output words in natural order.
    `rd` is the read address; `first`/`last` mark the window the read belongs to."""

    def __init__(self, m: Module, cfg: Config, ent):
        XA = widths(cfg)[0]
        D, K = cfg.dim_bits, cfg.k_bits
        self.start = Signal()
        self.step = Signal()   # advance (read issued this cycle)
        self.busy = Signal()
        self.rd = Signal(XA)
        self.first = Signal()
        self.last = Signal()
        oy, ox, g = Signal(D), Signal(D), Signal(XA)
        dy, dx = Signal(K), Signal(K)
        ay, ax, ady, adx = Signal(XA), Signal(XA), Signal(XA), Signal(XA)
        m.d.comb += [self.rd.eq(ay + ax + ady + adx + g), self.first.eq((dy == 0) & (dx == 0)),
                     self.last.eq((dy + 1 == ent.pk) & (dx + 1 == ent.pk))]
        with m.If(self.start):
            m.d.sync += [oy.eq(0), ox.eq(0), g.eq(0), dy.eq(0), dx.eq(0), ay.eq(0), ax.eq(0), ady.eq(0), adx.eq(0),
                         self.busy.eq(1)]
        with m.Elif(self.step & self.busy):
            with m.If(dx + 1 != ent.pk):
                m.d.sync += [dx.eq(dx + 1), adx.eq(adx + ent.in_g + 1)]
            with m.Else():
                m.d.sync += [dx.eq(0), adx.eq(0)]
                with m.If(dy + 1 != ent.pk):
                    m.d.sync += [dy.eq(dy + 1), ady.eq(ady + ent.dystep)]
                with m.Else():
                    m.d.sync += [dy.eq(0), ady.eq(0)]
                    with m.If(g != ent.in_g):
                        m.d.sync += g.eq(g + 1)
                    with m.Else():
                        m.d.sync += g.eq(0)
                        with m.If(ox != ent.p_ox):
                            m.d.sync += [ox.eq(ox + 1), ax.eq(ax + ent.cstep)]
                        with m.Else():
                            m.d.sync += [ox.eq(0), ax.eq(0)]
                            with m.If(oy != ent.p_oy):
                                m.d.sync += [oy.eq(oy + 1), ay.eq(ay + ent.rstep)]
                            with m.Else():
                                m.d.sync += self.busy.eq(0)
