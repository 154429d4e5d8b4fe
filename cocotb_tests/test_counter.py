"""The split event counter (hw/counter.py) against a plain count, across many wraps of its low half."""
import random

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from logspike.hw.counter import split_counter


def test_split_counter_counts_across_wraps():
    half = 3   # 6-bit counter: the low half wraps every 8 pulses
    m = Module()
    inc, clear = Signal(), Signal()
    out = split_counter(m, inc, clear, "c", half=half)
    rng = random.Random(1)
    seen = []

    async def bench(ctx):
        want = 0
        for cycle in range(600):
            if cycle in (0, 333):
                ctx.set(clear, 1)
                ctx.set(inc, 0)
                await ctx.tick()
                ctx.set(clear, 0)
                want = 0
            pulse = rng.random() < 0.7
            ctx.set(inc, pulse)
            await ctx.tick()
            want = (want + pulse) % (1 << (2 * half))
            if rng.random() < 0.2:   # the count is read one idle cycle after the last pulse
                ctx.set(inc, 0)
                await ctx.tick()
                seen.append((ctx.get(out), want))
        assert seen and all(got == w for got, w in seen), [s for s in seen if s[0] != s[1]][:5]
        assert max(w for _, w in seen) >= 1 << half   # the high half was used

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
