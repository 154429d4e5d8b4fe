"""External weights: the AXI4 read port and the prefetch that feeds the PE array from it.

A build with Config.weights = "external" keeps its weights and biases in a memory outside the processor
(DRAM behind an interconnect), read through one AXI4 read-only manager port (protocol.AxiReadSignature);
the layer table, thresholds, LUT and activations stay on chip. The image (hw/image.py external_image) lies
from the XBASE register on: the bias words first, each P x A bits on whole beats (XBIAS of them), then from
beat XWSTART the weight words, P x W bits each, packed with no gap, each table entry's weights starting on
a beat.

  Scatter op (waddr, paddr, t) ──► op buffer (paddr, t) ─────────────────────────────────┐
        │ waddr                                                                          ▼
        └─► RunCoalescer ─► run buffer ─► RunTranslator ─┬─► BurstReader ─► beats ─► Gearbox ─► word
            (consecutive      (a, n)        (first beat,  │    (AXI INCR bursts,             ┐      │
             addresses)                      beats)       │     read-data buffer)    descs ──┘      ▼
                                                          └─► descriptor buffer (bit offset, n)   PE op
  BiasLoader: at each inference's start, every bias word into the on-chip bias memory, before any scatter.

The Scatter runs ahead of its weights by up to fetch_ops ops. It starts an event only while the op and run
buffers have room for the largest event (max_event_ops), so it never stops inside one and neither buffer
overflows; a run ends where the addresses stop being consecutive, at RUN_MAX words, or when no op is issued
in a cycle. Every op's word is requested once, in op order, and AXI returns read data in request order (one
ID), so words reach the PE in the order of its ops: with the memory's latency covered by the buffers and
enough bandwidth (one word per op), the PE array never waits.

Nothing here multiplies: a word index times the word's g-bit units is a sum of shifts (times_const).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import XADDR_BITS, Config, clog2, ubits, widths
from .protocol import AxiReadSignature, weight_lane_layout
from .sequencer import RegisterSlice, RingFifo, check_fifo_depth, ram_q, reg, up_down

RUN_MAX = 256          # words per run at most (the Gearbox's count and the descriptor's width)
DESC_DEPTH = 64        # runs whose data is requested and not yet all turned into words
AXI_4K = 4096          # no burst crosses a 4 KB boundary (AXI4)
ARCACHE = 0b0011       # normal, non-cacheable, bufferable
INCR = 1


def times_const(x, c: int):
    """x * c for a constant c >= 1, as a sum of shifted copies of x (no multiplier)."""
    terms = [x << i for i in range(c.bit_length()) if c >> i & 1]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def nxt_mux(i, d: int):
    """(i + d) mod 3 for a ring index i in 0..2 and d 1 or 2."""
    return Mux(i == 2, 0, i + 1) if d == 1 else Mux(i == 0, 2, i - 1)


def units(cfg: Config) -> tuple[int, int, int]:
    """(g, U, V): the unit g = gcd(weight word, beat) in bits, units per beat U (a power of two) and per word V."""
    g = cfg.fetch_unit_bits
    return g, cfg.axi_data_bits // g, cfg.weight_word_bits // g


def request_layout(cfg: Config) -> data.StructLayout:
    """A read request: `n` beats from beat `beat` of the image (counted from XBASE)."""
    run_beats = -(-RUN_MAX * cfg.weight_word_bits // cfg.axi_data_bits) + 1
    return data.StructLayout({"beat": XADDR_BITS, "n": ubits(max(run_beats, cfg.max_bias_words * cfg.bias_beats))})


def run_layout(cfg: Config) -> data.StructLayout:
    """A run: `n` consecutive weight words from word `a` (Scatter addresses)."""
    return data.StructLayout({"a": widths(cfg)[1], "n": ubits(RUN_MAX)})


def desc_layout(cfg: Config) -> data.StructLayout:
    """What the Gearbox needs of a run: the first word's offset in its first beat (units), its words and beats."""
    return data.StructLayout({"offset": max(1, clog2(units(cfg)[1])), "n": ubits(RUN_MAX),
                              "beats": request_layout(cfg)["n"].width})


SKID = 8   # BramFifo: words read out of the block RAM and not yet taken


