"""``minigen exercises``: the gradient-checking exercises (``minigen.exercises``).

    minigen exercises list [--dir DIR] [--names]   # the ladder; done / not done in DIR
    minigen exercises start NAME [--dir DIR]       # the stub, to DIR/NAME.py
    minigen exercises show NAME                    # the statement, the source, the hint
    minigen exercises check FILE                   # gradcheck, gradgradcheck, hypothesis, torch
    minigen exercises solution NAME                # the library's code, as a file check accepts

``check`` exits with status 0 only when every check passes (1 otherwise) and records the
pass in DIR/.minigen-exercises.json (the file's SHA-256), which ``list`` reads: an exercise
is done while its file is the one that passed.
"""
import hashlib
import json
import os

from ..options import count, output_folder
from ..runs import CLIError, _atomic_write

DONE_FILE = ".minigen-exercises.json"


def add_arguments(p):
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="the exercises in order, with a done mark for --dir")
    ls.add_argument("--dir", default=".", help="the working folder (default: here)")
    ls.add_argument("--names", action="store_true", help="only the names, one a line")
    ls.set_defaults(handler=list_exercises)

    start = sub.add_parser("start", help="copy an exercise's stub to DIR/NAME.py")
    start.add_argument("name", metavar="NAME")
    start.add_argument("--dir", default=".", type=output_folder,
                       help="where to write NAME.py (default: here; created if needed)")
    start.add_argument("--force", action="store_true", help="overwrite an existing NAME.py")
    start.set_defaults(handler=start_exercise)

    show = sub.add_parser("show", help="print an exercise's statement, source and hint")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(handler=show_exercise)

    check = sub.add_parser("check", help="check a solution file; exit status 0 when it passes")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--examples", type=count, default=20,
                       help="examples per hypothesis property run (default 20)")
    check.add_argument("--seed", type=int, default=0, help="the checks' seed (default 0)")
    check.set_defaults(handler=check_exercise)

    solution = sub.add_parser("solution", help="print the reference solution (the library's code)")
    solution.add_argument("name", metavar="NAME")
    solution.set_defaults(handler=print_solution)


def _exercise(name):
    from ..exercises import ExerciseError, get
    try:
        return get(name)
    except ExerciseError as e:
        raise CLIError(str(e)) from None


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _done(folder):
    """name -> SHA-256 of the file that last passed ``check`` in ``folder``."""
    path = os.path.join(folder, DONE_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def status(folder, name):
    """"done" (NAME.py passed check as it is now), "started" (NAME.py exists) or ""."""
    path = os.path.join(folder, f"{name}.py")
    if not os.path.isfile(path):
        return ""
    return "done" if _done(folder).get(name) == _digest(path) else "started"


def list_exercises(args):
    from ..exercises import exercises
    if args.names:
        print("\n".join(e.name for e in exercises()))
        return
    if not os.path.isdir(args.dir):
        raise CLIError(f"--dir {args.dir}: no such folder")
    marks = {"done": "[x]", "started": "[~]", "": "[ ]"}
    rows = [(e, status(args.dir, e.name)) for e in exercises()]
    width = max(len(e.name) for e, _ in rows)
    for e, state in rows:
        print(f"{e.number:2d} {marks[state]} {e.name:<{width}}  {e.title}")
    done = sum(state == "done" for _, state in rows)
    print(f"\n{done} of {len(rows)} done in {os.path.abspath(args.dir)} "
          f"([x] done, [~] started, [ ] not started)")
    print("start one: minigen exercises start NAME --dir DIR")


def start_exercise(args):
    exercise = _exercise(args.name)
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"{exercise.name}.py")
    if os.path.exists(path) and not args.force:
        raise CLIError(f"{path} exists (your work?); --force overwrites it")
    _atomic_write(path, exercise.stub_text())
    print(f"wrote {path}: exercise {exercise.number}/{exercise.total}, {exercise.title}; "
          f"you write {exercise.writes}")
    print(f"check it: minigen exercises check {path}")


def show_exercise(args):
    print(_exercise(args.name).describe())


def check_exercise(args):
    from ..exercises import ExerciseError
    from ..exercises.checker import check_file
    try:
        verdict = check_file(args.file, max_examples=args.examples, seed=args.seed)
    except ExerciseError as e:
        raise CLIError(str(e)) from None
    print(verdict)
    if not verdict.ok:
        return 1
    _record_pass(args.file, verdict.name)
    return 0


def _record_pass(path, name):
    """Remember that this file, as it is now, passed (``list`` marks it done)."""
    folder = os.path.dirname(os.path.abspath(path))
    done = _done(folder)
    done[name] = _digest(path)
    try:
        _atomic_write(os.path.join(folder, DONE_FILE), json.dumps(done, indent=1) + "\n")
    except OSError:  # a read-only folder: the check passed all the same
        pass


def print_solution(args):
    print(_exercise(args.name).solution_text(), end="")
