"""Property-testing tools for ops: the project's hypothesis strategies and ``check_op``.

A student who writes an op checks it the way minigen checks its own::

    import numpy as np
    import minigen as mg
    from minigen.testing import check_op, unary

    class Softsign(mg.Function):
        def forward(self, x):
            return x / (1 + np.abs(x))
        def backward(self, g):
            x, = self.inputs
            return g / (1 + x.abs()) ** 2

    report = check_op(Softsign.apply, [(3, 4)], sweep=unary("nonzero"),
                      torch_fn=lambda x: x / (1 + x.abs()))
    print(report)          # every check passed, or which one failed, where, and by how much

Strategies (hypothesis) draw three things:

* shapes -- small (at most 3 dims, 4 when broadcasting, of sizes 1..4 and at most
  ``MAX_SIZE`` entries), because a full gradcheck runs one backward per output entry and
  two forwards per input entry;
* values -- float64, kept away from every point where an op is not differentiable
  (relu/abs/leaky_relu/elu at 0, max/min ties, clamp bounds, log/sqrt near 0, division by
  near-zero, pow with a negative base), since finite differences across a kink disagree
  with any one-sided derivative and a failure there says nothing about the code;
* layouts -- the same values stored contiguously, transposed, reversed (negative strides)
  or as a strided view of a larger NaN-filled buffer, so an op that silently assumes a
  C-contiguous input (or reads past its view) is caught. ``gradcheck`` perturbs
  ``t.data[index]`` in place, which works on a view.

Op strategies (``unary``, ``binary``, ``reduction``, ``matmul_inputs``, ``conv_cases``...)
draw ``(arrays, kwargs)``; ``with_noise`` adds fixed noise, ``(arrays, kwargs, noise)``:
arrays passed as inputs that need no gradient (Gumbel noise, the eps of the
reparameterisation trick), held constant by the checks.

This module needs hypothesis (a dependency of minigen; ``pip install hypothesis`` if it was
installed without its dependencies).
"""
import traceback
from dataclasses import dataclass, field

import numpy as np

try:
    from hypothesis import HealthCheck, Verbosity, assume, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as e:  # pragma: no cover - hypothesis is in install_requires
    raise ImportError("minigen.testing needs hypothesis, which is missing: "
                      "pip install 'hypothesis>=6.80'") from e

from .gradcheck import ATOL, EPS, RTOL, GradcheckError, gradcheck, gradgradcheck, op_name
from .ops.conv import conv_transpose_output_size
from .tensor import Tensor

MAX_SIZE = 24        # entries per drawn tensor
MARGIN = 0.1         # distance kept from every kink (finite differences use eps = 1e-6)

# Tight tolerances for float64 central differences (error ~ eps^2 |f'''| + 1e-16 |f| / eps):
# gradcheck's defaults, spelled out for the project's tests.
TOL = dict(atol=ATOL, rtol=RTOL)


# ------------------------------------------------------------------ shapes
def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4, max_size=MAX_SIZE):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side).filter(lambda s: int(np.prod(s)) <= max_size)


