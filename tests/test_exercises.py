"""The gradient-checking exercises (minigen.exercises, `minigen exercises ...`).

Every exercise's reference solution passes `exercises check`; every stub says "not
implemented"; and for every exercise at least two planted bugs (a wrong sign, a dropped term, a
missing unbroadcast, a backward on raw arrays where double backward is needed, an unstable
forward, a hard-coded axis...) each make the check fail, naming the check that failed and the
entry (a Jacobian entry with analytic and numerical values, or an output entry with both
values). The three NumPy exercises are checked with a student-style solution written here.
"""
import os
import re
import subprocess
import sys

import pytest

from minigen.cli import main
from minigen.exercises import ExerciseError, exercises, get, names
from minigen.exercises.checker import check_file

EXAMPLES = 5  # hypothesis examples per property run: tiny and quick; the CLI's default is 20
# a bug only the sweep can find gets the CLI's 20 examples: hypothesis's choice of examples
# depends on the modules loaded (it mines their constants), so 5 may miss it in the full suite
SWEEP_EXAMPLES = 20

# the entry a failure names: a Jacobian entry with both values, or an output entry with both
JACOBIAN = re.compile(r"entry\s+d .+ / d .+\]\n\s+analytic\s+= \S+\n\s+numerical = \S+")
VALUES = re.compile(r"\S+(\[[\d, ]+\])?: yours \S+, (minigen's|the closed form|the reference) "
                    r"\S+")
OP_VALUES = re.compile(r"output(\[[\d, ]+\])?: the op \S+, the reference \S+")
RAISED = re.compile(r"inputs of shapes \(.*\n.*raised ValueError.*\n\s+raised at \w+\.py, line \d+")
BACKWARD = re.compile(r"for input \d \(\w+\)|input \d \(\w+\)")

# ------------------------------------------------------------------ student-style answers
STUDENT = {
    "rbm_cd1": '''
import numpy as np

EXERCISE = "rbm_cd1"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cd1_update(v0, W, a, b, u):
    n = len(v0)
    ph0 = sigmoid(b + v0 @ W)
    h0 = (u < ph0).astype(float)
    v1 = sigmoid(a + h0 @ W.T)
    ph1 = sigmoid(b + v1 @ W)
    dW = (v0.T @ ph0 - v1.T @ ph1) / n
    return dW, (v0 - v1).mean(0), (ph0 - ph1).mean(0)
''',
    "som_update": '''
import numpy as np

EXERCISE = "som_update"


def som_update(W, x, positions, alpha, sigma):
    W = np.array(W, dtype=float)
    c = np.argmin(((W - x) ** 2).sum(1))
    d2 = ((positions - positions[c]) ** 2).sum(1)
    h = np.exp(-d2 / (2 * sigma ** 2)) if sigma > 0 else (d2 == 0).astype(float)
    return W + alpha * h[:, None] * (x - W)
''',
    "em_m_step": '''
import numpy as np

EXERCISE = "em_m_step"


def m_step(X, resp):
    nk = resp.sum(0)
    means = resp.T @ X / nk[:, None]
    covs = [(resp[:, j, None] * (X - means[j])).T @ (X - means[j]) / nk[j]
            for j in range(resp.shape[1])]
    return nk / len(X), means, np.stack(covs)
''',
}

MAX_POOL_OVERWRITES = '''import numpy as np
        N, C = g.shape[:2]
        H, W = geom.image
        gx = np.zeros((N, C, H * W))
        # assignment keeps one of the gradients of a pixel that wins several windows
        np.put_along_axis(gx, argmax.reshape(N, C, -1), g.reshape(N, C, -1), axis=2)
        return gx.reshape(N, C, H, W)'''

