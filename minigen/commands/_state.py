"""What the commands of several networks trained together (aae, vaegan, catvae) share: the
checkpoint of a run and its exact resume, the per-iteration trace, rebuilding a model for
``draw``.

A checkpoint holds ``"model": NAME``, the JSON ``"config"``, the epoch, every network's and
every optimizer's state dict under its own key, minigen's random generator, the data loader's
position, the metrics history and the trace: all a resumed run needs to continue bit for bit.
"""
import json

import numpy as np

import minigen as mg

from ..runs import CLIError, announce_resume
from ._classical import text
from .gan import _one_line


def config_of(state):
    return json.loads(text(state["config"]))


def checkpoint_state(name, config, epoch, run, loader, modules, optimizers, trace=None,
                     **extra):
    """The dict ``run.save_checkpoint`` writes. ``modules`` / ``optimizers``: {key: object}."""
    state = {"model": name, "config": json.dumps(config), "epoch": epoch,
             # the generator state holds 128-bit integers: JSON keeps them exactly
             "rng": json.dumps(mg.get_rng_state()), "loader": loader.state_dict(),
             "history": json.dumps(run.history)}
    state.update({key: m.state_dict() for key, m in modules.items()})
    state.update({key: o.state_dict() for key, o in optimizers.items()})
    if trace is not None:
        state["trace"] = {k: np.asarray(v, dtype=np.float64) for k, v in trace.items()}
    state.update(extra)
    return state