def broadcast_pairs(min_dims=0, max_dims=3, max_side=4):
    """Two shapes that broadcast together: (shape_a, shape_b)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, max_side=max_side).filter(
        lambda b: int(np.prod(b.result_shape)) <= MAX_SIZE).map(lambda b: b.input_shapes)


@st.composite
def broadcast_shape_pair(draw, max_dims=4):
    """(small, big): a shape and a shape it broadcasts to. Drawn big first, then small keeps
    its trailing dims with some of them set to 1, so both kinds of broadcasting (new
    leading axes, grown size-1 axes) are common."""
    big = draw(shapes(max_dims=max_dims))
    kept = big[len(big) - draw(st.integers(0, len(big))):]
    return tuple(1 if draw(st.booleans()) else n for n in kept), big


def reduce_dims(ndim):
    """A ``dim=`` argument: None, one int (maybe negative), or a tuple of distinct dims."""
    if ndim == 0:
        return st.just(None)
    one = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
        tuple)
    return st.one_of(st.just(None), one, several)


def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    return tuple(d % ndim for d in ((dim,) if isinstance(dim, int) else dim))


# ------------------------------------------------------------------ values
def _away_from_zero(lo=MARGIN, hi=2.0):
    return st.one_of(st.floats(-hi, -lo), st.floats(lo, hi))


ELEMENTS = {
    "smooth": st.floats(-3.0, 3.0),          # ops smooth everywhere (exp, tanh, softmax...)
    "nonzero": _away_from_zero(),            # kinks at 0 (abs, relu, elu), denominators
    "positive": st.floats(0.2, 3.0),         # log, sqrt, fractional powers, pow bases
    "above_minus_one": st.floats(-0.8, 3.0),  # log1p
    "unclamped": st.floats(-2.0, 2.0).filter(lambda v: abs(abs(v) - 0.5) > MARGIN),
}


def values(shape, kind="smooth"):
    """A float64 array of ``shape`` whose entries suit ops of ``kind`` (see ``ELEMENTS``)."""
    if kind == "distinct":
        return distinct_values(shape)
    return hnp.arrays(np.float64, shape, elements=ELEMENTS[kind])


@st.composite
def distinct_values(draw, shape):
    """Entries at least 0.15 apart: no max/min ties, and a variance well away from 0."""
    n = int(np.prod(shape))
    ranks = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    jitter = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 0.4)))
    return ((ranks + jitter) * 0.25 - n / 8).reshape(shape)


@st.composite
def interleaved_pair(draw, shape_a, shape_b):
    """Two arrays whose entries never tie: a = k + [0.05, 0.45], b = k + [0.55, 0.95]."""
    ka = draw(hnp.arrays(np.float64, shape_a, elements=st.integers(-2, 1).map(float)))
    kb = draw(hnp.arrays(np.float64, shape_b, elements=st.integers(-2, 1).map(float)))
    fa = draw(hnp.arrays(np.float64, shape_a, elements=st.floats(0.05, 0.45)))
    fb = draw(hnp.arrays(np.float64, shape_b, elements=st.floats(0.55, 0.95)))
    return ka + fa, kb + fb


# ------------------------------------------------------------------ layouts
LAYOUTS = ("contiguous", "transposed", "reversed", "strided")


def lay_out(array, layout):
    """The same values stored in ``layout``; every layout but 'contiguous' is a view."""
    array = np.asarray(array, dtype=np.float64)
    if layout == "contiguous" or array.ndim == 0:
        return array.copy(order="C")  # (not ascontiguousarray: it turns 0-d into 1-d)
    if layout == "transposed":                    # a Fortran-order view
        return array.T.copy(order="C").T
    if layout == "reversed":                      # negative strides on every axis
        flip = (slice(None, None, -1),) * array.ndim
        return array[flip].copy(order="C")[flip]
    # every other entry of a bigger buffer whose gaps hold NaN: reading outside the
    # view poisons the result
    big = np.full(tuple(2 * n + 1 for n in array.shape), np.nan)
    view = big[(slice(1, None, 2),) * array.ndim]
    view[...] = array
    return view


@st.composite
def laid_out(draw, array):
    return lay_out(array, draw(st.sampled_from(LAYOUTS)))


def as_inputs(arrays):
    """minigen leaves (requires_grad, float64) sharing the arrays' memory, views included."""
    return [Tensor(a, requires_grad=True) for a in arrays]



# ------------------------------------------------------------------ ops with parameters
# Each draws ``(arrays, kwargs)``: the differentiable inputs as float64 arrays in some layout,
# and the op's other arguments (a strategy per keyword of ``unary``).
@st.composite
def unary(draw, kind="smooth", shape=None, **kw):
    """One array of ``kind`` values (``shape`` or a drawn one); ``kw`` maps each of the op's
    keyword arguments to a strategy: ``unary("nonzero", negative_slope=st.sampled_from([0.01,
    0.2]))``."""
    shape = draw(shapes()) if shape is None else shape
    x = draw(laid_out(draw(values(shape, kind))))
    return (x,), {k: draw(v) for k, v in kw.items()}


@st.composite
def binary(draw, kind_a="smooth", kind_b="smooth"):
    """Two arrays whose shapes broadcast together (the unbroadcast rule is exercised)."""
    sa, sb = draw(broadcast_pairs())
    a = draw(values(sa, kind_a))
    b = draw(values(sb, kind_b))
    return (draw(laid_out(a)), draw(laid_out(b))), {}


@st.composite
def no_tie_pair(draw):
    """Two broadcasting arrays that never tie (maximum, minimum)."""
    sa, sb = draw(broadcast_pairs())
    a, b = draw(interleaved_pair(sa, sb))
    if draw(st.booleans()):
        a, b = b, a
    return (draw(laid_out(a)), draw(laid_out(b))), {}



