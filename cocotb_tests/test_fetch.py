"""The external-weight blocks (hw/fetch.py) and the AXI4 memory model (hw/axi_mem.py) alone, in Amaranth's
simulator, against what they must do:

- BramFifo: every word once, in order, under random writes and reads, its level exact (a take a cycle late);
- Gearbox: the words of random runs (first word at any offset in its beat), from exactly the beats a run
  spans, under random beat, run and word stalls, for word and beat widths of every ratio kind;
- RunCoalescer: addresses with gaps into runs that hold every address once, in order, each run consecutive;
- RunTranslator: a run's first beat, beat count and offset (computed here from bit positions);
- BurstReader: requests into bursts (none across 4 KB, at most the longest burst, at most the outstanding
  limit, AR held until taken, credit kept) against a subordinate with random latency and stalls, the data in
  order, and the first error response with its address;
- BiasLoader: bias words of several beats into the bias memory's writes, a slice a beat;
- AxiMemory: data, latency and bandwidth against a well-behaved manager; each protocol violation caught.
"""
import random

import pytest
from amaranth.sim import Simulator

from logspike.hw.axi_mem import AxiMemory, Violation
from logspike.hw.config import Config
from logspike.hw.fetch import RUN_MAX, BiasLoader, BramFifo, BurstReader, Gearbox, RunCoalescer, RunTranslator, request_layout


def run(dut, *benches, processes=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)
    for p in processes:
        sim.add_process(p)
    sim.run()


def ext(**kw):
    return Config(**dict(dict(weights="external", max_weight_words=4096, max_bias_words=64), **kw))


def run_beats(cfg, a, n):
    """(first beat, beats, offset in units) of the run of n words from word a: from bit positions."""
    PW, DW, g = cfg.weight_word_bits, cfg.axi_data_bits, cfg.fetch_unit_bits
    first, last = a * PW // DW, ((a + n) * PW - 1) // DW
    return first, last - first + 1, (a * PW % DW) // g


@pytest.mark.parametrize("depth,seed", [(4, 1), (64, 2)])
def test_bram_fifo_keeps_every_word_in_order(depth, seed):
    rnd = random.Random(seed)
    dut = BramFifo(20, depth)
    sent, got = [], []

    async def bench(ctx):
        held, took_before = 0, 0   # words written and not yet taken; a take counts in the level a cycle late
        for t in range(4000):
            w = held < depth and rnd.random() < (0.7 if t < 2000 else 0.3)   # fills, then drains
            r = rnd.random() < (0.4 if t < 2000 else 0.9)
            v = rnd.getrandbits(20)
            ctx.set(dut.w_en, w)
            ctx.set(dut.w_data, v)
            ctx.set(dut.r.ready, r)
            assert ctx.get(dut.level) == held + took_before
            took = r and ctx.get(dut.r.valid)
            took_before = int(bool(took))
            if took:
                got.append(ctx.get(dut.r.payload))
            if w:
                sent.append(v)
            held += w - took
            await ctx.tick()

    run(dut, bench)
    assert got == sent[:len(got)] and len(got) > 1000 and len(sent) - len(got) <= depth


def test_bram_fifo_streams_a_word_a_cycle():
    """Written every cycle and always read: after the RAM's read latency, a word every cycle (the skid's room
    test keeps reads going while words are in flight)."""
    dut = BramFifo(16, 64)
    out_at = []

    async def bench(ctx):
        ctx.set(dut.r.ready, 1)
        for t in range(300):
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_data, t & 0xFFFF)
            if ctx.get(dut.r.valid):
                out_at.append((t, ctx.get(dut.r.payload)))
            await ctx.tick()

    run(dut, bench)
    first = out_at[0][0]
    assert [v for _, v in out_at] == list(range(len(out_at)))
    assert [t for t, _ in out_at] == list(range(first, 300)) and first <= 6   # no gap after the first word


WIDTHS = [(1, 5, 64), (2, 5, 64), (4, 5, 64), (4, 5, 128), (16, 5, 128), (16, 5, 256), (8, 8, 64), (4, 6, 256),
          (16, 8, 128), (32, 5, 256)]