def restore(run, name, config, keys, loader, modules, optimizers):
    """Load the checkpoint in ``run`` into fresh objects after checking that it is a ``name``
    checkpoint trained with the same ``keys`` of ``config``; returns the checkpoint (its
    ``epoch``, ``trace`` and extras are the caller's to read)."""
    state = run.load_checkpoint()
    where = run.checkpoint_path
    if text(state.get("model")) != name:
        raise CLIError(f"--resume: {where} is a checkpoint of model "
                       f"{text(state.get('model'))!r}, not {name!r}; use another --out")
    saved = config_of(state)
    differ = [f"{key} {saved.get(key)!r} (now {config[key]!r})" for key in keys
              if saved.get(key) != config[key]]
    if differ:
        raise CLIError(f"--resume: the run in {run.out} was trained with other settings: "
                       f"{'; '.join(differ)}")
    try:
        for key, m in modules.items():
            m.load_state_dict(state[key])
        for key, o in optimizers.items():
            o.load_state_dict(state[key])
        loader.load_state_dict(state["loader"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CLIError(f"--resume: {where} does not fit these networks ({_one_line(e)})") from None
    mg.set_rng_state(json.loads(text(state["rng"])))
    run.history = json.loads(text(state["history"]))
    return state


def trace_from(state):
    """The per-iteration curves of a checkpoint, as lists of floats."""
    return {k: [float(v) for v in np.asarray(a)] for k, a in state.get("trace", {}).items()}


def record_trace(trace, numbers, step):
    """Append one iteration's numbers (a dict of floats) and its step number to ``trace``."""
    for key, value in numbers.items():
        trace.setdefault(key, []).append(value)
    trace.setdefault("step", []).append(step)


def rebuild(state, name, where, build, keys):
    """(networks, config) of a ``name`` checkpoint: ``build(config)`` makes the networks (a
    tuple), ``keys`` names the checkpoint entry of each; minigen's random stream is left as it
    was (building draws initial weights). A clear CLIError for anything else."""
    if text(state.get("model")) != name:
        raise CLIError(f"{where}: checkpoint is of model {text(state.get('model'))!r}, "
                       f"not {name!r}")
    rng_state = mg.get_rng_state()
    try:
        config = config_of(state)
        nets = build(config)
        for net, key in zip(nets, keys):
            net.load_state_dict(state[key])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CLIError(f"{where}: not a usable {name} checkpoint ({_one_line(e)})") from None
    finally:
        mg.set_rng_state(rng_state)
    return nets, config


def to_device(device, *nets):
    device = mg.backend.check_device(device)
    if device != "cpu":
        for net in nets:
            net.to(device)
    return device


def image_shape(state):
    """(C, H, W) of the images a checkpoint's model decodes (the sampling contract)."""
    return tuple(config_of(state)["image_shape"])


def sample_grid(args, state, draw):
    """``minigen sample RUN -n N --out FILE.png`` for a model with ``draw``: a square grid."""
    import math

    from .. import viz
    images = draw(state, args.n, seed=args.seed, device=args.device)
    viz.save_image_grid(images, args.out, nrow=int(math.ceil(math.sqrt(args.n))),
                        image_shape=image_shape(state))
    print(f"wrote {args.n} samples to {args.out}")


# ============================================================== the run loop
def add_run_arguments(p, name):
    """The options every one of these commands has: figures, subset, device, seed, folder."""
    from ..options import natural
    p.add_argument("--figures-every", type=natural, default=1, metavar="N",
                   help="redraw the figures every N epochs and after the last (0: none)")
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training and test images (quick trials)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=f"runs/{name}", help=f"run folder (default runs/{name})")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out up to --epochs")


def check_batch(n, batch_size):
    if n < batch_size:
        raise CLIError(f"{n} training images are fewer than one batch of {batch_size}; "
                       f"lower --batch-size")


def start_or_resume(run, args, name, config, keys, loader, modules, optimizers, describe):
    """(first epoch to train, steps so far, trace): (1, 0, {}) for a new run, after printing
    ``describe``; the checkpoint's for ``--resume``. None when the run is already done."""
    if not args.resume:
        print(describe)
        return 1, 0, {}
    state = restore(run, name, config, keys, loader, modules, optimizers)
    done = int(state["epoch"])
    if not announce_resume(run, done, args.epochs):
        return None
    return done + 1, int(state["steps"]), trace_from(state)


def run_epochs(run, args, first, epoch, checkpoint, figures, line):
    """Epochs ``first`` .. ``args.epochs``: ``epoch(n)`` trains and evaluates (a dict of
    numbers), then the record is logged, ``checkpoint(n)`` saved, ``line(record)`` printed
    and, every ``--figures-every`` epochs and after the last, ``figures()`` drawn."""
    import time
    written = []
    for n in range(first, args.epochs + 1):
        t0 = time.perf_counter()
        record = {"epoch": n, **epoch(n)}
        record["seconds"] = time.perf_counter() - t0
        run.log(**record)
        run.save_checkpoint(checkpoint(n))
        print(line(record), flush=True)
        every = args.figures_every
        if every > 0 and (n == args.epochs or n % every == 0):
            written = figures()
    if written:
        print(f"figures in {run.out}/: {', '.join(written)}")
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def train_batches(loader, step, trace, steps, epoch, desc, shown):
    """One pass over ``loader``: ``step(x, y, steps)`` (``steps``: the steps taken before it)
    returns the batch's numbers as scalar Tensors.
    They become floats in this one place (``check_finite_loss``: a NaN stops the run here),
    are averaged over the epoch (as ``train_<name>``), recorded in ``trace`` about 100 times an
    epoch, and ``shown`` ({label: (name, format)}) on the progress bar. Returns (the means,
    the step count)."""
    from ..runs import check_finite_loss, progress
    every = max(1, len(loader) // 100)
    sums, count = {}, 0
    bar = progress(loader, total=len(loader), desc=desc)
    for i, (xb, yb) in enumerate(bar, 1):
        out = step(xb, yb, steps)
        numbers = {key: check_finite_loss(value.item(), epoch, i, name=key)
                   for key, value in out.items()}
        steps += 1
        count += 1
        for key, value in numbers.items():
            sums[key] = sums.get(key, 0.0) + value
        if steps % every == 0:
            record_trace(trace, numbers, steps)
            bar.set_postfix({label: fmt.format(numbers[key])
                             for label, (key, fmt) in shown.items()})
    return {f"train_{key}": total / max(count, 1) for key, total in sums.items()}, steps
