"""Wide event counters split in two, so no long carry chain sits in one cycle."""
from amaranth.hdl import Cat, Module, Signal


def split_counter(m: Module, inc, clear, name: str, half: int = 16):
    """A 2 * half-bit counter of `inc` pulses (zeroed by `clear`) as two halves, the carry between them
    registered: a 32-bit increment was a late path in the 16-lane build. After the low half wraps, the high
    half lags by one cycle; the processor reads these counts at the END beat, long after the last
    increment (cocotb_tests/test_counter.py checks the value one cycle after the last pulse)."""
    lo, hi, cy = Signal(half, name=f"{name}_lo"), Signal(half, name=f"{name}_hi"), Signal(name=f"{name}_cy")
    with m.If(clear):
        m.d.sync += [lo.eq(0), hi.eq(0), cy.eq(0)]
    with m.Else():
        m.d.sync += [lo.eq(lo + inc), cy.eq(inc & (lo == (1 << half) - 1)), hi.eq(hi + cy)]
    return Cat(lo, hi)
