"""Batching: `TensorDataset` (arrays of equal length) and `DataLoader` (batches of them).

As PyTorch's DataLoader, the loader yields tensors (CPU tensors of the arrays' own dtypes:
float32 images stay float32, labels int64), so a training loop reads
``for data, target in loader: data = data.to(device)``. Shuffling is reproducible and resumable: epoch ``e`` uses
the permutation drawn from ``numpy.random.default_rng([seed, e])``, so the loader's whole
state is three integers (seed, epoch, batches already taken this epoch), which
`state_dict` returns and `load_state_dict` restores. A run stopped mid-epoch and resumed
from a checkpoint sees exactly the batches it would have seen.
"""
import math

import numpy as np

from .. import backend
from ..tensor import Tensor


class Dataset:
    """Base class of map-style datasets (PyTorch's ``torch.utils.data.Dataset``): define
    ``__len__`` and ``__getitem__(i)``; a ``DataLoader`` batches them."""

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Arrays that share their first dimension; ``ds[i]`` is the tuple of their i-th rows."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        arrays = tuple(a.numpy() if hasattr(a, "numpy") else np.asarray(a) for a in arrays)
        lengths = [len(a) if a.ndim else None for a in arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"TensorDataset: arrays must share their first dimension "
                             f"(the number of examples), got shapes {shapes}")
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    __getitems__ = __getitem__  # an index array gives a whole batch in one step


def _stack(values):
    """Examples (arrays, tensors, numbers) stacked into one batch tensor."""
    return Tensor(np.stack([np.asarray(v) for v in values]))


def default_collate(items):
    """A list of examples -> a batch: tuples of fields give a tuple of stacked tensors, single
    arrays (or numbers) one stacked tensor (PyTorch's default_collate, for these cases)."""
    if isinstance(items[0], (tuple, list)):
        return tuple(_stack(column) for column in zip(*items))
    return _stack(items)


def _as_batch(batch):
    """A batch fetched in one step: arrays become tensors (a tuple stays a tuple)."""
    if isinstance(batch, tuple):
        return tuple(b if isinstance(b, Tensor) else Tensor(np.asarray(b)) for b in batch)
    return batch if isinstance(batch, Tensor) else Tensor(np.asarray(batch))


def _fetch(dataset, index, collate_fn):
    """One batch from ``dataset``: in one step when it supports index arrays."""
    if collate_fn is None and hasattr(dataset, "__getitems__"):
        return _as_batch(dataset.__getitems__(index))
    return (collate_fn or default_collate)([dataset[int(i)] for i in index])


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``: each batch a tuple of tensors
    (one per field of an example), or a single tensor for a dataset of single arrays.

    ``dataset`` is anything with ``len`` and ``[i]`` (a `TensorDataset`, `FashionMNIST`
    ...), or a NumPy array / tensor (its rows are the examples), or a tuple/list of arrays
    (wrapped in a `TensorDataset`). Each ``for batch in loader`` is one epoch. ``shuffle``
    draws a new permutation every epoch from ``seed`` (``seed=None``: a seed drawn from
    minigen's generator, so ``minigen.manual_seed`` fixes it). ``drop_last`` skips a last,
    smaller batch. ``collate_fn`` turns a list of examples into a batch (default: stack).
    ``num_workers`` and ``pin_memory`` are PyTorch's and are accepted without effect: the
    batches are gathered in this process by one fancy-indexing step.

    The loader remembers where it is: leaving a ``for`` loop early (or taking
    ``next(iter(loader))``) uses up those batches, and the next ``for`` loop continues the
    same epoch from there. That is what makes a resumed run see the same batches.
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, drop_last=False, seed=None,
                 num_workers=0, pin_memory=False, collate_fn=None):
        self.single = isinstance(dataset, np.ndarray) or hasattr(dataset, "numpy")
        if isinstance(dataset, (tuple, list)):
            dataset = TensorDataset(*dataset)
        elif self.single:
            dataset = TensorDataset(dataset)
        self.collate_fn = collate_fn
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(backend.rng("cpu").integers(2**63)) if seed is None else int(seed)
        self.epoch = 0   # epochs completed
        self.batch = 0   # batches already yielded in the current epoch

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch):
        """The example order of ``epoch``: a permutation (shuffle) or 0, 1, 2, ..."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        order, n_batches = self.order(self.epoch), len(self)
        if n_batches == 0:  # fewer examples than one batch with drop_last: an empty epoch
            self.epoch += 1
            return
        while self.batch < n_batches:
            start = self.batch * self.batch_size
            index = order[start:start + self.batch_size]
            # Move the counters before yielding: a checkpoint saved while this batch is
            # being used must say "resume after it" (and after the last one: next epoch).
            self.batch += 1
            if self.batch == n_batches:
                self.epoch, self.batch = self.epoch + 1, 0
                n_batches = 0  # ends the loop after this batch
            batch = _fetch(self.dataset, index, self.collate_fn)
            yield batch[0] if self.single and isinstance(batch, tuple) else batch

    def state_dict(self):
        """The loader's position as plain ints: enough to resume exactly."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state):
        batch = int(state["batch"])
        if not 0 <= batch < max(len(self), 1):
            raise ValueError(f"DataLoader.load_state_dict: batch {batch} is outside this "
                             f"loader's epoch of {len(self)} batches (another batch_size or "
                             f"dataset?)")
        self.seed, self.epoch, self.batch = int(state["seed"]), int(state["epoch"]), batch

    def __repr__(self):
        return (f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")