# exercise -> [(bug, text of the solution, planted text, the check that must fail, entry)]
PLANTED = {
    "sigmoid": [
        ("wrong sign", "g * s * (1 - s)", "g * s * (1 + s)", "gradcheck", JACOBIAN),
        ("raw arrays", "return g * s * (1 - s)", "return type(g)(g.data * s.data * (1 - s.data))",
         "gradgradcheck", JACOBIAN),
    ],
    "tanh": [
        ("dropped square", "g * (1 - t * t)", "g * (1 - t)", "gradcheck", JACOBIAN),
        ("raw arrays", "return g * (1 - t * t)", "return type(g)(g.data * (1 - t.data ** 2))",
         "gradgradcheck", JACOBIAN),
    ],
    "softplus": [
        ("wrong sign", "g * sigmoid(self.inputs[0])", "g * sigmoid(-self.inputs[0])",
         "gradcheck", JACOBIAN),
        ("detached input", "g * sigmoid(self.inputs[0])", "g * sigmoid(self.inputs[0].detach())",
         "gradgradcheck", JACOBIAN),
    ],
    "add": [
        ("missing unbroadcast", "unbroadcast(g, a.shape), unbroadcast(g, b.shape)",
         "unbroadcast(g, a.shape), g", "gradcheck", BACKWARD),
        ("wrong sign", "unbroadcast(g, a.shape), unbroadcast(g, b.shape)",
         "unbroadcast(g, a.shape), -unbroadcast(g, b.shape)", "gradcheck", JACOBIAN),
    ],
    "matmul": [
        ("missing unbroadcast", "gb = unbroadcast(matmul(transpose(a), g), b.shape)",
         "gb = matmul(transpose(a), g)", "gradcheck", BACKWARD),
        ("raw arrays", "ga = unbroadcast(matmul(g, transpose(b)), a.shape)",
         "ga = type(g)(unbroadcast(matmul(g, transpose(b)), a.shape).data)", "gradgradcheck",
         JACOBIAN),
    ],
    "sum": [
        ("first axis only", "1 if i in axes else n", "1 if i == axes[0] else n",
         "property sweep", RAISED),
        ("detached gradient", "reshape(g, _kept_shape(shape, axes))",
         "reshape(g.detach(), _kept_shape(shape, axes))", "gradgradcheck", JACOBIAN),
    ],
    "mean": [
        ("last axis's size", "/ self.count", "/ self.inputs[0].shape[-1]", "property sweep",
         JACOBIAN),
        ("times n", "/ self.count", "* self.count", "gradcheck", JACOBIAN),
    ],
    "logsumexp": [
        ("no max subtracted", "m = a.max(axis=axes, keepdims=True)",
         "m = 0 * a.max(axis=axes, keepdims=True)", "stability", VALUES),
        ("wrong sign", "(a - lse).exp()", "(lse - a).exp()", "gradcheck", JACOBIAN),
    ],
    "log_softmax": [
        ("hard-coded axis", "sum(g, dim=self.axis, keepdim=True)", "sum(g, dim=-1, keepdim=True)",
         "property sweep", JACOBIAN),
        ("no max subtracted", "shifted = a - a.max(axis=axis, keepdims=True)", "shifted = a",
         "stability", VALUES),
    ],
    "layer_norm": [
        ("dropped term", "            gx = inv_std * (gh - mean(gh, dim=self.axes, keepdim=True)\n"
                         "                            - xhat * mean(gh * xhat, dim=self.axes, "
                         "keepdim=True))",
         "            gx = inv_std * (gh - mean(gh, dim=self.axes, keepdim=True))",
         "gradcheck", JACOBIAN),
        ("constants under create_graph", "xhat, inv_std = _standardize(x, self.axes, self.eps)",
         "xhat, inv_std = Tensor(self.xhat), Tensor(self.inv_std)", "gradgradcheck", JACOBIAN),
    ],
    "bce_with_logits": [
        ("wrong sign of dL/dt", "gt = -(g * x)", "gt = g * x", "gradcheck", JACOBIAN),
        ("no 1/n for 'mean'", "g = g / x.numel()", "g = g", "gradcheck", JACOBIAN),
        ("unstable forward", "loss = xp.maximum(x, 0)\n            loss -= x * t\n"
         "            loss += _log1p_unit(self.e)",
         "loss = -(t * xp.log(1 / (1 + xp.exp(-x))) + (1 - t) * xp.log(1 - 1 / (1 + xp.exp(-x))))",
         "stability", VALUES),
    ],
    "conv2d": [
        ("kernel transposed", "y = array_matmul(w.reshape(O, -1),",
         "y = array_matmul(w.transpose(0, 1, 3, 2).reshape(O, -1),",
         "reference", OP_VALUES),
        ("wrong sign", "gw = Conv2dWeight.apply(", "gw = -Conv2dWeight.apply(", "gradcheck",
         JACOBIAN),
        ("raw arrays", "gx = ConvTranspose2d.apply(g, w, geom=self.geom, rows=g_rows)",
         "gx = type(g)(ConvTranspose2d.apply(g, w, geom=self.geom, rows=g_rows).data)",
         "gradgradcheck", JACOBIAN),
    ],
    "max_pool2d": [
        ("overwrite instead of add", "return _max_pool_backward(g, argmax, geom)",
         MAX_POOL_OVERWRITES, "gradcheck", JACOBIAN),
        ("scatter's backward scatters", "return MaxPoolGather.apply(gg, ",
         "return MaxPoolScatter.apply(gg, ", "gradgradcheck", BACKWARD),
    ],
    "reparameterize": [
        ("dropped 1/2", "g_logvar = g * eps * sigma * 0.5", "g_logvar = g * eps * sigma",
         "gradcheck", JACOBIAN),
        ("constant sigma under create_graph", "sigma = (0.5 * logvar).exp()",
         "sigma = Tensor(self.sigma)", "gradgradcheck", JACOBIAN),
        ("KL: wrong sign", "mu * mu - exp(logvar))", "mu * mu + exp(logvar))", "reference",
         OP_VALUES),
    ],
    "gradient_penalty": [
        ("no create_graph", "create_graph=True)", "create_graph=False)", "gradcheck",
         JACOBIAN),
        ("one norm for the batch", "norm = (g * g).reshape(n, -1).sum(dim=1).sqrt()",
         "norm = (g * g).sum().sqrt()", "reference", OP_VALUES),
    ],
    "gumbel_softmax": [
        ("dropped term", "return s * (g - sum(g * s, dim=self.axis, keepdim=True))",
         "return s * g", "gradcheck", JACOBIAN),
        ("tau forgotten", "softmax((logits + noise) / tau, dim=dim)",
         "softmax(logits + noise, dim=dim)", "reference", OP_VALUES),
        ("no straight-through", "return y_hard - y.detach() + y", "return y_hard + 0 * y",
         "straight-through", VALUES),
    ],
    "rbm_cd1": [
        ("no 1/N", "dW = (v0.T @ ph0 - v1.T @ ph1) / n", "dW = v0.T @ ph0 - v1.T @ ph1",
         "exact gradient (W = 0)", VALUES),
        ("probabilities for h0", "h0 = (u < ph0).astype(float)", "h0 = ph0", "reference",
         VALUES),
        ("wrong sign of db", "(ph0 - ph1).mean(0)", "(ph1 - ph0).mean(0)", "reference", VALUES),
    ],
    "som_update": [
        ("loser for winner", "np.argmin", "np.argmax", "winner", VALUES),
        ("distance in input space", "d2 = ((positions - positions[c]) ** 2).sum(1)",
         "d2 = ((W - W[c]) ** 2).sum(1)", "reference", VALUES),
        ("sigma not squared", "2 * sigma ** 2", "2 * sigma", "property sweep", VALUES),
    ],
    "em_m_step": [
        ("1/(N_j - 1) covariance", "/ nk[j]", "/ (nk[j] - 1)",
         "closed form (hard responsibilities)", VALUES),
        ("means over N", "resp.T @ X / nk[:, None]", "resp.T @ X / len(X)",
         "closed form (hard responsibilities)", VALUES),
    ],
}


