"""A training run's folder: metrics log, atomic checkpoints, figures, progress bars.

Every ``minigen train ...`` command writes into one folder::

    runs/vae/
        checkpoint.npz    the latest state (model, optimizer, RNG, epoch), written atomically
        metrics.json      one record per epoch (also metrics.csv, for a spreadsheet)
        *.png             figures

so a killed run loses at most the epoch in progress, and ``--resume`` continues from
the checkpoint.
"""
import csv
import json
import os
import sys

from tqdm.auto import tqdm


class CLIError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


class Run:
    """The folder of one training run."""

    CHECKPOINT = "checkpoint.npz"

    def __init__(self, out, resume=False):
        self.out = os.path.abspath(out)
        try:
            os.makedirs(self.out, exist_ok=True)
        except OSError as e:
            raise CLIError(f"cannot create output folder {self.out}: {e.strerror}") from None
        if not os.access(self.out, os.W_OK):
            raise CLIError(f"output folder {self.out} is not writable")
        self.history = []
        if resume and os.path.exists(self.path("metrics.json")):
            with open(self.path("metrics.json")) as f:
                self.history = json.load(f)

    def path(self, name):
        return os.path.join(self.out, name)

    # ------------------------------------------------------------ metrics
    def log(self, **record):
        """Append one epoch's numbers to metrics.json and metrics.csv (both rewritten whole)."""
        self.history.append({k: _plain(v) for k, v in record.items()})
        _atomic_write(self.path("metrics.json"), json.dumps(self.history, indent=1))
        keys = list(dict.fromkeys(k for r in self.history for k in r))
        tmp = self.path("metrics.csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        os.replace(tmp, self.path("metrics.csv"))

    def series(self, key):
        """One metric over the logged epochs (for loss curves)."""
        return [r[key] for r in self.history if key in r]

    # ------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self):
        return self.path(self.CHECKPOINT)

    def save_checkpoint(self, state):
        from .serialization import save
        save(state, self.checkpoint_path)

    def load_checkpoint(self):
        from .serialization import load
        if not os.path.exists(self.checkpoint_path):
            raise CLIError(f"--resume: no checkpoint in {self.out} (expected {self.CHECKPOINT})")
        return load(self.checkpoint_path)


def progress(iterable=None, total=None, desc=None, leave=False):
    """A tqdm progress bar on stderr; silent when stderr is not a terminal (CI logs stay short)."""
    return tqdm(iterable, total=total, desc=desc, leave=leave, dynamic_ncols=True,
                disable=not sys.stderr.isatty(), file=sys.stderr)


def resolve_checkpoint(path):
    """A run folder or a checkpoint file -> the checkpoint file, or a clear error."""
    if os.path.isdir(path):
        path = os.path.join(path, Run.CHECKPOINT)
    if not os.path.isfile(path):
        raise CLIError(f"no checkpoint at {path}")
    return path


def _plain(v):
    """NumPy scalars -> Python numbers, so JSON can hold them."""
    return v.item() if hasattr(v, "item") else v


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
