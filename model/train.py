"""Training: the float ReLU ANN, then conversion-aware fine-tuning (CAT).

Pipeline: train float (with batch norm) -> fold batch norm -> normalise to
power-of-two per-layer scales -> CAT fine-tune with log activations and log
weights. The folded, normalised float net is also what the no-CAT ablation
converts directly.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from .data import Dataset
from .nets import Net, build_spec, fold_batch_norm, normalise, to_cat
from .quant import QuantConfig


@dataclass
class TrainConfig:
    net: str = "cnn"
    epochs: int = 60
    cat_epochs: int = 40
    batch: int = 64
    lr: float = 3e-3
    cat_lr: float = 1e-3
    seed: int = 0


def accuracy(net: Net, x: np.ndarray, y: np.ndarray, batch: int = 512) -> float:
    net.eval()
    hits = 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            hits += int((net(torch.from_numpy(x[s:s + batch])).argmax(1).numpy() == y[s:s + batch]).sum())
    return hits / max(len(x), 1)


def run_epochs(net, x: np.ndarray, y: np.ndarray, loss_fn, epochs: int, lr: float, batch: int, seed: int, desc: str,
               val=None):
    """The one training loop (float ANN, CAT, directly trained SNN): Adam on shuffled mini-batches of the
    training arrays with cosine decay, loss_fn(net(x_batch), y_batch), and a progress bar with the loss.

    val: (x, y) of a validation split: the weights of the best validation epoch are kept, and the starting
    weights count as epoch 0, so fine-tuning never returns a net worse on validation than it started as.
    """
    g = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    best = (accuracy(net, *val), copy.deepcopy(net.state_dict())) if val is not None else None
    bar = tqdm(range(epochs), desc=desc, unit="ep", file=sys.stderr, leave=False, disable=None)
    for _ in bar:
        net.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for s in range(0, len(x), batch):
            idx = perm[s:s + batch]
            loss = loss_fn(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        post = {"loss": f"{total / len(x):.3f}"}
        if val is not None:
            acc = accuracy(net, *val)
            if acc > best[0]:
                best = (acc, copy.deepcopy(net.state_dict()))
            post.update(val=f"{acc:.3f}", best=f"{best[0]:.3f}")
        bar.set_postfix(post)
    if val is not None:
        net.load_state_dict(best[1])
    return net.eval()


def fit(net: Net, data: Dataset, epochs: int, lr: float, batch: int, seed: int, desc: str) -> Net:
    """Cross-entropy training of an ANN (float or CAT), keeping the best validation epoch when there is a
    validation split."""
    val = (data.val.x, data.val.y) if len(data.val) > 0 else None
    return run_epochs(net, data.train.x, data.train.y, torch.nn.functional.cross_entropy, epochs, lr, batch, seed,
                      desc, val)


def train_float(data: Dataset, cfg: TrainConfig) -> tuple[Net, Net, list[int]]:
    """Returns (float net with batch norm, folded and normalised float net, log2 scales)."""
    torch.manual_seed(cfg.seed)
    spec = build_spec(cfg.net, data.shape, data.classes)
    net = fit(Net(data.shape, spec), data, cfg.epochs, cfg.lr, cfg.batch, cfg.seed, f"float {cfg.net}")
    folded, log2s = fold_and_normalise(net, data.train.x)
    return net, folded, log2s


def fold_and_normalise(net: Net, images: np.ndarray, count: int = 2048) -> tuple[Net, list[int]]:
    """Batch norm folded into the weights, then activations normalised on the first `count` images:
    the float net conversion and CAT start from. Returns (net, log2 scales)."""
    return normalise(fold_batch_norm(net), torch.from_numpy(np.ascontiguousarray(images[:count], dtype=np.float32)))


def train_cat(folded: Net, data: Dataset, q: QuantConfig, cfg: TrainConfig) -> Net:
    torch.manual_seed(cfg.seed)
    return fit(to_cat(folded, q), data, cfg.cat_epochs, cfg.cat_lr, cfg.batch, cfg.seed, f"CAT {cfg.net}")