def answer(exercise):
    """The text a student would hand in that passes: the library's solution, or for the
    NumPy exercises a hand-written one."""
    return STUDENT.get(exercise.name, exercise.solution_text())


def write(folder, name, text):
    path = os.path.join(folder, f"{name}.py")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_the_ladder_has_every_rung_the_issue_asks_for():
    assert len(exercises()) >= 14
    for name in ["sigmoid", "tanh", "softplus", "add", "matmul", "sum", "mean", "logsumexp",
                 "log_softmax", "layer_norm", "bce_with_logits", "conv2d", "max_pool2d",
                 "reparameterize", "gradient_penalty", "gumbel_softmax", "rbm_cd1",
                 "som_update", "em_m_step"]:
        e = get(name)
        assert e.statement and e.source and e.hint and e.writes
    assert set(PLANTED) == set(names())
    with pytest.raises(ExerciseError, match="no exercise named 'nope'"):
        get("nope")


@pytest.mark.parametrize("name", names())
def test_the_solution_passes_and_the_stub_is_not_implemented(name, tmp_path):
    exercise = get(name)
    verdict = check_file(write(tmp_path, name, exercise.solution_text()), EXAMPLES)
    assert verdict.ok, str(verdict)
    assert "every check passed" in str(verdict)
    (tmp_path / "stub").mkdir()
    stub = check_file(write(tmp_path / "stub", name, exercise.stub_text()), EXAMPLES)
    assert not stub.ok and stub.failed_check == "not implemented", str(stub)
    assert "is not implemented yet" in str(stub)