@pytest.mark.parametrize("lanes,wbits,dw", WIDTHS)
def test_gearbox_turns_the_beats_of_each_run_into_its_words(lanes, wbits, dw):
    cfg = ext(lanes=lanes, weight_bits=wbits, axi_data_bits=dw)
    PW = cfg.weight_word_bits
    rnd = random.Random(lanes * 1000 + wbits * 10 + dw)
    nwords = 700
    words = [rnd.getrandbits(PW) for _ in range(nwords)]
    stream = sum(w << (i * PW) for i, w in enumerate(words))

    def beat(b):
        return (stream >> (b * dw)) & ((1 << dw) - 1)

    runs = []
    for _ in range(60):
        n = rnd.choice([1, 2, 3, rnd.randrange(1, 50), RUN_MAX]) if nwords > RUN_MAX else 1
        a = rnd.randrange(0, nwords - n + 1)
        runs.append((a, n))
    beats, descs, want = [], [], []
    for a, n in runs:
        first, nb, off = run_beats(cfg, a, n)
        beats += [beat(first + k) for k in range(nb)]
        descs.append((off, n, nb))
        want += words[a:a + n]
    dut = Gearbox(cfg)
    got = []

    async def bench(ctx):
        bi = di = 0
        for _ in range(20 * len(beats) + 10 * len(want) + 100):
            bv = bi < len(beats) and rnd.random() < 0.7
            dv = di < len(descs) and rnd.random() < 0.7
            ctx.set(dut.beats.valid, bv)
            ctx.set(dut.beats.payload, beats[bi] if bi < len(beats) else 0)
            ctx.set(dut.runs.valid, dv)
            if di < len(descs):
                ctx.set(dut.runs.payload.offset, descs[di][0])
                ctx.set(dut.runs.payload.n, descs[di][1])
                ctx.set(dut.runs.payload.beats, descs[di][2])
            wr = rnd.random() < 0.8
            ctx.set(dut.words.ready, wr)
            if ctx.get(dut.words.valid) and wr:
                got.append(ctx.get(dut.words.payload))
            bi += bool(bv and ctx.get(dut.beats.ready))
            di += bool(dv and ctx.get(dut.runs.ready))
            await ctx.tick()
            if len(got) == len(want) and bi == len(beats):
                break
        assert bi == len(beats) and di == len(descs)   # every beat of every run taken, none more
        assert not ctx.get(dut.words.valid)

    run(dut, bench)
    assert got == want


@pytest.mark.parametrize("lanes,wbits,dw", [(16, 5, 128), (16, 5, 256), (4, 5, 64), (1, 5, 64)])
def test_gearbox_unpacks_a_word_a_cycle(lanes, wbits, dw):
    """With beats always offered and words always taken, long runs come out at a word a cycle (the PE's pace):
    the annotator's and the window's room tests never hold the stream up (at 16 lanes of 128-bit beats, 1.6
    words a beat, a shallow annotator FIFO once let 0.95 words a cycle through)."""
    cfg = ext(lanes=lanes, weight_bits=wbits, axi_data_bits=dw)
    PW = cfg.weight_word_bits
    rnd = random.Random(11)
    stream = rnd.getrandbits(3000 * PW)
    runs = [(rnd.randrange(0, 2000), 288) for _ in range(6)]
    beats, descs = [], []
    for a, n in runs:
        first, nb, off = run_beats(cfg, a, n)
        beats += [(stream >> ((first + k) * dw)) & ((1 << dw) - 1) for k in range(nb)]
        descs.append((off, n, nb))
    n_words = sum(n for _, n in runs)
    dut = Gearbox(cfg)
    cycles = []

    async def bench(ctx):
        bi = di = got = t = 0
        while got < n_words and t < 3 * n_words:
            ctx.set(dut.beats.valid, bi < len(beats))
            ctx.set(dut.beats.payload, beats[bi] if bi < len(beats) else 0)
            ctx.set(dut.runs.valid, di < len(descs))
            if di < len(descs):
                for f, v in zip(("offset", "n", "beats"), descs[di]):
                    ctx.set(getattr(dut.runs.payload, f), v)
            ctx.set(dut.words.ready, 1)
            got += ctx.get(dut.words.valid)
            bi += bool(bi < len(beats) and ctx.get(dut.beats.ready))
            di += bool(di < len(descs) and ctx.get(dut.runs.ready))
            await ctx.tick()
            t += 1
        cycles.append(t)

    run(dut, bench)
    assert cycles[0] <= n_words + 20, (cycles[0], n_words)   # the pipeline's fill, then a word every cycle


