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
  base, the first target potential word, the non-silent lane mask, and the
  first kernel offset / output position on both axes (q, r) = divmod(x + pad,
  stride), *clamped to the last output*: past it, r keeps counting and q
  stays, so every position the scatter walks is inside the output and border
  events cost no idle cycle. All of it is built with counters and adds while
  the words stream past, so the scatter needs no division and no multiplier.
- `Scatter` (address generator), pipelined so each stage holds one short
  carry chain: a record reader (prefetch FIFO), a lane walker (one non-silent
  lane per cycle, lowest first: silent lanes cost nothing), a weight-row
  stage (row = layer base + record base + lane * lane stride, by shifts and
  adds), an event FIFO, and the issuer: for each event every output position
  reached by a kernel offset (ky = r, r+s, ... with oy = q, q-1, ...) and
  every output channel group, one (event, group) op per cycle from registers.
- `PoolWalk`: reads the k x k input words of every pooled word (pipelined).
"""
import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import Config, off_bits, ubits, widths
from .protocol import entry_layout

# the lane walker's event reaches the event FIFO WALK_STAGES cycles after it is emitted; the FIFO is one
# deeper than its room test needs (see Scatter), so its inner LUT RAM is a power of two deep
WALK_STAGES = 4
EVENT_FIFO_DEPTH = 9
RECORD_FIFO_DEPTH = 4


def record_layout(cfg: Config) -> data.StructLayout:
    XA, WA = widths(cfg)
    R = off_bits(cfg)
    return data.StructLayout({
        "codes": data.ArrayLayout(cfg.sym_bits, cfg.lanes),
        "mask": cfg.lanes,   # non-silent lanes
        "nlanes": ubits(cfg.lanes),  # how many (the lane walker counts down instead of testing its mask)
        "wbase": WA, "pbase": XA,
        "qx": cfg.dim_bits, "qy": cfg.dim_bits, "rx": R, "ry": R,
    })


def event_layout(cfg: Config) -> data.StructLayout:
    """One event ready to issue: the code and the start of its kernel walk."""
    XA, WA = widths(cfg)
    R = off_bits(cfg)
    return data.StructLayout({"t": cfg.sym_bits, "wrow": WA, "pbase": XA,
                              "qx": cfg.dim_bits, "qy": cfg.dim_bits, "rx": R, "ry": R,
                              # precomputed walk decisions (see Scatter): kx / ky steps left at the
                              # first offset, and first offsets inside the kernel
                              "kx_more": 1, "ky_more": 1, "rx_in": 1, "ry_in": 1})


def ram_q(m: Module, rdata, name: str):
    """The register right after a block-RAM read port: no reset, no enable, and the port's only load, so
    the ECP5 flow moves it into the RAM as its output register (synth/outreg.py; a DP16KD read without it
    costs several times the clock-to-out of one with it). Same timing as `reg`."""
    r = Signal(rdata.shape(), name=name, reset_less=True)
    m.d.sync += r.eq(rdata)
    return r


def reg(m: Module, sig, name: str, when=None):
    """sig (a Value or a View), one clock later (loaded only while `when`, if given)."""
    r = Signal(sig.shape(), name=name)
    if when is None:
        m.d.sync += r.eq(sig)
    else:
        with m.If(when):
            m.d.sync += r.eq(sig)
    return r


def up_down(m: Module, count, up, down):
    """count + up - down (1-bit up and down), the two late bits choosing among count + 1 and count - 1, which
    come from the count's own flip-flops: no carry chain runs after them (an adder of both was a long path)."""
    with m.If(up & ~down):
        m.d.sync += count.eq(count + 1)
    with m.Elif(down & ~up):
        m.d.sync += count.eq(count - 1)


def copies(m: Module, sig, name: str, n: int, clear=None) -> list:
    """n registers each holding sig one clock later (0 while `clear`, if given), for n groups of loads: a
    flip-flop that fans out to every lane's bits is a long net on a full FPGA. Named `<name>_dup<k>` and
    marked keep: the synthesis flow (synth/flow.py) keeps them apart, where Yosys would merge equal
    registers into one again."""
    regs = [Signal(sig.shape(), name=f"{name}_dup{k}", attrs={"keep": 1}) for k in range(n)]
    for r in regs:
        m.d.sync += r.eq(sig)
        if clear is not None:
            with m.If(clear):
                m.d.sync += r.eq(0)
    return regs


class RegisterSlice(wiring.Component):
    """A stream register stage of two entries: `o` is driven from registers and `i.ready` is a register,
    so the consumer's ready reaches only this stage's enables, never the producer's logic. Full rate;
    a beat comes out a cycle after it went in."""

    def __init__(self, layout):
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        held, held_valid = Signal.like(i.payload, name="held"), Signal()   # a beat taken while o stalled
        m.d.comb += i.ready.eq(~held_valid)
        take_in = i.valid & ~held_valid
        with m.If(~o.valid | o.ready):   # o's register is free this cycle: the held beat, else the input
            m.d.sync += [o.payload.eq(Mux(held_valid, Value.cast(held), Value.cast(i.payload))),
                         o.valid.eq(held_valid | take_in),
                         held_valid.eq(0)]
        with m.Elif(take_in):            # o stalls: keep the input beat aside
            m.d.sync += [held.eq(i.payload), held_valid.eq(1)]
        return m