@pytest.mark.parametrize("name", sorted(STUDENT))
def test_a_hand_written_numpy_answer_passes(name, tmp_path):
    verdict = check_file(write(tmp_path, name, STUDENT[name]), EXAMPLES)
    assert verdict.ok, str(verdict)


@pytest.mark.parametrize("name, bug, old, new, check, entry",
                         [(name, *bug) for name, bugs in PLANTED.items() for bug in bugs],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_a_planted_bug_fails_the_check_that_should_catch_it(name, bug, old, new, check, entry,
                                                            tmp_path):
    text = answer(get(name))
    assert text.count(old) >= 1, f"{name}: the solution no longer contains {old!r}"
    examples = SWEEP_EXAMPLES if check == "property sweep" else EXAMPLES
    verdict = check_file(write(tmp_path, name, text.replace(old, new, 1)), examples)
    report = str(verdict)
    assert not verdict.ok, f"{name}, {bug}: passed\n{report}"
    assert verdict.failed_check == check, report
    assert f"FAILED at {check}" in report, report
    assert entry.search(report), report
    if check == "property sweep":
        assert "hypothesis's shrunk counterexample" in report, report


# ------------------------------------------------------------------ the command line
def run_cli(*argv, capsys):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_start_check_solution_end_to_end(tmp_path, capsys):
    status, out, _ = run_cli("exercises", "list", "--names", capsys=capsys)
    assert status == 0 and out.split() == names()

    status, out, _ = run_cli("exercises", "show", "rbm_cd1", capsys=capsys)
    assert status == 0 and "Source: seed 002" in out and "Hint:" in out and "cd1_update" in out

    status, out, _ = run_cli("exercises", "start", "tanh", "--dir", str(tmp_path), capsys=capsys)
    path = tmp_path / "tanh.py"
    assert status == 0 and path.exists() and str(path) in out
    assert path.read_text() == get("tanh").stub_text()

    status, out, _ = run_cli("exercises", "check", str(path), "--examples", "2", capsys=capsys)
    assert status == 1 and "Tanh.backward is not implemented yet" in out

    status, out, _ = run_cli("exercises", "list", "--dir", str(tmp_path), capsys=capsys)
    assert re.search(r"2 \[~\] tanh ", out) and re.search(r"1 \[ \] sigmoid ", out)

    status, solution, _ = run_cli("exercises", "solution", "tanh", capsys=capsys)
    assert status == 0 and solution == get("tanh").solution_text()
    path.write_text(solution)
    status, out, _ = run_cli("exercises", "check", str(path), "--examples", "2", capsys=capsys)
    assert status == 0 and "every check passed" in out
    status, out, _ = run_cli("exercises", "list", "--dir", str(tmp_path), capsys=capsys)
    assert re.search(r"2 \[x\] tanh ", out) and "1 of 19 done" in out

    path.write_text(solution.replace("g * (1 - t * t)", "g * (1 + t * t)"))
    status, out, _ = run_cli("exercises", "check", str(path), "--examples", "2", capsys=capsys)
    assert status == 1 and "FAILED at gradcheck" in out and JACOBIAN.search(out)
    status, out, _ = run_cli("exercises", "list", "--dir", str(tmp_path), capsys=capsys)
    assert re.search(r"2 \[~\] tanh ", out)  # the file that passed is not this one


@pytest.mark.parametrize("argv, message", [
    (["start", "nope"], "no exercise named 'nope'"),
    (["solution", "nope"], "no exercise named 'nope'"),
    (["check", "missing.py"], "missing.py: no such file"),
    (["check", "tanh.py"], "defines no Tanh"),
    (["check", "notes.py"], "not an exercise file"),
    (["check", "broken.py"], "broken.py, line 2: the file does not run: SyntaxError"),
    (["start", "tanh"], "tanh.py exists"),
    (["check", "tanh.py", "--examples", "0"], "--examples: must be an integer >= 1"),
])
def test_bad_input_is_one_line_and_status_2(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tanh.py").write_text('EXERCISE = "tanh"\n')
    (tmp_path / "notes.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text('EXERCISE = "tanh"\ndef (:\n')
    status, out, err = run_cli("exercises", *argv, capsys=capsys)
    assert status == 2, out + err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_the_console_script_exits_with_the_verdict(tmp_path):
    path = write(tmp_path, "sigmoid", get("sigmoid").solution_text().replace(
        "g * s * (1 - s)", "g * s"))
    done = subprocess.run([sys.executable, "-m", "minigen.cli", "exercises", "check", path,
                           "--examples", "2"], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "FAILED at gradcheck" in done.stdout and "what it means" in done.stdout


def test_the_readme_shows_a_real_verdict(tmp_path):
    """The failure quoted in the README's "Exercises" section is what check prints."""
    from pathlib import Path
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    quoted = re.search(r"```\n(layer_norm\.py -- exercise .*?)\n```", readme, re.S).group(1)
    _, old, new, _, _ = PLANTED["layer_norm"][0]
    text = get("layer_norm").solution_text().replace(old, new)
    assert str(check_file(write(tmp_path, "layer_norm", text), EXAMPLES)) == quoted


def test_the_exact_rbm_gradient_is_the_log_likelihood_gradient():
    """The closed form CD-1 is held to (at W = 0) is d mean log p(v0): finite differences of
    the log-likelihood, enumerated with the library's free energy and exact ln Z."""
    import numpy as np
    from minigen.exercises.classical import exact_rbm_gradient
    from minigen.models.rbm import RBM
    rng = np.random.default_rng(3)
    v0 = (rng.random((5, 3)) < 0.5).astype(np.float64)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal(2)]

    def log_likelihood(W, a, b):
        rbm = RBM(n_hidden=2).initialise(v0)
        rbm.W, rbm.a, rbm.b = W, a, b
        return rbm.log_likelihood(v0, rbm.log_partition_exact())

    for k, exact in enumerate(exact_rbm_gradient(v0, *params)):
        numerical = np.zeros_like(params[k])
        for i in np.ndindex(params[k].shape):
            step = [p.copy() for p in params], [p.copy() for p in params]
            step[0][k][i] += 1e-6
            step[1][k][i] -= 1e-6
            numerical[i] = (log_likelihood(*step[0]) - log_likelihood(*step[1])) / 2e-6
        np.testing.assert_allclose(exact, numerical, rtol=1e-6, atol=1e-8)