@st.composite
def reduction(draw, kind="smooth", min_count=1, single=False, keepdim=True, unbiased=False):
    """One array and ``dim`` (None, an int or a tuple; one int when ``single``), with
    ``keepdim`` (and ``unbiased``) drawn when asked; at least ``min_count`` entries reduced."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1) if single else reduce_dims(len(shape)))
    count = int(np.prod([shape[a] for a in _axes(dim, len(shape))]))
    if count < min_count:  # var/std need two entries; grow the first reduced axis
        axis = _axes(dim, len(shape))[0]
        shape = shape[:axis] + (min_count,) + shape[axis + 1:]
    x = draw(laid_out(draw(values(shape, kind))))
    kw = {"dim": dim}
    if keepdim:
        kw["keepdim"] = draw(st.booleans())
    if unbiased:
        kw["unbiased"] = draw(st.booleans())
    return (x,), kw


@st.composite
def matmul_inputs(draw, form):
    """Two arrays for ``a @ b``: ``form`` is "2d", "batched" (broadcast batch dims), "1d@2d",
    "2d@1d", "1d@1d" or "outer"."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    if form == "2d":
        sa, sb = (n, k), (k, m)
    elif form == "batched":
        ba, bb = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2,
                                                        max_side=3)).input_shapes
        sa, sb = ba + (n, k), bb + (k, m)
    else:  # the 1-D forms of numpy.matmul, and outer(a, b) of two vectors
        batch = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
        sa, sb = {"1d@2d": ((k,), batch + (k, m)), "2d@1d": (batch + (n, k), (k,)),
                  "1d@1d": ((k,), (k,)), "outer": ((n,), (m,))}[form]
    a, b = draw(values(sa)), draw(values(sb))
    return (draw(laid_out(a)), draw(laid_out(b))), {}


def layout_of(array):
    """Which of ``LAYOUTS`` an array is stored in (as ``lay_out`` makes them)."""
    if array.ndim == 0 or array.flags.c_contiguous:
        return "contiguous"
    if array.flags.f_contiguous:
        return "transposed"
    if any(s < 0 for s in array.strides):
        return "reversed"
    return "strided"


# ------------------------------------------------------------------ fixed noise
NOISE = {
    "normal": lambda rng, shape: rng.standard_normal(shape),          # reparameterisation eps
    "uniform": lambda rng, shape: rng.uniform(1e-3, 1 - 1e-3, shape),
    # Gumbel(0, 1) by inversion, g = -log(-log u): the noise of Gumbel-softmax
    "gumbel": lambda rng, shape: -np.log(-np.log(rng.uniform(1e-3, 1 - 1e-3, shape))),
}


def noise(shape, kind="normal"):
    """A float64 array of noise of ``kind`` ("normal", "uniform" or "gumbel"), drawn from a
    seed that hypothesis chooses (and shrinks), so a failure is reproducible."""
    return st.integers(0, 2 ** 32 - 1).map(
        lambda s: NOISE[kind](np.random.default_rng(s), shape).astype(np.float64))


@st.composite
def with_noise(draw, inputs, shape_of=None, kind="normal"):
    """``inputs`` (drawing ``(arrays, kwargs)``) plus one fixed-noise array: draws
    ``(arrays, kwargs, [noise])``. ``shape_of(arrays, kwargs)`` gives the noise's shape
    (default: the first array's)."""
    arrays, kw = draw(inputs)[:2]
    shape = arrays[0].shape if shape_of is None else tuple(shape_of(arrays, kw))
    return arrays, kw, [draw(noise(shape, kind))]


# ------------------------------------------------------------------ convolutions and pools
def pairs(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


@st.composite
def conv_cases(draw, max_batch=2, max_channels=3, max_extra=4):
    """(N, C, O, (H, W), kernel, stride, padding, dilation) with the dilated kernel fitting
    inside the padded input."""
    kernel, stride = draw(pairs(1, 3)), draw(pairs(1, 3))
    padding, dilation = draw(pairs(0, 2)), draw(pairs(1, 2))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, max_extra))
                 for k, p, d in zip(kernel, padding, dilation))
    n, c, o = (draw(st.integers(1, m)) for m in (max_batch, max_channels, max_channels))
    return n, c, o, size, kernel, stride, padding, dilation


@st.composite
def conv_transpose_cases(draw, max_batch=2, max_channels=3, max_size=4):
    """(N, O, C, (h, w), kernel, stride, padding, output_padding, dilation) whose output is
    not empty; output_padding < max(stride, dilation) as torch requires."""
    kernel, stride = draw(pairs(1, 3)), draw(pairs(1, 3))
    padding, dilation = draw(pairs(0, 2)), draw(pairs(1, 2))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = draw(pairs(1, max_size))
    out = [conv_transpose_output_size(*a) for a in
           zip(size, kernel, stride, padding, out_pad, dilation)]
    assume(min(out) >= 1)
    n, o, c = (draw(st.integers(1, m)) for m in (max_batch, max_channels, max_channels))
    return n, o, c, size, kernel, stride, padding, out_pad, dilation


