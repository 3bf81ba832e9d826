"""minigen.profile: what it counts (calls, bytes), that its rows add up to the wall time,
JIT compilation apart, the Chrome trace, and that nothing is left hooked when it is off."""
import json

import numba
import numpy as np

import minigen as mg
from minigen import autograd, nn
from minigen.optim import SGD, Adam, Optimizer
from minigen.profiler import record_function


def train_steps(n, batch=8):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 3))
    opt = Adam(model.parameters(), lr=1e-3)
    x = mg.randn(batch, 10)
    with mg.profile() as prof:
        for _ in range(n):
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with record_function("bookkeeping"):
                loss.item()
    return prof


def test_counts_bytes_and_rows_that_add_up_to_the_wall_time():
    prof = train_steps(3)
    stats = {(r.name, r.kind): r for r in prof.rows()}
    linear = stats[("Linear", "op")]
    assert (linear.fwd_calls, linear.bwd_calls) == (6, 6)
    # float32 bytes per step: outputs (8, 6) and (8, 3); gradients of the second layer's
    # input (8, 6), weight (3, 6), bias (3,); of the first layer's weight and bias only
    # (x needs no gradient)
    assert linear.bytes == 3 * 4 * (8 * 6 + 8 * 3 + 8 * 6 + 3 * 6 + 3 + 6 * 10 + 6)
    assert stats[("autograd engine", "engine")].fwd_calls == 3
    assert stats[("Adam.step", "optimizer")].fwd_calls == 3
    assert stats[("bookkeeping", "region")].fwd_calls == 3
    rows = prof.rows()
    assert all(r.fwd_time >= 0 and r.bwd_time >= 0 and r.jit_time >= 0 for r in rows)
    total = sum(r.total for r in rows) + rows[-1].jit_time
    assert abs(total - prof.wall) < 1e-9 * max(1.0, prof.wall)
    ops = [r for r in rows if r.kind == "op"]
    assert [r.total for r in ops] == sorted((r.total for r in ops), reverse=True)
    text = prof.table()
    assert "Linear" in text and "outside ops" in text and "total (= wall)" in text


def test_forward_bytes_are_new_memory_and_views_count_zero():
    x = mg.randn(4, 5, requires_grad=True)
    with mg.profile() as prof:
        (x.reshape(20) * 2).sum().backward()
    stats = {r.name: r for r in prof.rows() if r.kind == "op"}
    assert stats["Reshape"].fwd_calls == 1
    assert stats["Mul"].bytes >= 20 * 4          # its output, then its input's gradient
    reshape_view = mg.randn(4, 5)
    with mg.profile() as prof:
        reshape_view.reshape(20)
    assert {r.name: r for r in prof.rows()}["Reshape"].bytes == 0


def test_ops_run_by_a_backward_belong_to_that_backward():
    x = mg.randn(3, requires_grad=True)
    with mg.profile() as prof:
        (x * x).sum().backward()       # Mul's backward runs Mul twice, engine sums with Add
    stats = {r.name: r for r in prof.rows() if r.kind == "op"}
    assert (stats["Mul"].fwd_calls, stats["Mul"].bwd_calls) == (1, 1)
    assert "Add" not in stats
    forwards = [e[0] for e in prof.events if e[1] == "forward"]
    assert forwards.count("Mul") == 3 and "Add" in forwards   # the trace shows them nested


def test_jit_compilation_is_reported_apart():
    @numba.njit
    def triple(a):                     # compiled at its first call, inside the profile
        return a * 3.0

    class Triple(mg.Function):
        def forward(self, x):
            return triple(x)

        def backward(self, g):
            return g * 3.0

    x = mg.tensor(np.ones(4), dtype="float64", requires_grad=True)
    with mg.profile() as prof:
        Triple.apply(x)
        Triple.apply(x)
    row = {r.name: r for r in prof.rows()}["Triple"]
    jit = prof.rows()[-1]
    assert row.fwd_calls == 2 and row.jit_time > 0 and jit.jit_time >= row.jit_time
    assert row.fwd_time < row.jit_time          # steady state: far below the first compile
    assert any(e[1] == "jit" for e in prof.events)


def test_chrome_trace_is_json_with_nested_slices(tmp_path):
    prof = train_steps(1)
    path = tmp_path / "trace.json"
    prof.chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    engine = next(e for e in slices if e["name"] == "autograd engine")
    inside = [e for e in slices if e["cat"] == "backward"]
    assert inside and all(engine["ts"] <= e["ts"] and e["ts"] + e["dur"] <= engine["ts"] +
                          engine["dur"] + 1e-3 for e in inside)


def test_nothing_stays_hooked_after_the_block():
    step = Optimizer.__dict__["step"]
    sgd = SGD([mg.randn(2, requires_grad=True)], lr=0.1)
    with mg.profile():
        assert autograd._RECORDERS and Optimizer.__dict__["step"] is not step
        sgd.step()
    assert autograd._RECORDERS == [] and Optimizer.__dict__["step"] is step


def test_profile_and_module_trace_work_together():
    model = nn.Sequential(nn.Linear(3, 2))
    with mg.profile() as prof, mg.viz.trace_modules(model) as trace:
        model(mg.randn(4, 3)).sum().backward()
    stats = {r.name: r for r in prof.rows() if r.kind == "op"}
    assert (stats["Linear"].fwd_calls, stats["Linear"].bwd_calls) == (1, 1)
    assert trace.calls == [("0", "Linear")] and len(trace.scope) == 2    # Linear and Sum