class BramFifo(wiring.Component):
    """A FIFO of `depth` words (a power of two) in block RAM whose reader sees registers only: each word is read
    out of the RAM through its output register (ram_q: no enable, the port's only load, so the ECP5 flow moves
    it into the RAM) into a small LUT-RAM FIFO of SKID words, which `r` presents. Amaranth's SyncFIFOBuffered
    hands its reader the RAM's read data itself, several times a register's clock-to-out in front of whatever
    logic follows. `level`: words held (in the RAM, being read, or in the small FIFO). It holds `depth` words;
    a write past that is the writer's error (the writers here keep a credit against `depth`)."""

    def __init__(self, width: int, depth: int):
        check_fifo_depth(depth)
        self.width, self.depth = width, depth
        super().__init__({"w_en": In(1), "w_data": In(width), "r": Out(stream.Signature(width)),
                          "level": Out(range(depth + SKID + 1))})

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        m.submodules.mem = mem = Memory(shape=self.width, depth=D, init=[], attrs={"no_rw_check": 1})
        wr, rd = mem.write_port(), mem.read_port()
        produce, consume = Signal(range(D)), Signal(range(D))
        count = Signal(range(D + 1))       # words in the RAM not yet read
        pend1, pend2 = Signal(), Signal()  # reads whose word reaches the small FIFO in 2 and 1 cycles
        m.submodules.skid = skid = SyncFIFOBuffered(width=self.width, depth=SKID)
        issue = Signal()
        # room in the small FIFO: the words it holds or will (reads issued, takes counted a cycle late, so never
        # too few) as a thermometer code, occ[k] = more than k, shifted up by a read and down by a take: the
        # room test is one of its flip-flops (a sum of the level and the reads in flight was a late path)
        occ = Signal(SKID + 1, name="bfifo_occ")
        took = reg(m, self.r.valid & self.r.ready, "bfifo_took")
        with m.If(issue & ~took):
            m.d.sync += occ.eq(Cat(Const(1, 1), occ[:-1]))
        with m.Elif(took & ~issue):
            m.d.sync += occ.eq(occ[1:])
        room = ~occ[SKID - 2]     # at most SKID - 2 held: a read now leaves the FIFO one word to spare
        # count != 0 from registers only: last cycle's count classes and its write and read (no adder before it)
        ge2, eq1, eq0 = reg(m, count >= 2, "bfifo_ge2"), reg(m, count == 1, "bfifo_eq1"), reg(m, count == 0, "bfifo_eq0")
        w_prev, i_prev = reg(m, self.w_en, "bfifo_wp"), reg(m, issue, "bfifo_ip")
        nonempty = ge2 | (eq1 & (w_prev | ~i_prev)) | (eq0 & w_prev)
        # a read never meets the write of its address: a word is read a cycle after its write at the earliest
        m.d.comb += [issue.eq(nonempty & room),
                     wr.addr.eq(produce), wr.data.eq(self.w_data), wr.en.eq(self.w_en), rd.addr.eq(consume)]
        with m.If(self.w_en):
            m.d.sync += produce.eq(produce + 1)
        with m.If(issue):
            m.d.sync += consume.eq(consume + 1)
        up_down(m, count, self.w_en, issue)
        m.d.sync += [pend1.eq(issue), pend2.eq(pend1)]
        m.d.comb += [skid.w_en.eq(pend2), skid.w_data.eq(ram_q(m, rd.data, "bfifo_q")),
                     self.r.valid.eq(skid.r_rdy), self.r.payload.eq(skid.r_data), skid.r_en.eq(self.r.ready)]
        # the level as a counter of its own, a take counted a cycle late (the writers' room tests only ever see it
        # too high): the sum of the parts, or the reader's handshake in front of the adder, was a long path
        up_down(m, self.level, self.w_en, took)
        return m


