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
import math
import os
import sys

from tqdm.auto import tqdm


class CLIError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


class NonFiniteLoss(CLIError):
    """Training stopped at the first NaN or infinite loss (see ``check_finite_loss``)."""


def check_finite_loss(value, epoch, step=None, name="loss"):
    """``value`` as a float, or stop training at the first NaN/inf.

    Every training loop calls it where it reads its loss, before the backward pass and the
    optimizer step -- so the weights that produced a finite loss are never overwritten::

        loss_value = check_finite_loss(loss.item(), epoch, step)
        loss.backward(); optimizer.step()

    (``step=None`` for a number read at the end of an epoch, e.g. the test loss, which is
    checked before the epoch's checkpoint is written.) The ``NonFiniteLoss`` raised is a
    ``CLIError``: one line, exit status 2, naming the epoch and step; checkpoints are only
    written after a finished epoch, so the last good one is untouched and ``--resume``
    continues from it.
    """
    value = float(value)
    if math.isfinite(value):
        return value
    where = f"epoch {epoch}, step {step}" if step is not None else f"the end of epoch {epoch}"
    raise NonFiniteLoss(
        f"the {name} became {value} at {where}: training stopped. The checkpoint of the last "
        f"finished epoch is untouched (continue with --resume, with a smaller --lr: a "
        f"learning rate too high is the usual cause); to find the op that first made a "
        f"non-finite number, run a step under `with minigen.detect_anomaly():`")


class Run:
    """The folder of one training run."""

    CHECKPOINT = "checkpoint.npz"

    def __init__(self, out, resume=False):
        from .options import path_problem
        self.out = os.path.abspath(out)
        problem = path_problem(self.out, folder=True)
        if problem:  # before any work: "F is a file, not a folder", not "[Errno 17] ..."
            raise CLIError(f"cannot create output folder {self.out}: {problem}")
        try:
            os.makedirs(self.out, exist_ok=True)
        except OSError as e:
            raise CLIError(f"cannot create output folder {self.out}: {e.strerror}") from None
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


def checkpoint_for_resume(run, model, config, keys):
    """The checkpoint in ``run`` for ``--resume``, after two checks that end in a one-line
    ``CLIError``: it was written by ``model`` (its ``"model"`` entry), and with the same
    values of ``keys`` as ``config`` (the settings a resumed run must share, e.g. the
    architecture), read from its JSON ``"config"``."""
    import json
    state = run.load_checkpoint()
    name = state.get("model")
    name = str(name.item() if hasattr(name, "item") else name)
    if name != model:
        raise CLIError(f"--resume: {run.checkpoint_path} is a checkpoint of model {name!r}, "
                       f"not {model!r}; use another --out")
    saved = state["config"]
    saved = json.loads(str(saved.item() if hasattr(saved, "item") else saved))
    differ = [f"{key} {saved.get(key)!r} (now {config[key]!r})" for key in keys
              if saved.get(key) != config[key]]
    if differ:
        raise CLIError(f"--resume: the run in {run.out} was trained with other settings: "
                       f"{'; '.join(differ)}")
    return state


def announce_resume(run, done, epochs):
    """After ``--resume`` restored ``done`` epochs: True (and says so) when epochs are left to
    train up to ``epochs``; False, saying there is nothing to do, when the run is finished."""
    if done >= epochs:
        print(f"{run.out}: already trained for {done} epochs (--epochs {epochs}); nothing to do")
        return False
    print(f"resuming {run.out} after epoch {done}")
    return True


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
