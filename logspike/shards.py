"""A batch of inputs split into shards, run by local processes or on a Dask cluster, merged in input order.

A shard is a contiguous slice of the inputs; every shard runs the same job
(the golden model, or the RTL co-simulation of one build) and returns a dict of
per-input arrays. The merge concatenates them in shard order, so the merged
results are those of one run over all inputs, byte for byte: each input's
results depend on that input alone (SPEC section 5; the processor reloads
nothing between inferences and keeps no state across them).

Local shards run in a process pool. On a Dask cluster (`dask.distributed`,
the optional `cluster` extra) each worker runs shards as the scheduler hands
them out; a shard whose worker dies is run again on another (the scheduler's
own rescheduling), and the merge checks that every shard came back exactly once.
"""
from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

CONNECT_TIMEOUT_S = 10  # a scheduler address that does not answer within this is an error, not a hang


class ShardError(RuntimeError):
    """A sharded run cannot start or did not complete (one line, for the CLI)."""


def bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) slices of near-equal size covering range(n); at least one (empty if n = 0)."""
    shards = max(1, min(shards, n))
    edges = [round(i * n / shards) for i in range(shards + 1)]
    return [(edges[i], edges[i + 1]) for i in range(shards)]


def merge(parts: list[dict]) -> dict:
    """Per-input arrays of consecutive shards, concatenated in shard order."""
    keys = set(parts[0])
    for i, p in enumerate(parts):
        if set(p) != keys:
            raise ShardError(f"shard {i} returned keys {sorted(p)}, shard 0 {sorted(keys)}")
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def golden_shard(pkg, x) -> dict:
    from logspike.model import golden

    return golden.run(pkg, x)


def sim_job(cfg, pkg, mem=None) -> tuple:
    """The job of sim_shard: the build, the package, the external memory model's settings (external weights;
    None: hw.sim.ExternalMemory's defaults) and the Verilator model built here (a worker on another host,
    where that folder does not exist, builds or reuses its own)."""
    from logspike.hw.config import external_bytes, needs
    from logspike.hw.sim import ExternalMemory, build_harness, mem_words_for

    mem = mem or ExternalMemory()
    if cfg.external:
        n = needs(pkg, cfg.lanes, cfg.weight_align)
        return cfg, pkg, mem, str(build_harness(cfg, mem_words=mem_words_for(cfg, external_bytes(cfg, n["weight_words"], n["bias_words"]))))
    return cfg, pkg, mem, str(build_harness(cfg))


def sim_shard(job, x) -> dict:
    """One shard on the RTL: the results plus each inference's cycles."""
    from pathlib import Path

    from logspike.hw.sim import simulate

    cfg, pkg, mem, harness = job
    here = Path(harness) if Path(harness).is_dir() else None  # the folder name holds the design's hash
    res, cycles = simulate(cfg, pkg, x, harness_dir=here, mem=mem)
    res["cycles"] = np.asarray(cycles, dtype=np.int64)
    return res


def parse_cluster(spec: str) -> int:
    """'local:N' -> N workers."""
    kind, _, n = spec.partition(":")
    if kind != "local" or not n.isdigit() or int(n) < 1:
        raise ShardError(f"--cluster {spec!r}: must be local:N with N >= 1 workers (or use --scheduler ADDRESS)")
    return int(n)


def connect(scheduler: str | None = None, local_workers: int | None = None):
    """A dask.distributed Client: to the scheduler at ADDRESS, or to a new LocalCluster of N worker processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ShardError("a Dask cluster needs dask.distributed: pip install 'logspike[cluster]'") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as e:
            raise ShardError(f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                             f"({type(e).__name__})") from None
    cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster)


def close(client) -> None:
    """Close a Client from `connect`, and the LocalCluster it started, if any."""
    if client is None:
        return
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run(fn, job, x, jobs: int = 1, shard_size: int | None = None, client=None, progress: bool = True,
        desc: str = "images", on_shard=None) -> dict:
    """fn(job, x[start:stop]) over the shards of x, merged in input order.

    jobs: local processes (1: this process, no pool); client: a dask.distributed Client
    instead. shard_size: inputs per shard (default: one shard per local process, four per
    cluster worker). on_shard(done, total) is called after each shard arrives.
    """
    from tqdm import tqdm

    n = len(x)
    workers = jobs if client is None else max(1, len(client.scheduler_info().get("workers", {})))
    if shard_size is not None and shard_size < 1:
        raise ShardError(f"shard size {shard_size}: must be >= 1")
    if shard_size:
        spans = [(s, min(s + shard_size, n)) for s in range(0, max(n, 1), shard_size)]
    else:
        # local: one shard per process (a simulator start-up costs about a second per shard); on a
        # cluster four per worker, so a dead worker's shards are a small part of the run
        spans = bounds(n, workers if client is None else 4 * workers)
    bar = tqdm(total=n, desc=desc, unit="img", file=sys.stderr, disable=None if progress else True)
    parts: dict[int, dict] = {}

    def arrived(i, part):
        if i in parts:
            raise ShardError(f"shard {i} came back twice")
        parts[i] = part
        bar.update(spans[i][1] - spans[i][0])
        if on_shard is not None:
            on_shard(len(parts), len(spans))

    try:
        if client is not None:
            from dask.distributed import as_completed as dask_completed

            shared = client.scatter(job, broadcast=True)
            futs = {client.submit(fn, shared, x[a:b], pure=False): i for i, (a, b) in enumerate(spans)}
            for f in dask_completed(futs):
                arrived(futs[f], f.result())
        elif jobs <= 1 or len(spans) == 1:
            for i, (a, b) in enumerate(spans):
                arrived(i, fn(job, x[a:b]))
        else:
            # forkserver/spawn, not fork: a child forked after torch's OpenMP pool ran deadlocks in it
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                              else "spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                futs = {pool.submit(fn, job, x[a:b]): i for i, (a, b) in enumerate(spans)}
                for f in as_completed(futs):
                    arrived(futs[f], f.result())
    finally:
        bar.close()
    missing = [i for i in range(len(spans)) if i not in parts]
    if missing:
        raise ShardError(f"shards {missing} never came back")
    return merge([parts[i] for i in range(len(spans))])