class BurstReader(wiring.Component):
    """Requests (first beat from `base`, beats) to AXI4 INCR bursts, and the read data to `beats`.

    A burst is at most axi_max_burst beats and never crosses 4 KB; it is issued only while the read-data
    buffer (fetch_beats) has room for a whole burst beside every beat already requested (RREADY is always
    high), and while fewer than axi_outstanding bursts are in flight. `error` / `error_addr`: the first beat
    whose RRESP was not OKAY since `clear`, and its byte address.

    A reset does not end bursts in flight (AXI has no abort): the beats still owed are counted in a register
    that no reset clears, and after a reset every beat is dropped, and no burst issued, until none is owed."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        super().__init__({
            "req": In(stream.Signature(request_layout(cfg))),
            "base": In(XADDR_BITS), "clear": In(1),
            "axi": Out(AxiReadSignature(cfg.axi_data_bits)),
            "beats": Out(stream.Signature(cfg.axi_data_bits)),
            "error": Out(2), "error_addr": Out(XADDR_BITS), "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.conf
        m = Module()
        DW, B = cfg.axi_data_bits, cfg.axi_data_bits // 8
        lb = clog2(B)
        MAXB, DEPTH, MAXOUT = cfg.axi_max_burst, cfg.fetch_beats, cfg.axi_outstanding
        axi = self.axi
        m.d.comb += [axi.arsize.eq(lb), axi.arburst.eq(INCR), axi.arcache.eq(ARCACHE), axi.arprot.eq(0),
                     axi.rready.eq(1)]

        # ---- the request being split into bursts
        have = Signal()
        addr = Signal(XADDR_BITS)
        left = Signal(len(self.req.payload.n))
        # a request waits in a register (rq) before its first address is computed: the requests' mux and the add
        # of `base` in one cycle was a long path
        rq, rq_v = Signal(request_layout(cfg)), Signal()
        m.d.comb += self.req.ready.eq(~rq_v)
        with m.If(self.req.valid & ~rq_v):
            m.d.sync += [rq.eq(self.req.payload), rq_v.eq(1)]
        # ---- the next burst in two steps after addr / left change. Step 1 computes from addr and left alone every
        # candidate of what the burst ends at: the beats to 4 KB (to4k), min(left, MAXB) (cand), for both ends the
        # address and beats left after the burst, and which end comes first (to_4k: to4k < cand, as to4k < left
        # and to4k < MAXB). Step 2 (p1) picks by that flag: muxes only. `planned`: the burst is ready to issue
        p1, planned, blen = Signal(), Signal(), Signal(range(MAXB + 1))
        to4k, cand = Signal(range(AXI_4K // B + 1)), Signal(range(MAXB + 1))
        to_4k = Signal()
        left_lt_max, more_than_max = Signal(), Signal()     # left < MAXB, left > MAXB
        addr_4k, addr_left = Signal.like(addr, name="br_addr_4k"), Signal.like(addr, name="br_addr_left")
        addr_max = Signal.like(addr, name="br_addr_max")
        left_4k, left_max = Signal.like(left, name="br_left_4k"), Signal.like(left, name="br_left_max")
        # ---- credit: beats requested (or about to be) and not yet taken from the buffer
        reserved = Signal(range(DEPTH + MAXB + 1))
        nout = Signal(range(MAXOUT + 1))
        issue = Signal()
        # one registered flag: room for a whole burst, fewer than MAXOUT bursts in flight, no draining. A burst
        # issued in one cycle leaves ARVALID up in the next, so the next issue is two cycles on, by when the flag
        # has seen it (nout counts bursts from their issue to their last beat)
        draining = Signal(reset_less=True)   # after a reset, until every beat of the bursts before it is in (below)
        may_issue = reg(m, (reserved <= DEPTH - MAXB) & (nout < MAXOUT) & ~draining, "br_may_issue")
        m.d.comb += issue.eq(planned & ~axi.arvalid & may_issue)
        # the steps are exclusive by state (taking the waiting request: neither `have` nor planned; step 1: `have`,
        # neither p1 nor planned; step 2: p1; issue: planned), so each register's enable is a flip-flop or two
        # step 2 moves addr and left on past the burst at once and keeps the burst's own address in `baddr`, so
        # the issue decision (its credit flag) loads no more than the burst's counters: addr, left and have load
        # from state flip-flops. A new request waits for the planned burst's issue, as for its last beat.
        baddr = Signal.like(addr, name="br_baddr")
        with m.If(rq_v & ~have & ~planned):
            m.d.sync += [addr.eq(self.base + (rq.beat << lb)), left.eq(rq.n), have.eq(rq.n != 0), rq_v.eq(0)]
        with m.If(issue):
            m.d.sync += planned.eq(0)
        with m.If(p1):
            m.d.sync += [blen.eq(Mux(to_4k, to4k, cand)), planned.eq(1), p1.eq(0), baddr.eq(addr),
                         addr.eq(Mux(to_4k, addr_4k, Mux(left_lt_max, addr_left, addr_max))),
                         left.eq(Mux(to_4k, left_4k, Mux(left_lt_max, 0, left_max))),
                         have.eq(to_4k | more_than_max)]   # a burst cut at 4 KB leaves beats (to4k < cand)
        beats_to_4k = Signal.like(to4k, name="br_beats_to_4k")
        m.d.comb += beats_to_4k.eq((AXI_4K // B) - addr[lb:12])
        with m.If(have & ~p1 & ~planned):
            m.d.sync += [to4k.eq(beats_to_4k), cand.eq(Mux(left < MAXB, left, MAXB)), p1.eq(1),
                         to_4k.eq((beats_to_4k < left) & (beats_to_4k < MAXB)),
                         left_lt_max.eq(left < MAXB), more_than_max.eq(left > MAXB),
                         addr_4k.eq(Cat(addr[:lb], Const(0, 12 - lb), addr[12:] + 1)), addr_left.eq(addr + (left << lb)),
                         addr_max.eq(addr + (MAXB << lb)), left_4k.eq(left + addr[lb:12] - (AXI_4K // B)),
                         left_max.eq(left - MAXB)]
        # the AR registers follow the plan while no AR waits, and hold while one does
        with m.If(~axi.arvalid):
            m.d.sync += [axi.araddr.eq(baddr), axi.arlen.eq(blen - 1)]
        ar_hs = axi.arvalid & axi.arready
        with m.If(issue):
            m.d.sync += axi.arvalid.eq(1)
        with m.Elif(ar_hs):
            m.d.sync += axi.arvalid.eq(0)

        # ---- bursts in flight: their addresses (for the error's address) and how many
        # (no room test on its write: nout < MAXOUT keeps it from filling)
        m.submodules.addr_fifo = afifo = RingFifo(XADDR_BITS, 1 << clog2(MAXOUT))
        m.d.comb += [afifo.w_en.eq(ar_hs), afifo.w_data.eq(axi.araddr)]

        # beats owed by bursts already accepted (reset_less: see above). A reset starts `draining` (no reset clears
        # either): every beat is dropped and no burst issued until none is owed, so the beats of bursts from
        # before the reset never reach the new inference
        OW = ubits(MAXOUT * MAXB)
        owed = Signal(OW, reset_less=True)
        m.d.sync += owed.eq(owed + Mux(ar_hs, axi.arlen + 1, 0) - axi.rvalid)
        none_owed = reg(m, owed == 0, "br_none_owed")   # a cycle old: no burst goes out while draining
        with m.If(ResetSignal()):
            m.d.sync += draining.eq(1)
        with m.Elif(none_owed):
            m.d.sync += draining.eq(0)
        stale = draining

        m.submodules.rdata = rfifo = BramFifo(DW, DEPTH)
        beat_in = axi.rvalid & ~stale
        rbeat = Signal(8)   # the beat's index in its burst
        m.d.comb += [rfifo.w_en.eq(beat_in), rfifo.w_data.eq(axi.rdata)]
        done_burst = beat_in & axi.rlast
        m.d.comb += afifo.r.ready.eq(done_burst)
        with m.If(beat_in):
            m.d.sync += rbeat.eq(Mux(axi.rlast, 0, rbeat + 1))
        up_down(m, nout, issue, done_burst)
        # a beat taken out of the buffer frees its credit a cycle later (the reader's ready stays out of this adder)
        taken = reg(m, self.beats.valid & self.beats.ready, "br_taken")
        m.d.sync += reserved.eq(reserved + Mux(issue, blen, 0) - taken)
        wiring.connect(m, rfifo.r, wiring.flipped(self.beats))

        # a beat's response, burst address and index through registers first, the error a cycle later (the burst
        # FIFO's read and the add in one cycle were a long path; an error is read at the END beat, far later)
        bad, bad_resp = reg(m, beat_in & (axi.rresp != 0), "br_bad"), reg(m, axi.rresp, "br_bad_resp")
        bad_base, bad_beat = reg(m, afifo.r.payload, "br_bad_base"), reg(m, rbeat, "br_bad_beat")
        with m.If(self.clear):
            m.d.sync += [self.error.eq(0), self.error_addr.eq(0)]
        with m.Elif(bad & (self.error == 0)):
            m.d.sync += [self.error.eq(bad_resp), self.error_addr.eq(bad_base + (bad_beat << lb))]
        m.d.comb += self.busy.eq(rq_v | have | p1 | planned | axi.arvalid | (nout != 0) | (rfifo.level != 0))
        return m


WORD_FIFO = 8   # Gearbox: words unpacked ahead of the PE


class Gearbox(wiring.Component):
    """Beats into weight words: for each run (its descriptor: the first word's offset in its first beat, in g-bit
    units, its word count n and its beats), n words from those beats. Each stage decides from registers only,
    so no handshake runs through two of them in one cycle:

    - the annotator marks the beat at the head of the read-data buffer, a run's first beat with the run's
      offset and words (taking it takes the run's descriptor with it);
    - the window holds the current beat (lo), the next (hi) and one filled ahead, in a ring of three entries;
      the next word is the V units from `off` in lo (and on into hi): a U-way choice by the `off` register. A
      word goes to the word FIFO while it has room; the window then moves on by V units, lo moving on to hi
      where the word crossed into it (no data moves between the entries), and drops what is left of a
      run after its last word (its beats never hold a later run's units: each run's beats are fetched on
      their own). A beat with the first mark entering lo sets `off` and the words left from its marks;
    - the word FIFO (WORD_FIFO words) that the PE's op takes from.

    Words start at multiples of g bits, so every shift is one of U multiples of g. One word a cycle while
    beats keep up."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        super().__init__({
            "beats": In(stream.Signature(cfg.axi_data_bits)),
            "runs": In(stream.Signature(desc_layout(cfg))),
            "words": Out(stream.Signature(cfg.weight_word_bits)),
        })

    def elaborate(self, platform):
        cfg = self.conf
        m = Module()
        g, U, V = units(cfg)
        DW, PW = cfg.axi_data_bits, cfg.weight_word_bits
        dl = desc_layout(cfg)

        # ---- annotator: the beat at the read-data buffer's head (a register) with its run's marks, from registers:
        # the next run's descriptor waits in `nd` (a register slice in front keeps the descriptor FIFO's level
        # logic out of this), the beats left of the run being taken in `pull_left`
        # nd_n1: nd.n == 1, kept with it (the compare after the window's choice of a run's first beat was a late
        # path into `last`)
        nd, nd_v, nd_n1 = Signal(dl), Signal(), Signal()
        pull_left = Signal(len(self.runs.payload.beats))   # beats of the run being taken, after this one
        need_desc = Signal(init=1)                          # pull_left == 0, kept with it
        marked = ~need_desc | nd_v   # the head's marks are known (a run's first beat waits for its descriptor)

        # ---- window: a ring of three data entries; `lo` says which holds the current beat, the next one (hi)
        # holds the beat after it, the third is filled ahead. Moving on to the next beat advances `lo`; a beat is
        # written into the entry after the last valid one (`tail`, a one-hot register), straight from the
        # read-data buffer's head, so no data moves between the entries. What the control needs of the entries
        # (how many are valid, and each position's marks) is kept in registers by position (lo, hi, spare), not
        # read out of the ring: the take, the move and the run start then decide from flip-flops only.
        m.submodules.wfifo = wfifo = SyncFIFOBuffered(width=PW, depth=WORD_FIFO)
        marks = data.StructLayout({"first": 1, "offset": dl["offset"].shape, "n": dl["n"].shape, "n1": 1})
        e = [Signal(DW, name=f"gb_e{k}") for k in range(3)]
        lo_i = Signal(range(3))
        tail = Signal(3, init=1)                        # one-hot: the entry the next beat is written into
        count = Signal(range(4))                        # valid entries, running on from lo
        v1, v2, v3 = Signal(), Signal(), Signal()       # count >= 1, >= 2, == 3, kept with count
        pos = [Signal(marks, name=f"gb_pos{j}") for j in range(3)]   # the marks of lo, hi and the spare
        head_marks = Signal(marks)
        m.d.comb += [head_marks.first.eq(need_desc), head_marks.offset.eq(nd.offset), head_marks.n.eq(nd.n),
                     head_marks.n1.eq(nd_n1)]
        lo_data, hi_data = Signal(DW), Signal(DW)
        with m.Switch(lo_i):
            for k in range(3):
                with m.Case(k):
                    m.d.comb += [lo_data.eq(e[k]), hi_data.eq(e[(k + 1) % 3])]
        off = Signal(range(U))
        left = Signal(ubits(RUN_MAX))
        last = Signal()                        # left == 1, kept with left
        # the word FIFO's room a cycle old: a word may be on its way (two: one in the register before the FIFO)
        room_w = reg(m, wfifo.level < WORD_FIFO - 2, "gb_room_w")
        fits = off <= U - V                    # the word lies in lo
        cross = off >= U - V                   # the next word starts in the next beat
        take = v1 & (fits | v2) & room_w
        end = take & last
        word = Signal(2 * DW)
        m.d.comb += word.eq(Cat(lo_data, hi_data))
        # the word into a register, then the FIFO (the window's muxes in front of the LUT RAM were a late path)
        with m.Switch(off):
            for o in range(U):
                with m.Case(o):
                    m.d.sync += wfifo.w_data.eq(word[o * g:o * g + PW])
        m.d.sync += wfifo.w_en.eq(take)

        # after this cycle's word: move on one beat where the word crossed into the next or the run ended inside
        # lo (lo empties); two where the run's last word spanned lo and hi (both empty)
        drop_both = end & ~fits
        drop_one = take & (cross | end) & ~drop_both
        # the fill: the head beat into the entry at `tail`, from registers only; taking it is the beats' ready and
        # moves the annotator on
        may_fill = marked & ~v3
        fill = self.beats.valid & may_fill
        used_nd = fill & need_desc
        m.d.comb += [self.beats.ready.eq(may_fill),
                     self.runs.ready.eq(~nd_v | used_nd)]
        with m.If(self.runs.valid & self.runs.ready):
            m.d.sync += [nd.eq(self.runs.payload), nd_v.eq(1), nd_n1.eq(self.runs.payload.n == 1)]
        with m.Elif(used_nd):
            m.d.sync += nd_v.eq(0)
        with m.If(fill):
            left_n = Mux(need_desc, nd.beats - 1, pull_left - 1)
            m.d.sync += [pull_left.eq(left_n), need_desc.eq(left_n == 0), tail.eq(Cat(tail[2], tail[:2]))]
        # the entry at `tail` is free while fewer than three are valid: it copies the head in every such cycle
        # (counted valid only where the beat is taken), so its load enable is flip-flops, not the beats' valid
        for k in range(3):
            with m.If(tail[k] & ~v3):
                m.d.sync += e[k].eq(self.beats.payload)
        with m.If(drop_both):
            m.d.sync += lo_i.eq(nxt_mux(lo_i, 2))
        with m.Elif(drop_one):
            m.d.sync += lo_i.eq(nxt_mux(lo_i, 1))
        new_count = Signal(range(4))
        m.d.comb += new_count.eq(count - Mux(drop_both, 2, drop_one) + fill)
        m.d.sync += [count.eq(new_count), v1.eq(new_count >= 1), v2.eq(new_count >= 2), v3.eq(new_count == 3)]
        # each position's marks after the move: an old entry's (the one `moved` positions on), or the head's where
        # the position is new (written whether or not a beat fills it: a position past the count is not read)
        new_pos = [Signal(marks, name=f"gb_new_pos{j}") for j in range(3)]
        valid_at = [v1, v2, v3]
        for j in range(3):
            with m.If(drop_both):
                m.d.comb += new_pos[j].eq(Mux(valid_at[j + 2], pos[j + 2], head_marks) if j + 2 < 3 else head_marks)
            with m.Elif(drop_one):
                m.d.comb += new_pos[j].eq(Mux(valid_at[j + 1], pos[j + 1], head_marks) if j + 1 < 3 else head_marks)
            with m.Else():
                m.d.comb += new_pos[j].eq(Mux(valid_at[j], pos[j], head_marks))
        m.d.sync += [pos[j].eq(new_pos[j]) for j in range(3)]
        # a run starts when its first beat becomes lo: moved into it, or filled into it (an empty window, or the
        # entry a move made lo)
        lo_changes = drop_one | drop_both | ~v1
        new_lo_valid = Mux(drop_both, v3, Mux(drop_one, v2, v1)) | fill
        starts = lo_changes & new_lo_valid & new_pos[0].first
        with m.If(starts):
            m.d.sync += [off.eq(new_pos[0].offset), left.eq(new_pos[0].n), last.eq(new_pos[0].n1)]
        with m.Elif(take):
            m.d.sync += [off.eq(Mux(cross, off + V - U, off + V)), left.eq(left - 1), last.eq(left == 2)]

        m.d.comb += [self.words.valid.eq(wfifo.r_rdy), self.words.payload.eq(wfifo.r_data), wfifo.r_en.eq(self.words.ready)]
        return m