def test_run_coalescer_makes_runs_of_consecutive_addresses():
    cfg = ext(lanes=4)
    rnd = random.Random(5)
    addrs, gappy = [], []
    while len(addrs) < 3000:   # stretches of consecutive words, jumps, repeats, and long stretches
        a, n = rnd.randrange(0, 3000), rnd.choice([1, 2, rnd.randrange(1, 40), 300, 600])
        addrs += [(a + k) % 4096 for k in range(n)]
        gappy += [rnd.random() < 0.5] * n   # a stretch offered with random gaps (each gap ends a run), or none
    dut = RunCoalescer(cfg)
    runs = []

    async def bench(ctx):
        i = 0
        while i < len(addrs) or ctx.get(dut.open):
            v = i < len(addrs) and (not gappy[i] or rnd.random() < 0.8)
            ctx.set(dut.valid, v)
            ctx.set(dut.waddr, addrs[i] if v else rnd.randrange(4096))
            if ctx.get(dut.run_valid):
                runs.append((ctx.get(dut.run.a), ctx.get(dut.run.n)))
            i += v
            await ctx.tick()

    run(dut, bench)
    flat = [(a + k) % 4096 for a, n in runs for k in range(n)]
    assert flat == addrs
    assert all(1 <= n <= RUN_MAX for _, n in runs) and any(n == RUN_MAX for _, n in runs)
    # a run ends where the next address does not continue it (or at RUN_MAX, or a gap)
    assert len(runs) < len(addrs) // 4


@pytest.mark.parametrize("lanes,wbits,dw", WIDTHS[:6])
def test_run_translator_requests_the_beats_a_run_spans(lanes, wbits, dw):
    cfg = ext(lanes=lanes, weight_bits=wbits, axi_data_bits=dw)
    rnd = random.Random(lanes + dw)
    wstart = 77
    runs = [(rnd.randrange(0, 4000), rnd.randrange(1, RUN_MAX + 1)) for _ in range(200)]
    dut = RunTranslator(cfg)
    reqs, descs = [], []

    async def bench(ctx):
        ctx.set(dut.wstart, wstart)
        i = 0
        for _ in range(2000):
            v = i < len(runs) and rnd.random() < 0.8
            ctx.set(dut.runs.valid, v)
            if i < len(runs):
                ctx.set(dut.runs.payload.a, runs[i][0])
                ctx.set(dut.runs.payload.n, runs[i][1])
            rr, dr = rnd.random() < 0.7, rnd.random() < 0.7
            ctx.set(dut.req.ready, rr)
            ctx.set(dut.desc.ready, dr)
            rv, dv = ctx.get(dut.req.valid), ctx.get(dut.desc.valid)
            assert (rv and rr) == (dv and dr)   # handed on together
            if rv and rr:
                reqs.append((ctx.get(dut.req.payload.beat), ctx.get(dut.req.payload.n)))
                descs.append((ctx.get(dut.desc.payload.offset), ctx.get(dut.desc.payload.n), ctx.get(dut.desc.payload.beats)))
            i += bool(v and ctx.get(dut.runs.ready))
            await ctx.tick()

    run(dut, bench)
    want = [run_beats(cfg, a, n) for a, n in runs]
    assert reqs == [(wstart + f, nb) for f, nb, _ in want]
    assert descs == [(off, n, nb) for (_, nb, off), (_, n) in zip(want, runs)]


