"""minigen.testing.check_op: every check it runs passes a right op and fails a planted bug,
and the report says which check failed, the entry, both values and the (shrunk) shapes."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen.testing import (LAYOUTS, CheckFailure, OpCheckError, check_op, conv2d_inputs,
                             lay_out, layout_of, pool_inputs, reduction, unary, with_noise)
from test_checker import GumbelDetached, GumbelSoftmax, Softsign


def torch_softsign(x):
    return x / (1 + x.abs())


def test_a_right_op_passes_every_check():
    report = check_op(Softsign.apply, [(3, 4)], sweep=unary("nonzero"), torch_fn=torch_softsign,
                      max_examples=8)
    assert report.ok and report.failure is None
    expected = ["forward", "gradcheck", "gradgradcheck", "layouts", "property sweep", "torch parity"]
    assert [p.split(" (")[0] for p in report.passed] == expected or "torch parity" in report.skipped
    assert str(report).startswith("check_op Softsign: every check passed")


def test_fixed_noise_is_an_input_without_gradient():
    kwargs = {"tau": 0.5}
    report = check_op(GumbelSoftmax.apply, [(2, 4)], noise=[(2, 4)], noise_kind="gumbel",
                      kwargs=kwargs, sweep=with_noise(unary(shape=(3, 5)), kind="gumbel"),
                      torch_fn=lambda logits, g, tau: ((logits + g) / tau).softmax(-1),
                      max_examples=6)
    assert report.ok, report
    failed = check_op(GumbelDetached.apply, [(2, 4)], noise=[(2, 4)], noise_kind="gumbel",
                      kwargs=kwargs, raise_exception=False)
    assert failed.failure.check == "gradgradcheck"
    assert failed.failure.noise_shapes == [(2, 4)] and failed.failure.kwargs == kwargs
    assert "d grad_logits[0, 0] / d logits[0, 0]" in str(failed)


def test_gradcheck_failure_gives_the_entry_and_both_values():
    class NoSquare(Softsign):
        def backward(self, g):
            x, = self.inputs
            return g / (1 + x.abs())

    with pytest.raises(OpCheckError) as info:
        check_op(NoSquare.apply, [(3, 4)])
    failure = info.value.report.failure
    assert isinstance(failure, CheckFailure) and failure.check == "gradcheck"
    assert failure.entry == ((0, 0), (0, 0)) and failure.wrt == "input 0 (x)"
    x = np.random.default_rng(0).standard_normal((3, 4))[0, 0]     # check_op's seeded values
    assert failure.analytic == pytest.approx(1 / (1 + abs(x)))
    assert failure.numerical == pytest.approx(1 / (1 + abs(x)) ** 2, rel=1e-6)
    assert "FAILED in gradcheck (passed before it: forward)" in str(info.value)


def test_the_sweep_finds_what_the_fixed_inputs_miss_and_shrinks_it():
    """abs forgotten: right for positive inputs (the fixed ones), wrong for negative ones."""
    class NoAbs(Softsign):
        def backward(self, g):
            x, = self.inputs
            return g / (1 + x) ** 2

    positive = np.linspace(0.5, 2.0, 12).reshape(3, 4)
    report = check_op(NoAbs.apply, [positive], sweep=unary("nonzero"), max_examples=20,
                      raise_exception=False)
    failure = report.failure
    assert failure.check == "property sweep" and failure.inner_check == "gradcheck"
    assert report.passed == ["forward", "gradcheck", "gradgradcheck", "layouts"]
    assert failure.shapes == [()]          # shrunk to one number
    assert failure.entry == ((), ()) and failure.examples >= 1
    assert "hypothesis's shrunk counterexample" in str(report)


def test_an_op_that_assumes_contiguous_memory_fails_the_layout_check():
    class ReadsRawMemory(mg.Function):
        """exp(x), but reading x's buffer as if it were C-contiguous."""

        def forward(self, x):
            flat = np.lib.stride_tricks.as_strided(x, x.shape, np.empty(x.shape).strides)
            return np.exp(flat)

        def backward(self, g):
            return g * self.output

    report = check_op(ReadsRawMemory.apply, [(3, 4)], raise_exception=False)
    assert report.failure.check == report.failure.inner_check == "layouts"
    assert "assume C-contiguous" in str(report)


def test_a_wrong_forward_with_a_matching_backward_fails_only_torch_parity():
    torch = pytest.importorskip("torch", reason="torch not installed: parity not checked")

    class Twice(mg.Function):          # consistent with itself, but not softsign
        def forward(self, x):
            return 2 * x / (1 + np.abs(x))

        def backward(self, g):
            x, = self.inputs
            return 2 * g / (1 + x.abs()) ** 2

    report = check_op(Twice.apply, [(2, 3)], torch_fn=torch_softsign, raise_exception=False)
    assert report.failure.check == "torch parity"
    assert "torch parity failed for Twice: output[0, 0]: minigen" in report.failure.message
    assert torch is not None


def test_parity_is_skipped_and_said_so_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` now raises ImportError
    report = check_op(Softsign.apply, [(3,)], torch_fn=torch_softsign)
    assert report.ok and report.skipped["torch parity"] == "torch is not installed"


def test_an_op_that_raises_is_reported_with_where():
    def broken(x, dim):
        return x.sum(dim=dim) * mg.tensor(np.ones(5), dtype="float64")

    report = check_op(broken, [(2, 3)], kwargs={"dim": 1}, raise_exception=False)
    assert report.failure.check == "forward"
    assert "broken raised ValueError: mul: shapes (2,) and (5,) cannot be broadcast" in \
        report.failure.message


def test_a_missing_broadcast_in_backward_is_found_by_the_sweep():
    class SumKeepdim(mg.Function):
        def forward(self, x, dim, keepdim):
            return x.sum(axis=dim, keepdims=True)

        def backward(self, g):
            return g            # not broadcast back to x's shape: right only when nothing is summed

    report = check_op(SumKeepdim.apply, [(1, 1)], kwargs={"dim": 0, "keepdim": True},
                      sweep=reduction(keepdim=True), max_examples=15, raise_exception=False)
    failure = report.failure
    assert failure.check == "property sweep" and isinstance(failure.error, mg.BackwardError)
    assert "the gradient for input 0 (x) has shape" in failure.message
    assert len(failure.shapes[0]) >= 1 and "dim" in failure.kwargs


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_of_names_each_layout(layout):
    assert layout_of(lay_out(np.arange(6.0).reshape(2, 3), layout)) == layout


@settings(max_examples=5)
@given(with_noise(unary(), kind="gumbel"))
def test_with_noise_draws_finite_noise_of_the_input_shape(example):
    arrays, kw, noise = example
    assert noise[0].shape == arrays[0].shape and kw == {} and np.isfinite(noise[0]).all()


def test_conv_and_pool_strategies_feed_check_op():
    """The sweep strategies for convolutions and pools draw valid (arrays, kwargs)."""
    x, w = np.random.default_rng(0).standard_normal((1, 2, 5, 5)), \
        np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    assert check_op(mg.conv2d, [x, w], kwargs={"stride": 2, "padding": 1}, layouts=(),
                    sweep=conv2d_inputs(), max_examples=3, gradgrad=False)
    assert check_op(mg.max_pool2d, [(1, 1, 4, 4)], kind="distinct", kwargs={"kernel_size": 2},
                    layouts=(), sweep=pool_inputs(), max_examples=3)