class RunCoalescer(wiring.Component):
    """The Scatter's weight addresses (one per op) into runs of consecutive words. A run is written out
    where the next address does not continue it, at RUN_MAX words, or in a cycle with no address; the run
    buffer behind it always has room (see the module docstring), so `runs` has no ready.

    The compare "this address is one more than the last cycle's" is made on the way into a register stage
    here, so the extend decision is two flip-flops (`cont`, `full`), not a compare, in front of the open run's
    load enables; `run_valid` and `run` then come from flip-flops and one LUT, a cycle after the address as
    through a register behind the compare. `open`: an address is held or a run is open."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        WA = widths(cfg)[1]
        super().__init__({"valid": In(1), "waddr": In(WA), "run_valid": Out(1), "run": Out(run_layout(cfg)),
                          "open": Out(1)})

    def elaborate(self, platform):
        m = Module()
        WA = widths(self.conf)[1]
        op, addr, addr1 = Signal(), Signal(WA), Signal(WA)   # the address a cycle later, and it + 1
        cont = Signal()   # op continues the address before it: both valid, one word apart
        m.d.sync += [op.eq(self.valid), addr.eq(self.waddr), addr1.eq(self.waddr + 1),
                     cont.eq(self.valid & op & (self.waddr == addr1))]
        a = Signal(WA)                    # the open run's first word
        n = Signal(ubits(RUN_MAX))
        full = Signal()                   # n == RUN_MAX, kept with n
        run_open = Signal()               # the last cycle's address started or extended a run: op a cycle ago
        extend = cont & ~full             # cont implies run_open (a run is open exactly when op was)
        m.d.comb += [self.run_valid.eq(run_open & ~extend), self.run.a.eq(a), self.run.n.eq(n),
                     self.open.eq(run_open | op)]
        with m.If(extend):
            m.d.sync += [n.eq(n + 1), full.eq(n == RUN_MAX - 1)]
        with m.Elif(op):
            m.d.sync += [a.eq(addr), n.eq(1), full.eq(RUN_MAX == 1)]
        m.d.sync += run_open.eq(op)
        return m


class RunTranslator(wiring.Component):
    """A run of words (a, n) into a read request (its first beat from XBASE: XWSTART + a * V // U, and its
    beats) and the Gearbox's descriptor (a * V mod U, n), both handed on in the same cycle. Two pipeline
    stages, one run a cycle."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        super().__init__({
            "runs": In(stream.Signature(run_layout(cfg))), "wstart": In(XADDR_BITS),
            "req": Out(stream.Signature(request_layout(cfg))), "desc": Out(stream.Signature(desc_layout(cfg))),
        })

    def elaborate(self, platform):
        cfg = self.conf
        m = Module()
        g, U, V = units(cfg)
        lu = clog2(U)
        WA = widths(cfg)[1]
        UB = WA + V.bit_length() + 1
        # s1_nvu = n * V + U - 1: the run's beats are (a * V mod U + n * V + U - 1) // U, one add of a few bits
        # in stage 2 (last unit's beat less first beat plus one was four carry chains in a row)
        s1_v, s1_av, s1_nvu, s1_n = Signal(), Signal(UB), Signal(UB), Signal(ubits(RUN_MAX))
        s2_v = Signal()
        s2_req, s2_desc = Signal(request_layout(cfg)), Signal(desc_layout(cfg))
        out_free = ~s2_v | (self.req.ready & self.desc.ready)
        s1_free = ~s1_v | out_free
        m.d.comb += [self.req.valid.eq(s2_v & self.desc.ready), self.desc.valid.eq(s2_v & self.req.ready),
                     self.req.payload.eq(s2_req), self.desc.payload.eq(s2_desc), self.runs.ready.eq(s1_free)]
        with m.If(s1_free):
            m.d.sync += [s1_v.eq(self.runs.valid), s1_av.eq(times_const(self.runs.payload.a, V)),
                         s1_nvu.eq(times_const(self.runs.payload.n, V) + (U - 1)), s1_n.eq(self.runs.payload.n)]
        offset = s1_av[:lu] if lu else Const(0, 1)
        beats = Signal(UB)
        m.d.comb += beats.eq((s1_nvu + offset) >> lu)
        with m.If(out_free):
            m.d.sync += [s2_v.eq(s1_v), s2_req.beat.eq(self.wstart + (s1_av >> lu)), s2_req.n.eq(beats),
                         s2_desc.offset.eq(offset), s2_desc.n.eq(s1_n), s2_desc.beats.eq(beats)]
        return m


