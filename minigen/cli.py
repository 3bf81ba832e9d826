"""The ``minigen`` command: ``minigen train MODEL ...``, ``minigen sample RUN ...``,
``minigen eval RUN ...``, ``minigen exercises ...``.

Errors a user can cause (unknown dataset, missing data, unwritable folder, a checkpoint of
another model, an option out of range) print one line and exit with status 2 -- never a
traceback. Every option of every command is checked by ``minigen.options`` (the parsers
are ``options.Parser``): numbers finite and in range, output paths writable.
"""
import os
import sys

from . import commands
from .options import Parser, apply_policy, output_file
from .runs import CLIError, resolve_checkpoint


def build_parser():
    parser = Parser(prog="minigen", description="generative models, by hand")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model; figures, metrics and checkpoints go to --out")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, module in commands.available().items():
        p = models.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.add_argument("--threads", type=int, default=None, metavar="N",
                       help="CPU threads for the kernels and BLAS (default: one per core; "
                            "1 is faster when other work keeps the cores busy)")
        p.set_defaults(handler=module.train)

    sample = sub.add_parser("sample", help="draw samples from a trained model's checkpoint")
    sample.add_argument("checkpoint", help="a run folder or its checkpoint.npz")
    sample.add_argument("-n", type=int, default=64, help="how many samples (default 64)")
    sample.add_argument("--out", default=None, type=output_file,
                        help="the file to write (default samples.png / samples.npy)")
    sample.add_argument("--format", default="png", choices=("png", "npy"),
                        help="png: a figure; npy: the raw samples, float32 (n, D), for your "
                             "own tools")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sample.set_defaults(handler=_sample)

    from .commands import evaluate
    ev = sub.add_parser("eval", help="score samples of trained runs: IS, FID, KID, precision, recall")
    evaluate.add_arguments(ev)
    ev.set_defaults(handler=evaluate.run)

    from .commands import exercises
    ex = sub.add_parser("exercises", help="gradient-checking exercises: list, start, check, "
                                          "solution")
    exercises.add_arguments(ex)
    return apply_policy(parser)


def _threads(args):
    """--threads N of `minigen train` (minigen/threads.py says when 1 is faster)."""
    if getattr(args, "threads", None) is not None:
        from .threads import set_num_threads
        set_num_threads(args.threads)


def _sample(args):
    from .serialization import load
    state = load(resolve_checkpoint(args.checkpoint))
    name = state.get("model")
    if name not in commands.MODELS:
        raise CLIError(f"{args.checkpoint}: not a minigen model checkpoint (model={name!r})")
    module = commands.load(name)
    if args.out is None:
        args.out = f"samples.{args.format}"
    if args.format == "npy":
        _save_npy(module, name, args, state)
        return
    if not hasattr(module, "sample"):
        raise CLIError(f"model {name!r} cannot draw samples")
    module.sample(args, state)


def _save_npy(module, name, args, state):
    """The raw samples of any model that follows the sampling contract (``draw``)."""
    import numpy as np
    if not hasattr(module, "draw"):
        raise CLIError(f"model {name!r} has no raw samples to write (no draw()); "
                       f"use --format png")
    samples = module.draw(state, args.n, seed=args.seed, device=args.device)
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    path = args.out if args.out.endswith(".npy") else args.out + ".npy"  # as np.save names it
    np.save(path, samples)
    print(f"wrote {samples.shape[0]} samples, array {samples.dtype} {samples.shape}, to {path}")


def main(argv=None):
    """Run the command line; MINIGEN_DEBUG=1 shows full tracebacks instead of one-line errors."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a refused option (2, its one line already printed)
        return e.code
    if os.environ.get("MINIGEN_DEBUG"):
        _threads(args)
        return args.handler(args) or 0
    try:
        _threads(args)
        status = args.handler(args)  # None, or an exit status (exercises check: 1 = failed)
    except KeyboardInterrupt:
        print("minigen: interrupted (the last finished epoch is in the checkpoint; use --resume)",
              file=sys.stderr)
        return 130
    except (CLIError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
        print(f"minigen: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # errors named by minigen itself (bad checkpoint, data) stay one line
        if type(e).__module__.startswith("minigen") or isinstance(e, (ValueError, OSError)):
            print(f"minigen: error: {e}", file=sys.stderr)
            return 2
        raise
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
