"""Differentiable operations, one module per family.

=============  ==========================================================
elementwise    add sub mul div pow neg exp log log1p sqrt abs clamp sin cos
               maximum minimum where lerp masked_fill (+ sign, floor, round,
               comparisons, isnan, logical ops: not differentiable)
activation     sigmoid tanh relu leaky_relu softplus elu softmax log_softmax
reduce         sum mean var std max min amax amin norm prod logsumexp sort topk
               (+ argmax argmin all any)
linalg         matmul mm bmm dot outer
conv           conv2d conv_transpose2d max_pool2d avg_pool2d (im2col + GEMM)
shape          reshape permute transpose broadcast_to expand repeat squeeze unsqueeze
               flatten cat stack split chunk pad getitem gather index_select flip
               index_put astype to_device
inplace        add_ sub_ mul_ div_ clamp_ copy_ zero_ fill_ normal_ ... and x[i] = v
random         bernoulli multinomial normal (samples: constants)
=============  ==========================================================
"""
from .activation import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, softplus, tanh
from .conv import avg_pool2d, conv2d, conv_transpose2d, max_pool2d
from .elementwise import (abs, add, allclose, ceil, clamp, clip, compare, cos, div, eq, equal,
                          exp, floor, ge, gt, isclose, isfinite, isinf, isnan, le, lerp, log,
                          log1p, logical, logical_and, logical_not, logical_or, lt, masked_fill,
                          maximum, minimum, mul, ne, neg, pow, reciprocal, round, rsqrt, sign,
                          sin, sqrt, square, sub, where)
from .linalg import bmm, dot, matmul, mm, outer
from .reduce import (all, amax, amin, any, argmax, argmin, argsort, logsumexp, max, mean, min,
                     norm, prod, sort, std, sum, topk, var)
from .shape import (as_tensor, astype, broadcast_to, cat, chunk, concatenate, expand, expand_as,
                    flatten, flip, gather, getitem, index_put, index_select, narrow, pad, permute,
                    repeat, reshape, reshape_as, select, split, squeeze, stack, t, to_device,
                    transpose, unbind, unbroadcast, unsqueeze, view, view_as)
from .random import bernoulli, multinomial, normal, standard_gumbel
from . import inplace as _inplace

# Functions that are also Tensor methods: x.exp() is exp(x).
TENSOR_METHODS = [
    "add", "sub", "mul", "div", "neg", "exp", "log", "log1p", "sqrt", "abs", "clamp", "clip",
    "sin", "cos", "square", "reciprocal", "rsqrt", "lerp", "masked_fill",
    "maximum", "minimum", "sign", "floor", "ceil", "round", "isnan", "isinf", "isfinite",
    "eq", "ne", "lt", "le", "gt", "ge", "equal", "isclose", "allclose",
    "logical_and", "logical_or", "logical_not",
    "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "softmax", "log_softmax",
    "sum", "mean", "var", "std", "max", "min", "amax", "amin", "logsumexp", "argmax", "argmin",
    "all", "any", "norm", "prod", "sort", "argsort", "topk",
    "matmul", "mm", "bmm", "dot", "reshape", "view", "view_as", "reshape_as", "permute",
    "transpose", "t", "broadcast_to", "expand", "expand_as", "repeat", "squeeze", "unsqueeze",
    "flatten", "split", "chunk", "gather", "index_select", "narrow", "select", "unbind", "flip",
    "pow", "bernoulli", "multinomial",
]

# In-place methods (x.add_(y), x.zero_() ...): see ops/inplace.py for the rules.
INPLACE_METHODS = [
    "add_", "sub_", "mul_", "div_", "pow_", "lerp_", "clamp_", "clip_", "masked_fill_",
    "copy_", "neg_", "abs_", "exp_", "log_", "sqrt_", "sigmoid_", "tanh_", "relu_", "zero_",
    "fill_", "normal_", "uniform_", "bernoulli_", "exponential_",
]