class BiasLoader(wiring.Component):
    """At `start`, the `words` bias words (each bias_beats beats, from the image's beat 0) into the bias memory,
    a beat at a time: beat k of word i into word i's k-th slice of axi_data_bits (wr_en one bit a slice);
    `ready` once the last is written (at once for none)."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        BA = ubits(cfg.max_bias_words)
        super().__init__({
            "start": In(1), "words": In(BA),
            "req": Out(stream.Signature(request_layout(cfg))), "beats": In(stream.Signature(cfg.axi_data_bits)),
            "wr_addr": Out(BA), "wr_data": Out(cfg.axi_data_bits), "wr_en": Out(cfg.bias_beats),
            "ready": Out(1, init=1),   # idle until the first start
        })

    def elaborate(self, platform):
        cfg = self.conf
        m = Module()
        K = cfg.bias_beats
        asked = Signal()
        count = Signal.like(self.words)
        k = Signal(range(K))
        last_word = Signal()   # count + 1 == words, kept with count
        m.d.comb += [self.req.valid.eq(~self.ready & ~asked), self.req.payload.beat.eq(0),
                     self.req.payload.n.eq(times_const(self.words, K)), self.beats.ready.eq(~self.ready)]   # beats come only once asked
        m.d.sync += self.wr_en.eq(0)
        with m.If(self.start):
            m.d.sync += [asked.eq(0), count.eq(0), k.eq(0), self.ready.eq(self.words == 0), last_word.eq(self.words == 1)]
        with m.Else():
            with m.If(self.req.valid & self.req.ready):
                m.d.sync += asked.eq(1)
            with m.If(self.beats.valid & self.beats.ready):
                m.d.sync += [self.wr_en.eq(1 << k), self.wr_addr.eq(count), self.wr_data.eq(self.beats.payload)]
                with m.If(k == K - 1):
                    m.d.sync += [k.eq(0), count.eq(count + 1), last_word.eq(count + 2 == self.words),
                                 self.ready.eq(last_word)]
                with m.Else():
                    m.d.sync += k.eq(k + 1)
        return m


class ExternalWeights(wiring.Component):
    """The external-weight path of one processor: the AXI4 read port, the bias load at each inference's start
    and the weight prefetch between the Scatter and the PE array (see the module docstring).

    In from the Scatter: `op`, `waddr`, `paddr`, `t` (its op registers); `room`: it may start another event.
    Out to the PE array: `pe_op`, `pe_paddr`, `pe_t`, and `pe_weight` a cycle after pe_op, as a weight
    memory's read data would be. `start`: an inference starts (biases load, the error clears); `bias_ready`
    once they are in. `busy`: ops not yet handed to the PE array."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        XA, WA = widths(cfg)
        BA = ubits(cfg.max_bias_words)
        super().__init__({
            "axi": Out(AxiReadSignature(cfg.axi_data_bits)),
            "xbase": In(XADDR_BITS), "xbias": In(BA), "xwstart": In(XADDR_BITS), "start": In(1),
            "bias_wr_addr": Out(BA), "bias_wr_data": Out(cfg.axi_data_bits), "bias_wr_en": Out(cfg.bias_beats),
            "bias_ready": Out(1),
            "op": In(1), "waddr": In(WA), "paddr": In(XA), "t": In(cfg.sym_bits), "room": Out(1),
            "pe_op": Out(1), "pe_paddr": Out(XA), "pe_t": Out(cfg.sym_bits),
            "pe_weight": Out(data.ArrayLayout(weight_lane_layout(cfg), cfg.lanes)),
            "busy": Out(1), "error": Out(2), "error_addr": Out(XADDR_BITS),
        })

    def elaborate(self, platform):
        cfg = self.conf
        m = Module()
        XA, WA = widths(cfg)
        SY, OPS = cfg.sym_bits, cfg.fetch_ops
        m.submodules.reader = rd = BurstReader(cfg)
        m.submodules.bias = bl = BiasLoader(cfg)
        m.submodules.coalescer = co = RunCoalescer(cfg)
        m.submodules.translator = tr = RunTranslator(cfg)
        m.submodules.gearbox = gb = Gearbox(cfg)
        wiring.connect(m, rd.axi, wiring.flipped(self.axi))
        start = reg(m, self.start, "xw_start")   # from the controller's FSM, across the die
        m.d.comb += [rd.base.eq(self.xbase), rd.clear.eq(start), bl.start.eq(start), bl.words.eq(self.xbias),
                     tr.wstart.eq(self.xwstart), self.error.eq(rd.error), self.error_addr.eq(rd.error_addr),
                     self.bias_wr_addr.eq(bl.wr_addr), self.bias_wr_data.eq(bl.wr_data), self.bias_wr_en.eq(bl.wr_en),
                     self.bias_ready.eq(bl.ready)]

        # the reader serves the bias load until every bias word is in (no scatter runs before), then the runs
        loading = ~bl.ready
        with m.If(loading):
            m.d.comb += [rd.req.valid.eq(bl.req.valid), rd.req.payload.eq(bl.req.payload), bl.req.ready.eq(rd.req.ready)]
        with m.Else():
            m.d.comb += [rd.req.valid.eq(tr.req.valid), rd.req.payload.eq(tr.req.payload), tr.req.ready.eq(rd.req.ready)]
        # the beats' ready is one LUT of flip-flops (the loader takes every beat while loading; the Gearbox's
        # accept is from registers): it enables the read-data FIFO's output stage
        m.d.comb += [bl.beats.valid.eq(rd.beats.valid & loading), bl.beats.payload.eq(rd.beats.payload),
                     gb.beats.valid.eq(rd.beats.valid & ~loading), gb.beats.payload.eq(rd.beats.payload),
                     rd.beats.ready.eq(loading | gb.beats.ready)]

        # the ops wait here for their words; the runs of their addresses, for translation
        m.submodules.ops = ops = BramFifo(XA + SY, OPS)
        m.submodules.runs = runs = BramFifo(len(co.run.as_value()), OPS)
        # few runs in flight: LUT RAM, read asynchronously (no block RAM's clock-to-out before the Gearbox)
        m.submodules.descs = descs = SyncFIFO(width=len(tr.desc.payload.as_value()), depth=DESC_DEPTH)
        # the translator's output stage reads registers only: the descriptor FIFO's room a cycle old (one write a
        # cycle at most, so level < DEPTH - 2 then leaves room now), and the runs through a register slice (the
        # translator's stall reached the run FIFO's output stage and level logic in the same cycle); the descriptors
        # to the Gearbox through one too (its take reached the descriptor FIFO's level logic)
        desc_room = reg(m, descs.level < DESC_DEPTH - 2, "xw_desc_room")
        m.submodules.run_slice = run_slice = RegisterSlice(run_layout(cfg))
        m.submodules.desc_slice = desc_slice = RegisterSlice(desc_layout(cfg))
        # the Scatter's op through a register first: the Scatter sits across the die from these buffers
        op, waddr = reg(m, self.op, "xw_op"), reg(m, self.waddr, "xw_waddr")
        opword = reg(m, Cat(self.paddr, self.t), "xw_opword")
        m.d.comb += [ops.w_en.eq(op), ops.w_data.eq(opword), co.valid.eq(op), co.waddr.eq(waddr),
                     runs.w_en.eq(co.run_valid), runs.w_data.eq(co.run),
                     descs.w_en.eq(tr.desc.valid & desc_room), descs.w_data.eq(tr.desc.payload), tr.desc.ready.eq(desc_room),
                     desc_slice.i.valid.eq(descs.r_rdy), desc_slice.i.payload.eq(descs.r_data), descs.r_en.eq(desc_slice.i.ready)]
        wiring.connect(m, desc_slice.o, gb.runs)
        m.d.comb += [run_slice.i.valid.eq(runs.r.valid), run_slice.i.payload.eq(runs.r.payload), runs.r.ready.eq(run_slice.i.ready)]
        wiring.connect(m, run_slice.o, tr.runs)
        # room for the largest event in both buffers (levels a cycle old, and an op may be on its way)
        # (an op reaches its buffer a cycle after the Scatter, a run two cycles after the op; `room` is read
        # through a register of the Scatter's)
        limit = OPS - cfg.max_event_ops - 7
        m.d.sync += self.room.eq((ops.level < limit) & (runs.level < limit))

        go = ops.r.valid & gb.words.valid
        m.d.comb += [gb.words.ready.eq(go), ops.r.ready.eq(go), self.pe_op.eq(go),
                     self.pe_paddr.eq(ops.r.payload[:XA]), self.pe_t.eq(ops.r.payload[XA:])]
        m.d.sync += self.pe_weight.eq(gb.words.payload)
        m.d.comb += self.busy.eq(self.op | op | (ops.level != 0) | co.open | runs.w_en)
        return m