class Subordinate:
    """A Python AXI4 read subordinate for the Amaranth simulator: random ARREADY, a latency of its own per
    burst, random R gaps, RVALID held until taken; memory[beat] = data; bad: beat -> RRESP."""

    def __init__(self, axi, beat_bytes, memory, rnd, latency=(1, 30), ar_p=0.6, r_p=0.7, bad=None):
        self.axi, self.B, self.memory, self.rnd = axi, beat_bytes, memory, rnd
        self.latency, self.ar_p, self.r_p, self.bad = latency, ar_p, r_p, bad or {}
        self.bursts, self.log, self.max_out, self.violations = [], [], 0, []

    async def process(self, ctx):
        axi, queue, cur, t = self.axi, [], None, 0
        arready = rvalid = False
        held = None   # the AR offered at the last edge and not taken
        async for _, _, arv, addr, ln, size, burst, rready in ctx.tick().sample(
                axi.arvalid, axi.araddr, axi.arlen, axi.arsize, axi.arburst, axi.rready):
            t += 1
            ar = (addr, ln, size, burst)
            if held is not None and (not arv or ar != held):
                self.violations.append(("AR changed or dropped", held, arv, ar))
            if arv and arready:
                self.bursts.append((addr, ln + 1))
                queue.append([t + self.rnd.randint(*self.latency), addr, ln + 1])
                held = None
            else:
                held = ar if arv else None
            if rvalid and rready:
                rvalid = False
            self.max_out = max(self.max_out, len(queue) + (cur is not None))
            arready = self.rnd.random() < self.ar_p
            ctx.set(axi.arready, arready)
            if not rvalid:
                if cur is None and queue and queue[0][0] <= t:
                    cur = queue.pop(0)
                if cur is not None and self.rnd.random() < self.r_p:
                    a = cur[1]
                    rvalid = True
                    ctx.set(axi.rdata, self.memory.get(a // self.B, 0))
                    ctx.set(axi.rresp, self.bad.get(a // self.B, 0))
                    ctx.set(axi.rlast, cur[2] == 1)
                    cur[1] += self.B
                    cur[2] -= 1
                    if cur[2] == 0:
                        cur = None
            ctx.set(axi.rvalid, rvalid)


@pytest.mark.parametrize("dw,maxb,outs,seed,bias_words", [(64, 16, 2, 1, 64), (128, 32, 8, 2, 64), (256, 256, 4, 3, 1024)])
def test_burst_reader_splits_requests_into_legal_bursts_and_returns_the_data(dw, maxb, outs, seed, bias_words):
    cfg = ext(lanes=4, axi_data_bits=dw, axi_max_burst=maxb, axi_outstanding=outs, fetch_beats=max(64, 2 * maxb),
              max_bias_words=bias_words)
    B = dw // 8
    rnd = random.Random(seed)
    base = 4096 * 3 + 5 * B
    nmax = (1 << request_layout(cfg)["n"].width) - 1   # a request is a run's beats, or the biases'
    assert nmax >= 2 * maxb
    reqs = [(rnd.randrange(0, 2000), rnd.choice([1, 2, rnd.randrange(1, 40), nmax])) for _ in range(40)]
    memory = {base // B + k: rnd.getrandbits(dw) for k in range(2000 + nmax)}
    bad_beat = base // B + reqs[7][0] + reqs[7][1] // 2
    dut = BurstReader(cfg)
    sub = Subordinate(dut.axi, B, memory, rnd, bad={bad_beat: 2, bad_beat + 1: 3})
    got = []
    want = [memory[base // B + b + k] for b, n in reqs for k in range(n)]

    async def bench(ctx):
        ctx.set(dut.base, base)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        i = 0
        for _ in range(60 * len(want) + 500):
            v = i < len(reqs) and rnd.random() < 0.5
            ctx.set(dut.req.valid, v)
            if i < len(reqs):
                ctx.set(dut.req.payload.beat, reqs[i][0])
                ctx.set(dut.req.payload.n, reqs[i][1])
            br = rnd.random() < 0.6
            ctx.set(dut.beats.ready, br)
            if br and ctx.get(dut.beats.valid):
                got.append(ctx.get(dut.beats.payload))
            i += bool(v and ctx.get(dut.req.ready))
            await ctx.tick()
            if len(got) == len(want) and not ctx.get(dut.busy):
                break
        assert ctx.get(dut.error) == 2 and ctx.get(dut.error_addr) == bad_beat * B   # the first bad beat only

    run(dut, bench, processes=[sub.process])
    assert got == want
    assert not sub.violations, sub.violations[:3]
    for addr, n in sub.bursts:
        assert addr % B == 0 and 1 <= n <= maxb and addr // 4096 == (addr + n * B - 1) // 4096
    assert sum(n for _, n in sub.bursts) == len(want)
    assert 2 <= sub.max_out <= outs


def test_bias_loader_writes_every_bias_word():
    cfg = ext(lanes=4, acc_bits=40, axi_data_bits=64)   # 160-bit words: 3 beats each
    K = cfg.bias_beats
    assert K == 3
    rnd = random.Random(9)
    n = 11
    words = [rnd.getrandbits(160) for _ in range(n)]
    beats = [(w >> (64 * k)) & ((1 << 64) - 1) for w in words for k in range(K)]
    dut = BiasLoader(cfg)
    writes, asked = [], []

    async def bench(ctx):
        assert ctx.get(dut.ready)   # idle after reset
        ctx.set(dut.words, n)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        bi = 0
        for _ in range(400):
            if ctx.get(dut.req.valid):
                asked.append((ctx.get(dut.req.payload.beat), ctx.get(dut.req.payload.n)))
            ctx.set(dut.req.ready, 1)
            bv = bool(asked) and bi < len(beats) and rnd.random() < 0.6
            ctx.set(dut.beats.valid, bv)
            ctx.set(dut.beats.payload, beats[bi] if bi < len(beats) else 0)
            en = ctx.get(dut.wr_en)
            if en:
                assert en & (en - 1) == 0   # one slice a beat
                writes.append((ctx.get(dut.wr_addr), en.bit_length() - 1, ctx.get(dut.wr_data)))
            bi += bool(bv and ctx.get(dut.beats.ready))
            await ctx.tick()
        assert ctx.get(dut.ready)

    run(dut, bench)
    assert asked == [(0, n * K)]
    assert writes == [(i, k, (w >> (64 * k)) & ((1 << 64) - 1)) for i, w in enumerate(words) for k in range(K)]


# ---- the memory model --------------------------------------------------------------------------------

def memory_bench(dut, store, ar_list, rnd, rready_p=1.0, cycles=3000, settings=None, on_cycle=None):
    """Drive AxiMemory as a manager that offers each AR of ar_list in turn (held until taken) and takes beats
    with probability rready_p; store: the memory array behind rd_addr. Returns (beats (cycle, data, resp,
    last), AR handshake cycles) and the model's counters, into out."""
    out = {"beats": [], "ar": []}
    st = dict(latency=0, bw16=0, ar_stall=0, r_stall=0, size=len(store) * (dut.data_bits // 8), err_lo=0, err_hi=0)
    st.update(settings or {})

    async def bench(ctx):
        for k, v in st.items():
            ctx.set(getattr(dut, k), v)
        ctx.set(dut.start, 1)
        await ctx.tick().repeat(2)
        ctx.set(dut.start, 0)
        i = 0
        for t in range(cycles):
            if on_cycle is not None:
                i = on_cycle(ctx, t, i)
            else:
                if i < len(ar_list):
                    addr, ln = ar_list[i]
                    ctx.set(dut.axi.arvalid, 1)
                    ctx.set(dut.axi.araddr, addr)
                    ctx.set(dut.axi.arlen, ln - 1)
                    ctx.set(dut.axi.arsize, (dut.data_bits // 8).bit_length() - 1)
                    ctx.set(dut.axi.arburst, 1)
                    if ctx.get(dut.axi.arready):
                        out["ar"].append(t)
                        i += 1
                else:
                    ctx.set(dut.axi.arvalid, 0)
            rr = rnd.random() < rready_p
            ctx.set(dut.axi.rready, rr)
            if rr and ctx.get(dut.axi.rvalid):
                out["beats"].append((t, ctx.get(dut.axi.rdata), ctx.get(dut.axi.rresp), ctx.get(dut.axi.rlast)))
            await ctx.tick()
        for k in ("violations", "first_violation", "bursts", "beats_requested", "beats_sent"):
            out[k] = ctx.get(getattr(dut, k))

    return bench, out


class SyncRead:
    """The testbench's memory behind AxiMemory's read port: rd_data is the word at last cycle's rd_addr."""

    def __init__(self, dut, store):
        self.dut, self.store = dut, store

    async def process(self, ctx):
        async for _, _, addr in ctx.tick().sample(self.dut.rd_addr):
            ctx.set(self.dut.rd_data, self.store[addr % len(self.store)])


@pytest.mark.parametrize("latency,bw,seed", [(0, None, 1), (25, None, 2), (40, 3.5, 3), (200, 8, 4)])
def test_memory_model_answers_with_its_latency_and_bandwidth(latency, bw, seed):
    rnd = random.Random(seed)
    DW, B = 128, 16
    store = [rnd.getrandbits(DW) for _ in range(1024)]
    ars = [(256 * B, 16), (300 * B, 1), (1000 * B, 24), (64 * B, 8)]   # the last ends past size: DECERR
    dut = AxiMemory(DW, len(store))
    bench, out = memory_bench(dut, store, ars, rnd, rready_p=0.8, settings=dict(
        latency=latency, bw16=0 if bw is None else int(16 * bw), size=1020 * B, err_lo=301 * B, err_hi=302 * B))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(SyncRead(dut, store).process)
    sim.run()
    beats = out["beats"]
    want = [(a // B + k) for a, n in ars for k in range(n)]
    assert [d for _, d, _, _ in beats] == [store[w] for w in want]
    assert [r for _, _, r, _ in beats] == [3 if w >= 1020 else 0 for w in want]   # past size: DECERR
    assert [l for _, _, _, l in beats] == [k == n - 1 for a, n in ars for k in range(n)]
    first_of = [sum(n for _, n in ars[:i]) for i in range(len(ars))]
    for i, t_ar in enumerate(out["ar"]):   # no burst's first beat before its latency
        assert beats[first_of[i]][0] - t_ar >= latency
    if bw is not None:   # beats spread by the bandwidth: over any stretch, at most bw bytes a cycle (+ the bucket)
        ts = [t for t, _, _, _ in beats]
        for i in range(len(ts) - 10):
            assert (ts[i + 10] - ts[i]) * bw + 2 * B >= 10 * B
    assert out["violations"] == 0 and out["bursts"] == len(ars)
    assert out["beats_requested"] == out["beats_sent"] == len(want)


def test_memory_model_flags_a_slave_error_range():
    rnd = random.Random(7)
    store = [rnd.getrandbits(64) for _ in range(256)]
    dut = AxiMemory(64, len(store))
    bench, out = memory_bench(dut, store, [(8 * 10, 4)], rnd, cycles=200,
                              settings=dict(err_lo=8 * 11, err_hi=8 * 13))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(SyncRead(dut, store).process)
    sim.run()
    assert [r for _, _, r, _ in out["beats"]] == [0, 2, 2, 0]


@pytest.mark.parametrize("violation", [v for v in Violation if v != Violation.NONE])
def test_memory_model_catches_each_protocol_violation(violation):
    rnd = random.Random(int(violation))
    store = [0] * 1024
    dut = AxiMemory(64, len(store))
    good = dict(addr=8 * 16, ln=4, size=3, burst=1)
    bad = dict(good)
    if violation == Violation.CROSSES_4K:
        bad["addr"] = 4096 - 16
    elif violation == Violation.ARSIZE:
        bad["size"] = 2
    elif violation == Violation.ARBURST:
        bad["burst"] = 2
    elif violation == Violation.UNALIGNED:
        bad["addr"] = 8 * 16 + 4

    def on_cycle(ctx, t, i):
        ar = bad if violation not in (Violation.ARVALID_DROPPED, Violation.AR_CHANGED) else good
        v = 1 if t < 40 else 0
        if violation in (Violation.ARVALID_DROPPED, Violation.AR_CHANGED):
            ctx.set(dut.ar_stall, 0xFFFF)   # ARREADY never rises: the manager must hold
            if t == 10:
                if violation == Violation.ARVALID_DROPPED:
                    v = 0
                else:
                    ar = dict(good, addr=good["addr"] + 8)
        ctx.set(dut.axi.arvalid, v)
        ctx.set(dut.axi.araddr, ar["addr"])
        ctx.set(dut.axi.arlen, ar["ln"] - 1)
        ctx.set(dut.axi.arsize, ar["size"])
        ctx.set(dut.axi.arburst, ar["burst"])
        return i

    bench, out = memory_bench(dut, store, [], rnd, cycles=60, on_cycle=on_cycle)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(SyncRead(dut, store).process)
    sim.run()
    assert out["violations"] >= 1 and out["first_violation"] == violation