def check_fifo_depth(depth: int):
    """A ring FIFO's depth: a power of two (its pointers wrap by overflowing), at least 2."""
    if depth < 2 or depth & (depth - 1):
        raise ValueError(f"depth = {depth}: must be a power of two >= 2")


class RingFifo(wiring.Component):
    """A FIFO in LUT RAM read asynchronously, for a writer whose credit keeps it from overflowing: `w_en`
    writes without a room test (the writer must not write while `level == depth`), `r.valid` is a flip-flop
    and `level` the entries held. Written in one cycle, readable in the next.

    Amaranth's SyncFIFO gates both ports with compares of its level, in front of the level's own update;
    where the writer keeps a credit of its own the write side's compare only lengthens that path (the burst
    address FIFO of hw/fetch.py BurstReader, a late path of the external-weight build)."""

    def __init__(self, width: int, depth: int):
        check_fifo_depth(depth)
        self.width, self.depth = width, depth
        super().__init__({"w_en": In(1), "w_data": In(width), "r": Out(stream.Signature(width)),
                          "level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        m.submodules.storage = storage = Memory(shape=self.width, depth=D, init=[])
        wp, rp = Signal(range(D)), Signal(range(D))
        wr, rd = storage.write_port(), storage.read_port(domain="comb")
        take = self.r.valid & self.r.ready
        level = self.level
        m.d.comb += [wr.addr.eq(wp), wr.data.eq(self.w_data), wr.en.eq(self.w_en),
                     rd.addr.eq(rp), self.r.payload.eq(rd.data)]
        with m.If(self.w_en):
            m.d.sync += wp.eq(wp + 1)
        with m.If(take):
            m.d.sync += rp.eq(rp + 1)
        up_down(m, level, self.w_en, take)
        # not empty next cycle: a write, or more than one entry, or one that is not taken now; from flip-flops
        m.d.sync += self.r.valid.eq(self.w_en | (level > 1) | ((level == 1) & ~take))
        return m


class Writer(wiring.Component):
    """Event-list builder; see the module docstring. Drive `valid`, `codes` and
    `ns`, the lanes that are events (code != the silent value: T for ttfs codes
    and multistep binary spikes with T = 1, 0 for multistep graded bytes;
    computed by the producer a stage early, so no compare precedes the count);
    the record and the buffer writes come out combinationally in the same cycle."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        XA, P = widths(cfg)[0], cfg.lanes
        super().__init__({
            "ent": In(entry_layout(cfg)),          # the consumer's layer-table entry
            "valid": In(1), "codes": In(data.ArrayLayout(cfg.sym_bits, P)), "ns": In(P),
            "restart": In(1),                      # load the counters for the consumer entry `ent`
            "addr": Out(XA),                       # word address of the current word
            "count": Out(XA),                      # records written so far
            "rec": Out(record_layout(cfg)), "nonsilent": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, ent = self.conf, self.ent
        XA, WA = widths(cfg)
        D, R = cfg.dim_bits, off_bits(cfg)
        g, x, y = Signal(XA), Signal(D), Signal(D)
        wg = Signal(WA)
        rx, ry = Signal(R), Signal(R)
        qx, qy = Signal(D), Signal(D)
        px, py = Signal(XA), Signal(XA)
        wx, wy = Signal(WA), Signal(WA)
        ns = self.ns
        m.d.comb += [
            self.nonsilent.eq(ns.any()),
            self.rec.codes.eq(self.codes),
            self.rec.mask.eq(ns),   # nlanes is counted on the way to emem (hw/top.py)
            self.rec.wbase.eq(wg + wx + wy),
            self.rec.pbase.eq(px + py),
            self.rec.qx.eq(qx), self.rec.qy.eq(qy), self.rec.rx.eq(rx), self.rec.ry.eq(ry),
        ]

        # the counters' end / wrap tests are flags registered with the counters (each recomputed for the
        # value loaded), so the load enables depend on flip-flops only, not on compare chains. g_end: g == in_g; x_end, y_end likewise; rx_wraps: rx + 1 == s;
        # qx_more: qx + 1 != wout; ry_wraps, qy_more likewise with hout.
        g_end, x_end, y_end = Signal(), Signal(), Signal()
        # in_x - 1, in_y - 1, registers: the entry is loaded a cycle before the restart and two before any word
        in_x_minus1, in_y_minus1 = reg(m, ent.in_x - 1, "w_in_x_minus1"), reg(m, ent.in_y - 1, "w_in_y_minus1")
        # x_end_next: x == in_x_minus1, what x_end becomes when x advances, a flag kept with x (so y_advances loads from a
        # flip-flop, not from the compare); x + 1 == in_x_minus1 is x == in_x - 2
        x_end_next, in_x_minus2, in_x_is1 = Signal(), reg(m, ent.in_x - 2, "w_in_x_minus2"), reg(m, ent.in_x == 1, "w_in_x_is1")
        # g_end_next: g == in_g - 1 (g_end once g advances) likewise, kept with g: no 10-bit compare (3 LUT levels
        # and a cross-die route) in front of y_advances
        g_end_next, in_g_minus2, in_g_is1 = Signal(), reg(m, ent.in_g - 2, "w_in_g_minus2"), reg(m, ent.in_g == 1, "w_in_g_is1")
        rx_wraps, qx_more, ry_wraps, qy_more = Signal(), Signal(), Signal(), Signal()
        # x_advances = g_end & ~dense (the next word ends its position's groups: x advances), y_advances = x_advances & x_end (and
        # ends the row: y advances), registered with g_end / x_end, so the x and y registers' load enables
        # are two inputs from flip-flops (the chain valid, g_end, dense, x_end, y_end before them was late)
        x_advances, y_advances = Signal(), Signal()
        nd = ~ent.dense

        def advance(c, c_end, c_last_m1, r, r_wraps, q, q_more, size, p, pstep, w, wstep):
            """One step along an axis: the position counter, the first kernel offset r and output q with
            their address terms; past the last output (size) q stays and r counts on (the kernel offset of
            that column)."""
            m.d.sync += [c.eq(c + 1), c_end.eq(c == c_last_m1)]
            with m.If(r_wraps & q_more):
                m.d.sync += [r.eq(0), r_wraps.eq(ent.s1), q.eq(q + 1), q_more.eq(q + 2 != size), p.eq(p + pstep), w.eq(0)]
            with m.Else():
                m.d.sync += [r.eq(r + 1), r_wraps.eq(r + 2 == ent.s), w.eq(w + wstep)]

        def x_reset():
            return [rx.eq(ent.rx0), qx.eq(ent.qx0), px.eq(ent.px0), wx.eq(ent.wx0),
                    rx_wraps.eq(ent.rx0_wraps), qx_more.eq(ent.qx0_more)]

        with m.If(self.restart):
            m.d.sync += [g.eq(0), x.eq(0), y.eq(0), wg.eq(0), self.addr.eq(0), self.count.eq(0),
                         g_end.eq(ent.g0_end), x_end.eq(ent.x0_end), y_end.eq(ent.y0_end),
                         x_advances.eq(ent.g0_end & nd), y_advances.eq(ent.g0_end & nd & ent.x0_end), x_end_next.eq(ent.in_x == 1),
                         g_end_next.eq(ent.in_g == 1),
                         ry.eq(ent.ry0), qy.eq(ent.qy0), py.eq(ent.py0), wy.eq(ent.wy0),
                         ry_wraps.eq(ent.ry0_wraps), qy_more.eq(ent.qy0_more)] + x_reset()
        with m.Elif(self.valid):
            m.d.sync += self.addr.eq(self.addr + 1)
            with m.If(self.nonsilent):
                m.d.sync += self.count.eq(self.count + 1)
            with m.If(~g_end):
                m.d.sync += [g.eq(g + 1), g_end.eq(g_end_next), wg.eq(wg + ent.wstep), g_end_next.eq(g == in_g_minus2),
                             x_advances.eq(g_end_next & nd), y_advances.eq(g_end_next & nd & x_end)]
            with m.Else():
                m.d.sync += [g.eq(0), g_end.eq(ent.g0_end), x_advances.eq(ent.g0_end & nd), g_end_next.eq(in_g_is1),
                             y_advances.eq(ent.g0_end & nd & Mux(x_end, ent.x0_end, x_end_next))]
                m.d.sync += wg.eq(Mux(ent.dense, wg + ent.wstep, 0))
            with m.If(x_advances):
                with m.If(~x_end):
                    advance(x, x_end, in_x_minus1, rx, rx_wraps, qx, qx_more, ent.wout, px, ent.gout, wx, ent.gout)
                    m.d.sync += x_end_next.eq(x == in_x_minus2)
                with m.Else():
                    m.d.sync += [x.eq(0), x_end.eq(ent.x0_end), x_end_next.eq(in_x_is1)] + x_reset()
            with m.If(y_advances & ~y_end):
                advance(y, y_end, in_y_minus1, ry, ry_wraps, qy, qy_more, ent.hout, py, ent.wg, wy, ent.kg)

        return m


def tree_sum(terms):
    """Sum of values, as a balanced adder tree."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def popcount(bits):
    """Number of set bits, as a balanced adder tree."""
    return tree_sum(bits[i] for i in range(len(bits)))


def lowest_lane(m: Module, mask, P: int, name: str):
    """One-hot lowest set bit of mask: a carry chain."""
    low = Signal(P, name=f"{name}_low")
    m.d.comb += low.eq(mask & (~mask + 1))
    return low


def one_hot_index(low, P: int):
    """Index of the set bit of a one-hot P-bit value: an OR per index bit."""
    nb = max(1, (P - 1).bit_length())
    return Cat(*[Cat(*[low[i] for i in range(P) if i >> b & 1]).any() for b in range(nb)])


class Scatter(wiring.Component):
    """Address generator of the scatter phase; see the module docstring.

    Inputs: `start` (one cycle, while idle), `n_rec`, `rdata` (record read one cycle after `raddr`, `ren`).
    Outputs, all from registers: `op` (valid), `waddr`, `paddr`, `t`; `busy` until every op is
    issued; `event` pulses once per event started."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        XA, WA = widths(cfg)
        super().__init__({
            "ent": In(entry_layout(cfg)),          # the layer being scattered
            "start": In(1), "n_rec": In(XA), "rdata": In(record_layout(cfg)),
            "raddr": Out(cfg.word_addr_bits + 1), "op": Out(1), "waddr": Out(WA), "paddr": Out(XA),
            "t": Out(cfg.sym_bits), "busy": Out(1), "event": Out(1),
            # external weights: an event starts only while the prefetch has room for it (hw/fetch.py)
            **({"room": In(1)} if cfg.external else {}),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, ent = self.conf, self.ent
        XA, WA = widths(cfg)
        P, D = cfg.lanes, cfg.dim_bits
        RB = cfg.word_addr_bits + 1
        rec_l, ev_l = record_layout(cfg), event_layout(cfg)

        # ---- record reader: keeps the record FIFO full (reads in flight counted)
        # two FIFOs in lockstep: the walker's mask and lane count in a narrow one (its read pointer fans out
        # to a few cells, placed together), the whole record in a wide one read only into a register
        # (buffered: the head's mask and count come from a register, not through a LUT-RAM read whose
        # address is the read pointer: that read before the lowest-lane chain would be a long path.
        # It shows a record a cycle after the wide FIFO does, so the wide FIFO's head is the same record.)
        m.submodules.sc_rfifo = rfifo = SyncFIFOBuffered(width=P + ubits(P) + 1, depth=RECORD_FIFO_DEPTH)
        m.submodules.sc_dfifo = dfifo = SyncFIFO(width=rec_l.size, depth=RECORD_FIFO_DEPTH)
        # the record is registered between the event memory's read port and the FIFOs' LUT RAM (the BRAM's
        # clock-to-out and the LUT RAM write were the worst P1 / P4 path): two reads in flight
        ri = Signal(RB)
        rpend, rpend2 = Signal(), Signal()
        rd_go = Signal()
        r_more = Signal()   # ri != n_rec, registered with ri (n_rec is set two states before a start)
        live = Signal()  # from start until every op is issued (n_rec changes between layers)
        # occ = rfifo.level + rpend + rpend2 (records held or in flight), kept as a counter of its own so the
        # read decision is a 2-bit compare of a register (the three-term sum before it was a late path);
        # everything is drained when a scatter starts, so occ is 0 then
        occ = Signal(range(RECORD_FIFO_DEPTH + 1))
        m.d.comb += [self.raddr.eq(ri),
                     rd_go.eq(live & r_more & (occ < RECORD_FIFO_DEPTH - 1))]
        m.d.sync += [rpend.eq(rd_go & ~self.start), rpend2.eq(rpend & ~self.start),
                     occ.eq(occ + (rd_go & ~self.start) - (rfifo.r_en & rfifo.r_rdy))]
        rdata2 = ram_q(m, self.rdata, "sc_rdata2")
        n_m1 = reg(m, self.n_rec - 1, "sc_n_m1")   # ri + 1 != n_rec as ri != n_rec - 1 (no add before the compare)
        with m.If(self.start):
            m.d.sync += [ri.eq(0), r_more.eq(self.n_rec != 0)]
        with m.Elif(rd_go):
            m.d.sync += [ri.eq(ri + 1), r_more.eq(ri != n_m1)]
        # the narrow FIFO holds nlanes - 1 (a record has at least one lane), so the walker's last-lane test
        # is an equality with ntaken, no +1 carry chain before the FIFO's read enable
        m.d.comb += [rfifo.w_en.eq(rpend2),
                     rfifo.w_data.eq(Cat(rdata2.mask, (rdata2.nlanes - 1)[:ubits(P)], rdata2.nlanes == 1)),
                     dfifo.w_en.eq(rpend2), dfifo.w_data.eq(rdata2), dfifo.r_en.eq(rfifo.r_en)]

        # the event FIFO, buffered: the issuer's event comes from a register, and its read enable reaches the
        # FIFO's level and output register, not a LUT-RAM read (the level update behind that enable would be a
        # long path)
        m.submodules.sc_efifo = efifo = SyncFIFOBuffered(width=ev_l.size, depth=EVENT_FIFO_DEPTH)

        # ---- lane walker: one non-silent lane of the record at the FIFO head per cycle. The head's mask and
        # lane count are read in place from the narrow FIFO (a copy register's load enable fanned out to the
        # whole record: a routing-bound path); `taken` marks the lanes already emitted, `ntaken` counts
        # them against nlanes - 1.
        head = data.View(rec_l, dfifo.r_data)
        h_mask, h_last, h_single = rfifo.r_data[:P], rfifo.r_data[P:-1], rfifo.r_data[-1]   # h_last = nlanes - 1
        taken = Signal(P)
        ntaken = Signal(ubits(P))
        low = lowest_lane(m, h_mask & ~taken, P, "sc")
        # WALK_STAGES events may be between the walker and the FIFO, one is emitted now, and the level is a
        # cycle old (registered test: the FIFO's level logic stays out of the walker's read enable)
        room = reg(m, efifo.level < EVENT_FIFO_DEPTH - WALK_STAGES - 1, "sc_room")
        emit = Signal()
        m.d.comb += emit.eq(rfifo.r_rdy & room)
        # the head's last lane: for a fresh head (`fresh`: none taken) the FIFO's single-lane bit, else a flag
        # registered at the previous lane (ntaken + 1 == h_last), so the FIFO's read enable, which loads its
        # output register, is two gates from flip-flops (the compare in front of it was a late path)
        fresh, last_n = Signal(init=1), Signal()
        is_last = Mux(fresh, h_single, last_n)
        with m.If(emit):
            with m.If(is_last):
                m.d.comb += rfifo.r_en.eq(1)
                m.d.sync += [taken.eq(0), ntaken.eq(0), fresh.eq(1)]
            with m.Else():
                m.d.sync += [taken.eq(taken | low), ntaken.eq(ntaken + 1), fresh.eq(0), last_n.eq(ntaken + 1 == h_last)]

        # ---- lane: the walker registers the one-hot lane (its carry chain and the index ORs in one cycle
        # would be a long path); the next stage makes its index and selects its code
        v0, r0, low0 = reg(m, emit, "sc_v0"), reg(m, head, "sc_r0"), reg(m, low, "sc_low0")
        t0 = Signal(cfg.sym_bits)   # the lane's code: an AND-OR with the one-hot lane, no index in front
        m.d.comb += t0.eq(reduce(operator.or_, [r0.codes[l] & low0[l].replicate(cfg.sym_bits) for l in range(P)]))
        # ---- weight row: wbase + rec.wbase + lane * ls, lane * ls by shifts and adds in two halves
        v1, r1, l1, t1 = reg(m, v0, "sc_v1"), reg(m, r0, "sc_r1"), reg(m, one_hot_index(low0, P), "sc_l1"), reg(m, t0, "sc_t1")
        nb = len(l1)
        halves = [list(range(0, (nb + 1) // 2)), list(range((nb + 1) // 2, nb))]
        parts = []
        for hb in halves:
            acc = Const(0, WA)
            for b in hb:
                acc = acc + Mux(l1[b], ent.ls << b, 0)
            parts.append(acc)
        ev1 = Signal(ev_l)
        m.d.comb += [ev1.t.eq(t1),
                     ev1.pbase.eq(r1.pbase), ev1.qx.eq(r1.qx), ev1.qy.eq(r1.qy),
                     ev1.rx.eq(r1.rx), ev1.ry.eq(r1.ry), ev1.wrow.eq(ent.wbase + r1.wbase),
                     ev1.kx_more.eq((r1.rx + ent.s < ent.k) & (r1.qx != 0)),
                     ev1.ky_more.eq((r1.ry + ent.s < ent.k) & (r1.qy != 0)),
                     ev1.rx_in.eq(r1.rx < ent.k), ev1.ry_in.eq(r1.ry < ent.k)]
        lo_a, lo_b = Signal(WA), Signal(WA)
        m.d.comb += [lo_a.eq(parts[0]), lo_b.eq(parts[1])]
        v2, ev2, a2, b2 = reg(m, v1, "sc_v2"), reg(m, ev1, "sc_ev2"), reg(m, lo_a, "sc_a2"), reg(m, lo_b, "sc_b2")
        ev2b = Signal(ev_l)
        m.d.comb += [ev2b.eq(ev2), ev2b.wrow.eq(ev2.wrow + a2)]
        v3, ev3, b3 = reg(m, v2, "sc_v3"), reg(m, ev2b, "sc_ev3"), reg(m, b2, "sc_b3")
        ev3b = Signal(ev_l)
        m.d.comb += [ev3b.eq(ev3), ev3b.wrow.eq(ev3.wrow + b3)]
        m.d.comb += [efifo.w_en.eq(v3), efifo.w_data.eq(ev3b)]

        # ---- issuer: one op per cycle from registers. Its decisions are registered flags, each
        # recomputed for the next state in parallel with the address adds (no compare chain in front
        # of the muxes): kxa = another kx step fits (kx + s < k, ox > 0, ky < k), kya = another ky
        # step fits, inside = (kx, ky) lies in the kernel, glast = last output group of the position.
        ev = data.View(ev_l, efifo.r_data)
        active = Signal()
        ky, kx = Signal(off_bits(cfg)), Signal(off_bits(cfg))
        oy, ox = Signal(D), Signal(D)
        rx0, qx0 = Signal(off_bits(cfg)), Signal(D)
        row_kxa, row_in = Signal(), Signal()   # kxa and inside at the start of each kernel row
        kxa, kya, inside, glast = Signal(), Signal(), Signal(), Signal()
        wrow_y, wpos = Signal(WA), Signal(WA)
        prow_y, ppos = Signal(XA), Signal(XA)
        grem, gm1 = Signal(XA), Signal(XA)
        gm1_zero = Signal()
        m.d.sync += [gm1.eq(ent.gout - 1), gm1_zero.eq(ent.gout == 1)]
        # which step the issuer takes next cycle, one-hot (or none): registered, recomputed in each branch from
        # that branch's next inside / glast / kxa / kya, so the walk registers' load enables and the event
        # FIFO's read enable (none of the three: it loads the FIFO's ~60-bit output register) come from
        # flip-flops, not from the priority chain of those flags
        sg, sx, sy = Signal(), Signal(), Signal()   # group step, kx step, ky step

        def next_steps(inside_n, glast_n, kxa_n, kya_n):
            g = inside_n & ~glast_n
            return [sg.eq(g), sx.eq(~g & kxa_n), sy.eq(~g & ~kxa_n & kya_n)]

        t = Signal(cfg.sym_bits)
        # an event whose first offset lies past the kernel (stride > kernel) reaches no output
        m.d.comb += [self.op.eq(active & inside), self.t.eq(t)]

        def load():
            m.d.comb += [efifo.r_en.eq(1), self.event.eq(1)]
            m.d.sync += next_steps(ev.rx_in & ev.ry_in, gm1_zero, ev.kx_more & ev.ry_in, ev.ky_more)
            m.d.sync += [active.eq(1), t.eq(ev.t), kx.eq(ev.rx), ox.eq(ev.qx), ky.eq(ev.ry), oy.eq(ev.qy),
                         rx0.eq(ev.rx), qx0.eq(ev.qx), ox1.eq(ev.qx == 1), oy1.eq(ev.qy == 1), qx0_1.eq(ev.qx == 1),
                         wrow_y.eq(ev.wrow), wpos.eq(ev.wrow), self.waddr.eq(ev.wrow),
                         prow_y.eq(ev.pbase), ppos.eq(ev.pbase), self.paddr.eq(ev.pbase), grem.eq(gm1), grem_1.eq(gm1_one),
                         glast.eq(gm1_zero), row_kxa.eq(ev.kx_more), row_in.eq(ev.rx_in),
                         kxa.eq(ev.kx_more & ev.ry_in), kya.eq(ev.ky_more), inside.eq(ev.rx_in & ev.ry_in)]

        # kxa after a kx step, kya after a ky step: kx + 2s < k as kx < k - 2s (a per-layer register), and
        # ox != 1 / oy != 1 as flags registered with ox / oy (the add and compares before the step flags'
        # mux were 5 LUT levels)
        kxa_n, kya_n = Signal(), Signal()
        k_m2s = reg(m, ent.k - (ent.s << 1), "sc_k_m2s")
        ox1, oy1, qx0_1 = Signal(), Signal(), Signal()   # ox == 1, oy == 1, qx0 == 1
        m.d.comb += [kxa_n.eq((kx < k_m2s) & ~ox1), kya_n.eq((ky < k_m2s) & ~oy1)]
        # grem == 1 as a flag registered with grem (gm1_one: gout == 2, per layer), so no compare precedes the
        # step flags' mux
        grem_1, gm1_one = Signal(), reg(m, ent.gout == 2, "sc_gm1_one")
        # external weights: the prefetch's room through a register of this block's (it is placed far away)
        xroom = reg(m, self.room, "sc_xroom") if cfg.external else 1
        with m.If(sg):
            m.d.sync += [grem.eq(grem - 1), glast.eq(grem_1), grem_1.eq(grem == 2),
                         self.waddr.eq(self.waddr + 1), self.paddr.eq(self.paddr + 1)]
            m.d.sync += next_steps(1, grem_1, kxa, kya)
        with m.Elif(sx):
            m.d.sync += [grem.eq(gm1), grem_1.eq(gm1_one), glast.eq(gm1_zero), kx.eq(kx + ent.s), ox.eq(ox - 1),
                         wpos.eq(wpos + ent.sg), ppos.eq(ppos - ent.gout),
                         self.waddr.eq(wpos + ent.sg), self.paddr.eq(ppos - ent.gout),
                         kxa.eq(kxa_n), inside.eq(1), ox1.eq(ox == 2)]
            m.d.sync += next_steps(1, gm1_zero, kxa_n, kya)
        with m.Elif(sy):
            m.d.sync += [grem.eq(gm1), grem_1.eq(gm1_one), glast.eq(gm1_zero), ky.eq(ky + ent.s), oy.eq(oy - 1),
                         kx.eq(rx0), ox.eq(qx0),
                         oy1.eq(oy == 2), ox1.eq(qx0_1),
                         wrow_y.eq(wrow_y + ent.skg), prow_y.eq(prow_y - ent.wg),
                         wpos.eq(wrow_y + ent.skg), ppos.eq(prow_y - ent.wg),
                         self.waddr.eq(wrow_y + ent.skg), self.paddr.eq(prow_y - ent.wg),
                         kxa.eq(row_kxa), kya.eq(kya_n), inside.eq(row_in)]
            m.d.sync += next_steps(row_in, gm1_zero, row_kxa, kya_n)
        with m.Elif(efifo.r_rdy & xroom):
            load()
        with m.Else():
            m.d.sync += [active.eq(0), sg.eq(0), sx.eq(0), sy.eq(0)]

        # buffered FIFOs count an entry on its way to the output register in level, not yet in r_rdy
        work = active | (efifo.level != 0) | v0 | v1 | v2 | v3 | (rfifo.level != 0) | rpend | rpend2 | r_more
        m.d.comb += self.busy.eq(live & work)
        with m.If(self.start):
            m.d.sync += live.eq(1)
        with m.Elif(~work):
            m.d.sync += live.eq(0)
        return m


class PoolWalk(wiring.Component):
    """Read addresses of a k x k / stride k min-pool, output words in natural order.
    The counters advance on `step`; the address sum is pipelined, so `rd` (with
    `valid`, and `first` / `last` marking the window the read belongs to) comes
    out two cycles after the step that made it."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        XA = widths(cfg)[0]
        super().__init__({
            "ent": In(entry_layout(cfg)),          # the pooling layer
            "start": In(1),
            "step": In(1),                         # advance (read issued this cycle)
            "busy": Out(1),                        # counters not yet past the last window
            "rd": Out(XA), "valid": Out(1), "first": Out(1), "last": Out(1),
            "inflight": Out(1),                    # addresses still in the sum pipeline
        })

    def elaborate(self, platform):
        m = Module()
        cfg, ent = self.conf, self.ent
        XA = widths(cfg)[0]
        D, K = cfg.dim_bits, cfg.k_bits
        oy, ox, g = Signal(D), Signal(D), Signal(XA)
        dy, dx = Signal(K), Signal(K)
        ay, ax, ady, adx = Signal(XA), Signal(XA), Signal(XA), Signal(XA)
        go = self.step & self.busy
        gstep = reg(m, ent.in_g + 1, "pw_gstep")  # groups per position: the dx step, constant over a layer
        s1a, s1b = Signal(XA), Signal(XA)
        m.d.comb += [s1a.eq(ay + ax), s1b.eq(ady + adx)]
        v1, a1, b1, g1 = reg(m, go, "pw_v1"), reg(m, s1a, "pw_a1"), reg(m, s1b, "pw_b1"), reg(m, g, "pw_g1")
        # end tests as flags registered with their counters (recomputed for the value loaded), so the load
        # enables below depend on flip-flops only: dx_e = dx + 1 == pk, dy_e likewise, g_e = g == in_g,
        # ox_e = ox == p_ox, oy_e = oy == p_oy (in_g, p_ox, p_oy: the last index)
        dx_e, dy_e, g_e, ox_e, oy_e = Signal(), Signal(), Signal(), Signal(), Signal()
        f1, l1 = reg(m, (dy == 0) & (dx == 0), "pw_f1"), reg(m, dy_e & dx_e, "pw_l1")
        c1 = Signal(XA)
        m.d.comb += c1.eq(a1 + b1)
        v2, c2, g2, f2, l2 = reg(m, v1, "pw_v2"), reg(m, c1, "pw_c2"), reg(m, g1, "pw_g2"), reg(m, f1, "pw_f2"), reg(m, l1, "pw_l2")
        m.d.comb += [self.rd.eq(c2 + g2), self.valid.eq(v2), self.first.eq(f2), self.last.eq(l2),
                     self.inflight.eq(v1 | v2)]
        # per-layer registers (the layer entry is loaded two states before a start): each counter's last
        # value less two (for its one-short flag), and whether a layer's last value is 0 or 1
        pk1, pk2 = reg(m, ent.pk == 1, "pw_pk1"), reg(m, ent.pk == 2, "pw_pk2")
        g0_end, g1_end = reg(m, ent.g0_end, "pw_g0_end"), reg(m, ent.in_g == 1, "pw_g1_end")
        ox0_end, ox1_end = reg(m, ent.p_ox == 0, "pw_ox0_end"), reg(m, ent.p_ox == 1, "pw_ox1_end")
        oy0_end, oy1_end = reg(m, ent.p_oy == 0, "pw_oy0_end"), reg(m, ent.p_oy == 1, "pw_oy1_end")
        pk_m3, in_g_m2 = reg(m, ent.pk - 3, "pw_pk_m3"), reg(m, ent.in_g - 2, "pw_in_g_m2")
        p_ox_m2, p_oy_m2 = reg(m, ent.p_ox - 2, "pw_p_ox_m2"), reg(m, ent.p_oy - 2, "pw_p_oy_m2")
        # c_ne: counter c is one short of its last value, a flag kept with the counter (what c_e becomes
        # when c advances), so the compares feed only these flags and no compare precedes an end flag
        dx_ne, dy_ne, g_ne, ox_ne, oy_ne = Signal(), Signal(), Signal(), Signal(), Signal()
        # Each counter's carry-in is a flag registered with the counters: into dy `dx_e`, into g `into_g`
        # (dx and dy at their ends), into ox `into_ox` (and g), into oy `into_oy` (and ox); `at_end`: the
        # last window's last read. Every counter's enable is then start | go & one flag, a LUT or two,
        # where nested end tests chained a LUT per counter level into the enables of the outer counters.
        into_g, into_ox, into_oy, at_end = Signal(), Signal(), Signal(), Signal()
        # the end flags after a step: a counter with its carry-in set wraps at its end, else advances
        nx_e = Mux(dx_e, pk1, dx_ne)
        ny_e = Mux(dx_e, Mux(dy_e, pk1, dy_ne), dy_e)
        ng_e = Mux(into_g, Mux(g_e, g0_end, g_ne), g_e)
        nox_e = Mux(into_ox, Mux(ox_e, ox0_end, ox_ne), ox_e)
        noy_e = Mux(into_oy, oy_ne, oy_e)
        with m.If(go & at_end):   # before the start's If: a start in the same cycle wins
            m.d.sync += self.busy.eq(0)
        with m.If(self.start):
            m.d.sync += [oy.eq(0), ox.eq(0), g.eq(0), dy.eq(0), dx.eq(0), ay.eq(0), ax.eq(0), ady.eq(0), adx.eq(0),
                         self.busy.eq(1), dx_e.eq(pk1), dy_e.eq(pk1), g_e.eq(g0_end), ox_e.eq(ox0_end),
                         oy_e.eq(oy0_end), dx_ne.eq(pk2), dy_ne.eq(pk2), g_ne.eq(g1_end), ox_ne.eq(ox1_end),
                         oy_ne.eq(oy1_end), into_g.eq(pk1), into_ox.eq(pk1 & g0_end),
                         into_oy.eq(pk1 & g0_end & ox0_end), at_end.eq(pk1 & g0_end & ox0_end & oy0_end)]
        with m.Elif(go):
            m.d.sync += [dx.eq(Mux(dx_e, 0, dx + 1)), adx.eq(Mux(dx_e, 0, adx + gstep)), dx_ne.eq(Mux(dx_e, pk2, dx == pk_m3)),
                         dx_e.eq(nx_e), dy_e.eq(ny_e), g_e.eq(ng_e), ox_e.eq(nox_e), oy_e.eq(noy_e),
                         into_g.eq(nx_e & ny_e), into_ox.eq(nx_e & ny_e & ng_e),
                         into_oy.eq(nx_e & ny_e & ng_e & nox_e), at_end.eq(nx_e & ny_e & ng_e & nox_e & noy_e)]
            with m.If(dx_e):
                m.d.sync += [dy.eq(Mux(dy_e, 0, dy + 1)), ady.eq(Mux(dy_e, 0, ady + ent.dystep)),
                             dy_ne.eq(Mux(dy_e, pk2, dy == pk_m3))]
            with m.If(into_g):
                m.d.sync += [g.eq(Mux(g_e, 0, g + 1)), g_ne.eq(Mux(g_e, g1_end, g == in_g_m2))]
            with m.If(into_ox):
                m.d.sync += [ox.eq(Mux(ox_e, 0, ox + 1)), ax.eq(Mux(ox_e, 0, ax + ent.cstep)),
                             ox_ne.eq(Mux(ox_e, ox1_end, ox == p_ox_m2))]
            with m.If(into_oy):   # past the last window the walk is idle: oy's value no longer matters
                m.d.sync += [oy.eq(oy + 1), ay.eq(ay + ent.rstep), oy_ne.eq(oy == p_oy_m2)]
        return m