@st.composite
def pool_cases(draw):
    """(shape, kernel, stride or None, padding) with padding <= kernel / 2 (torch's rule)."""
    kernel = draw(pairs(1, 3))
    stride = draw(st.one_of(st.none(), pairs(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(max(1, k - 2 * p) + draw(st.integers(0, 4)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    return shape, kernel, stride, padding


@st.composite
def conv2d_inputs(draw, max_batch=1, max_channels=2, max_extra=2):
    """(x, weight) arrays and conv2d's keywords (stride, padding, dilation) for a sweep."""
    n, c, o, size, kernel, stride, padding, dilation = draw(
        conv_cases(max_batch, max_channels, max_extra))
    x = draw(laid_out(draw(values((n, c) + size))))
    w = draw(laid_out(draw(values((o, c) + kernel))))
    return (x, w), {"stride": stride, "padding": padding, "dilation": dilation}


@st.composite
def pool_inputs(draw):
    """(x,) with distinct values (no ties: the argmax never flips under eps) and the pool's
    keywords (kernel_size, stride, padding)."""
    shape, kernel, stride, padding = draw(pool_cases())
    x = draw(laid_out(draw(distinct_values(shape))))
    return (x,), {"kernel_size": kernel, "stride": stride, "padding": padding}


# ================================================================== check_op
CHECKS = ("forward", "reference", "gradcheck", "gradgradcheck", "layouts", "property sweep",
          "torch parity")


@dataclass
class CheckFailure:
    """Where ``check_op`` stopped.

    ``check`` is one of ``CHECKS``; ``message`` the full report (for gradcheck and
    gradgradcheck failures, the checker's message: op, input by role, entry, analytic and
    numerical values); ``error`` the exception raised (``GradcheckError``,
    ``minigen.BackwardError``, or whatever the op raised). ``shapes``, ``layouts``,
    ``kwargs`` and ``noise_shapes`` describe the inputs it failed on -- in the property
    sweep, hypothesis's shrunk counterexample; ``examples`` is the number of the sweep's
    example that failed first (before shrinking)."""
    check: str
    message: str
    error: BaseException = None
    shapes: list = None
    layouts: list = None
    kwargs: dict = None
    noise_shapes: list = None
    examples: int = None

    def _field(self, name):
        return getattr(self.error, name, None) if isinstance(self.error, GradcheckError) else None

    @property
    def inner_check(self):
        """What was wrong: "gradcheck" (first derivatives), "gradgradcheck" (only second
        derivatives), "torch parity", or ``check`` itself for an error the op raised."""
        if isinstance(self.error, GradcheckError):
            return "gradcheck" if self.error.order == 1 else "gradgradcheck"
        return getattr(self.error, "check", self.check)

    @property
    def entry(self):
        """((output index), (input index)) of the first disagreeing Jacobian entry."""
        return self._field("entry")

    @property
    def analytic(self):
        return self._field("analytic")

    @property
    def numerical(self):
        return self._field("numerical")

    @property
    def wrt(self):
        """The input by role, e.g. "input 0 (x)" or "grad_output"."""
        return self._field("wrt")


@dataclass
class OpCheckReport:
    """What ``check_op`` found: the checks passed in order, those skipped (with the reason)
    and the first failure (None when every check passed). True when nothing failed."""
    op: str
    passed: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    failure: CheckFailure = None

    @property
    def ok(self):
        return self.failure is None

    def __bool__(self):
        return self.ok

    def __str__(self):
        done = ", ".join(self.passed) or "none"
        skipped = "".join(f"\n  skipped {name}: {why}" for name, why in self.skipped.items())
        if self.ok:
            return f"check_op {self.op}: every check passed ({done}){skipped}"
        f = self.failure
        where = ""
        if f.shapes is not None:
            where = f"\n  on inputs of shapes {f.shapes}, layouts {f.layouts}"
            if f.noise_shapes:
                where += f", fixed noise of shapes {f.noise_shapes}"
            if f.kwargs:
                where += f", arguments {f.kwargs}"
        if f.examples is not None:
            where += (f"\n  (hypothesis's shrunk counterexample; the first failure came at "
                      f"example {f.examples})")
        body = "\n".join("  " + line for line in f.message.splitlines())
        return (f"check_op {self.op}: FAILED in {f.check}"
                + (f" ({f.inner_check})" if f.inner_check != f.check else "")
                + f" (passed before it: {done}){skipped}{where}\n{body}")


class OpCheckError(AssertionError):
    """Raised by ``check_op`` when a check fails; ``.report`` is the ``OpCheckReport``."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


class ParityError(AssertionError):
    """Two computations that must agree do not: minigen and PyTorch (``check`` = "torch
    parity"), the op on contiguous and on other memory layouts (``check`` = "layouts"), or the
    op's forward and a reference implementation's (``check`` = "reference")."""

    def __init__(self, message, check="torch parity"):
        super().__init__(message)
        self.check = check


def _fixed_values(shape, kind, rng):
    """Seeded float64 values of ``kind`` (see ``ELEMENTS``) for the fixed-shape checks."""
    shape = tuple(shape)
    if kind == "smooth":
        return rng.standard_normal(shape)
    if kind == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(MARGIN, 2.0, shape)
    if kind == "positive":
        return rng.uniform(0.2, 3.0, shape)
    if kind == "above_minus_one":
        return rng.uniform(-0.8, 3.0, shape)
    if kind == "distinct":
        n = int(np.prod(shape))
        return ((rng.permutation(n) + rng.uniform(0, 0.4, n)) * 0.25 - n / 8).reshape(shape)
    raise ValueError(f"check_op: unknown kind {kind!r}; one of smooth, nonzero, positive, "
                     f"above_minus_one, distinct")


def _is_shape(item):
    return isinstance(item, tuple) and all(isinstance(v, (int, np.integer)) for v in item)


def _arrays(items, make):
    """Arrays (float64 copies) from arrays, Tensors, nested lists, or shapes (``make``)."""
    out = []
    for item in items:
        if _is_shape(item):
            out.append(make(item))
        else:
            out.append(np.array(item.numpy() if isinstance(item, Tensor) else item,
                                dtype=np.float64))
    return out


def _outputs(result):
    return [result] if isinstance(result, Tensor) else [r for r in result if r is not None]


def _unpack(example):
    """A sweep example as (arrays, kwargs, noise): strategies draw 2- or 3-tuples."""
    if len(example) == 2:
        return list(example[0]), dict(example[1]), []
    arrays, kw, noise_arrays = example
    return list(arrays), dict(kw), list(noise_arrays)


def _describe(exc):
    """A one-paragraph account of an exception the op raised: type, message, where."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" \
        if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class _Op:
    """The op under test bound to its fixed arguments: builds inputs and runs the checks."""

    def __init__(self, fn, kwargs, atol, rtol, eps, parity_tol, seed, reference=None):
        self.fn, self.kwargs, self.reference = fn, kwargs, reference
        self.atol, self.rtol, self.eps, self.parity_tol, self.seed = atol, rtol, eps, parity_tol, seed

    def bound(self, kw, fn=None):
        # a partial keeps SomeFunction.apply recognisable: messages name the Function
        import functools
        merged = {**self.kwargs, **kw}
        fn = self.fn if fn is None else fn
        return functools.partial(fn, **merged) if merged else fn

    @staticmethod
    def tensors(arrays, noise_arrays, layout=None):
        xs = [Tensor(a if layout is None else lay_out(a, layout), requires_grad=True)
              for a in arrays]
        return xs + [Tensor(np.asarray(n, dtype=np.float64)) for n in noise_arrays]

    def forward(self, arrays, noise_arrays, kw):
        inputs = self.tensors(arrays, noise_arrays)
        outs = _outputs(self.bound(kw)(*inputs))
        for k, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TypeError(f"output {k} is a {type(o).__name__}, not a Tensor")
            if o.dtype != np.float64:
                raise TypeError(f"output {k} is {o.dtype} for float64 inputs; a forward keeps "
                                "its inputs' dtype (float32 would swamp the finite differences)")
        return outs

    def gradcheck(self, arrays, noise_arrays, kw):
        gradcheck(self.bound(kw), self.tensors(arrays, noise_arrays), self.eps, self.atol,
                  self.rtol)

    def gradgradcheck(self, arrays, noise_arrays, kw):
        """Second derivatives (check_op has just run gradcheck on the same inputs)."""
        gradgradcheck(self.bound(kw), self.tensors(arrays, noise_arrays), eps=self.eps,
                      atol=self.atol, rtol=self.rtol, first_order=False)

    def results(self, arrays, noise_arrays, kw, layout=None):
        """Outputs and input gradients (for a seeded random output gradient) as NumPy."""
        from .autograd import grad
        inputs = self.tensors(arrays, noise_arrays, layout)
        xs = inputs[:len(arrays)]
        outs = _outputs(self.bound(kw)(*inputs))
        rng = np.random.default_rng(self.seed + 7)
        gos = [rng.standard_normal(o.shape) for o in outs]
        pairs = [(o, Tensor(g)) for o, g in zip(outs, gos) if o.requires_grad]
        grads = grad([o for o, _ in pairs], xs, [g for _, g in pairs], allow_unused=True) \
            if pairs else [None] * len(xs)
        return ([o.numpy() for o in outs],
                [np.zeros(a.shape) if g is None else g.numpy() for g, a in zip(grads, arrays)],
                gos)

    def torch_results(self, torch, torch_fn, arrays, noise_arrays, kw, gos):
        xs = [torch.tensor(np.array(a), requires_grad=True) for a in arrays]
        ns = [torch.tensor(np.array(n, dtype=np.float64)) for n in noise_arrays]
        result = torch_fn(*xs, *ns, **{**self.kwargs, **kw})
        outs = [result] if isinstance(result, torch.Tensor) else [r for r in result
                                                                  if r is not None]
        pairs = [(o, torch.tensor(g)) for o, g in zip(outs, gos) if o.requires_grad]
        grads = torch.autograd.grad([o for o, _ in pairs], xs, [g for _, g in pairs],
                                    allow_unused=True) if pairs else [None] * len(xs)
        return ([o.detach().numpy() for o in outs],
                [np.zeros(a.shape) if g is None else g.numpy() for g, a in zip(grads, arrays)])


def _first_difference(name, ours, theirs, rtol, atol, ours_label, theirs_label):
    """None when ``ours`` and ``theirs`` agree, else a message naming the first entry."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        return f"{name} has shape {ours.shape} in {ours_label} but {theirs.shape} in {theirs_label}"
    bad = ~np.isclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=False)
    if not bad.any():
        return None
    idx = tuple(int(v) for v in np.argwhere(bad)[0]) if ours.ndim else ()
    return (f"{name}{list(idx) if idx else ''}: {ours_label} {ours[idx]:.12g}, "
            f"{theirs_label} {theirs[idx]:.12g} ({int(bad.sum())} of {bad.size} entries "
            f"differ beyond rtol={rtol:g}, atol={atol:g})")


def _compare(op_label, roles, ours, theirs, rtol, atol, ours_label, theirs_label, what):
    (outs_a, grads_a), (outs_b, grads_b) = ours, theirs
    if len(outs_a) != len(outs_b):
        return f"{op_label} returns {len(outs_a)} outputs in {ours_label}, {len(outs_b)} in " \
               f"{theirs_label}"
    names = [f"output {k}" if len(outs_a) > 1 else "output" for k in range(len(outs_a))] + \
        [f"the gradient of {role}" for role in roles]
    for name, a, b in zip(names, list(outs_a) + list(grads_a), list(outs_b) + list(grads_b)):
        diff = _first_difference(name, a, b, rtol, atol, ours_label, theirs_label)
        if diff:
            return f"{what} failed for {op_label}: {diff}"
    return None


def check_op(fn, inputs, *, noise=(), kwargs=None, kind="smooth", noise_kind="normal",
             sweep=None, torch_fn=None, reference=None, gradgrad=True, layouts=LAYOUTS,
             max_examples=20, atol=ATOL, rtol=RTOL, eps=EPS, parity_rtol=1e-9,
             parity_atol=1e-12, seed=0, raise_exception=True):
    """Check an op the way minigen checks its own, in one call; return an ``OpCheckReport``.

    ``fn(*inputs, *noise, **kwargs)`` returns a Tensor or a tuple of Tensors: usually
    ``SomeFunction.apply`` (messages then name the Function and its inputs by their names in
    ``forward``), or any function of Tensors.

    * ``inputs`` -- the differentiable inputs at the fixed shapes: arrays (or Tensors, or
      nested lists), or shapes like ``(3, 4)`` filled with seeded float64 values of ``kind``
      ("smooth", "nonzero", "positive", "above_minus_one", "distinct"; see ``ELEMENTS``).
    * ``noise`` -- inputs held fixed (no gradient): arrays, or shapes filled with seeded
      noise of ``noise_kind`` ("normal", "uniform", "gumbel").
    * ``kwargs`` -- the op's other arguments (keywords of ``fn``).

    The checks, in order; the first failure stops them:

    1. "forward": ``fn`` runs and returns float64 Tensors;
    1b. "reference" (when ``reference`` is given: a trusted implementation called like
       ``fn``): the same output values, to ``parity_rtol`` / ``parity_atol``, at the fixed
       inputs and on every example of the sweep. Finite differences only say that a backward
       fits its forward; this says the forward computes the right function (a wrong formula
       with a matching backward passes gradcheck). Gradients are not compared: once the
       values agree, gradcheck decides whether the backward is right, entry by entry;
    3. "gradgradcheck" there (second derivatives; ``gradgrad=False`` skips it for an op
       whose backward is not meant to be differentiable);
    4. "layouts": the same outputs and gradients when the inputs are stored in each of
       ``layouts`` (transposed, reversed, a strided view of a NaN-filled buffer);
    5. "property sweep": gradcheck (and gradgradcheck) on ``max_examples`` examples drawn by
       the hypothesis strategy ``sweep`` (drawing ``(arrays, kwargs)`` or ``(arrays, kwargs,
       noise)``, like ``unary``, ``reduction``, ``with_noise(...)``); on failure hypothesis
       shrinks the example, and the report gives the shrunk counterexample's shapes;
    6. "torch parity": outputs and gradients equal to ``torch_fn(*inputs, *noise,
       **kwargs)`` (float64 torch tensors) to ``parity_rtol`` / ``parity_atol``, at the
       fixed inputs and on the sweep's examples; skipped (and said so) without torch.

    With ``raise_exception`` (the default) a failure raises ``OpCheckError`` (an
    AssertionError whose ``.report`` is the report); otherwise the report is returned and
    is False. Deterministic: the fixed values and the sweep are seeded by ``seed``.
    """
    with np.errstate(all="ignore"):  # a wrong op may divide by zero: the report says where
        return _check_op(fn, inputs, noise, dict(kwargs or {}), kind, noise_kind, sweep,
                         torch_fn, reference, gradgrad, layouts, max_examples, atol, rtol, eps,
                         parity_rtol, parity_atol, seed, raise_exception)


def _check_op(fn, inputs, noise, kwargs, kind, noise_kind, sweep, torch_fn, reference, gradgrad,
              layouts, max_examples, atol, rtol, eps, parity_rtol, parity_atol, seed,
              raise_exception):
    rng = np.random.default_rng(seed)
    arrays = _arrays(inputs, lambda shape: _fixed_values(shape, kind, rng))
    noise_arrays = _arrays(noise, lambda shape: NOISE[noise_kind](rng, shape))
    op = _Op(fn, kwargs, atol, rtol, eps, (parity_rtol, parity_atol), seed, reference)
    report = OpCheckReport(op=op_name(fn))
    fixed = dict(shapes=[a.shape for a in arrays], layouts=["contiguous"] * len(arrays),
                 kwargs=kwargs, noise_shapes=[n.shape for n in noise_arrays])

    def stage(name, run, where=None):
        if report.failure is not None:
            return False
        try:
            run()
        except Exception as e:  # the op's own errors are findings too, reported plainly
            message = str(e) if isinstance(e, (GradcheckError, ParityError)) else \
                f"{name}: {op_name(fn)} raised {_describe(e)}"
            report.failure = CheckFailure(name, message, e, **(where or fixed))
            return False
        report.passed.append(name)
        return True

    def forward():
        outs = op.forward(arrays, noise_arrays, {})
        report.op = op_name(fn, outs)

    stage("forward", forward)
    if reference is not None:
        stage("reference", lambda: _check_reference(op, report.op, arrays, noise_arrays, {}))
    stage("gradcheck", lambda: op.gradcheck(arrays, noise_arrays, {}))
    if gradgrad:
        stage("gradgradcheck", lambda: op.gradgradcheck(arrays, noise_arrays, {}))
    else:
        report.skipped["gradgradcheck"] = "gradgrad=False"
    layouts = [name for name in layouts if name != "contiguous"]
    if layouts:
        stage("layouts", lambda: _check_layouts(op, report.op, arrays, noise_arrays, layouts))
    if sweep is not None:
        _sweep(report, op, sweep, gradgrad, max_examples, seed)
    else:
        report.skipped["property sweep"] = "no sweep strategy given"
    if torch_fn is not None:
        try:
            import torch
        except ImportError:
            torch = None
            report.skipped["torch parity"] = "torch is not installed"
        if torch is not None:
            def parity_fixed():
                _parity(op, report.op, torch, torch_fn, arrays, noise_arrays, {})
            if stage("torch parity", parity_fixed) and sweep is not None:
                report.passed.remove("torch parity")
                _sweep(report, op, sweep, False, max(5, max_examples // 4), seed,
                       torch=(torch, torch_fn), name="torch parity")
    else:
        report.skipped["torch parity"] = "no torch_fn given"
    if report.failure is not None and raise_exception:
        raise OpCheckError(report)
    return report


def _check_layouts(op, label, arrays, noise_arrays, layouts):
    """Outputs and gradients must not depend on how the inputs are stored."""
    roles = [f"input {k}" for k in range(len(arrays))]
    reference = op.results(arrays, noise_arrays, {})[:2]
    for layout in layouts:
        got = op.results(arrays, noise_arrays, {}, layout)[:2]
        problem = _compare(label, roles, got, reference, 1e-10, 1e-12,
                           f"{layout} inputs", "contiguous inputs", "layouts")
        if problem:
            raise ParityError(problem + f" (the op reads its {layout} input wrongly: does it "
                                        f"assume C-contiguous memory?)", check="layouts")


def _check_reference(op, label, arrays, noise_arrays, kw):
    """The op's output values must be the reference's. Not under ``no_grad``: an op may take
    gradients inside its forward (a gradient penalty)."""
    ours = _outputs(op.bound(kw)(*op.tensors(arrays, noise_arrays)))
    theirs = _outputs(op.bound(kw, op.reference)(*op.tensors(arrays, noise_arrays)))
    problem = _compare(label, [], ([o.numpy() for o in ours], []),
                       ([o.numpy() for o in theirs], []), *op.parity_tol, "the op",
                       "the reference", "reference")
    if problem:
        raise ParityError(problem, check="reference")


def _parity(op, label, torch, torch_fn, arrays, noise_arrays, kw):
    ours_out, ours_grads, gos = op.results(arrays, noise_arrays, kw)
    theirs = op.torch_results(torch, torch_fn, arrays, noise_arrays, kw, gos)
    roles = [f"input {k}" for k in range(len(arrays))]
    problem = _compare(label, roles, (ours_out, ours_grads), theirs, *op.parity_tol,
                       "minigen", "torch", "torch parity")
    if problem:
        raise ParityError(problem)


@dataclass
class PropertyRun:
    """What ``run_property`` saw: ``count`` examples run; on failure ``error`` (what the body
    raised), ``example`` (hypothesis's shrunk counterexample: the last one it ran) and
    ``failed_at`` (the number of the example that failed first, before shrinking). A failure
    with ``example`` None means drawing an example raised, not the body."""
    count: int = 0
    error: BaseException = None
    example: object = None
    failed_at: int = None

    @property
    def ok(self):
        return self.error is None


def run_property(body, strategy, max_examples=20, seed=0):
    """``body(example)`` on ``max_examples`` examples drawn by ``strategy``, seeded; returns a
    ``PropertyRun``. The first exception is a failure: hypothesis shrinks the example to a
    small one that still fails, and runs it last, so ``example`` is that one. The property
    runs of ``check_op`` and of the exercise checker are this function."""
    run = PropertyRun()
    last = {"example": None}

    def test_body(example):
        last["example"], run.count = example, run.count + 1
        try:
            body(example)
        except Exception:
            run.failed_at = run.failed_at or run.count
            raise

    test = settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                    verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
                    report_multiple_bugs=False, print_blob=False)(given(strategy)(test_body))
    try:
        hypothesis_seed(seed)(test)()
    except Exception as e:
        run.error = e
        run.example = last["example"] if run.failed_at is not None else None
    return run


def _sweep(report, op, strategy, gradgrad, max_examples, seed, torch=None,
           name="property sweep"):
    """Run the checks on examples drawn by ``strategy``; record the shrunk failure."""
    if report.failure is not None:
        return

    def body(example):
        arrays, kw, noise_arrays = _unpack(example)
        if torch is not None:
            _parity(op, report.op, *torch, arrays, noise_arrays, kw)
            return
        if op.reference is not None:
            _check_reference(op, report.op, arrays, noise_arrays, kw)
        op.gradcheck(arrays, noise_arrays, kw)
        if gradgrad:
            op.gradgradcheck(arrays, noise_arrays, kw)

    run = run_property(body, strategy, max_examples, seed)
    if run.ok:
        report.passed.append(f"{name} ({run.count} examples)" if name == "property sweep"
                             else name)
        return
    e = run.error
    if run.example is None:  # the strategy itself failed, not the op
        report.failure = CheckFailure(name, f"{name}: drawing an example raised "
                                            f"{_describe(e)}", e)
        return
    arrays, kw, noise_arrays = _unpack(run.example)
    message = str(e) if isinstance(e, (GradcheckError, ParityError)) else \
        f"{name}: {report.op} raised {_describe(e)}"
    report.failure = CheckFailure(
        name, message, e, shapes=[a.shape for a in arrays],
        layouts=[layout_of(a) for a in arrays], kwargs={**op.kwargs, **kw},
        noise_shapes=[np.shape(n) for n in noise_arrays], examples=run.failed_at)
