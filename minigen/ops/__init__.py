"""Differentiable operations, one module per family.

=============  ==========================================================
elementwise    add sub mul div pow neg exp log log1p sqrt abs clamp
               maximum minimum where (+ sign, compare: not differentiable)
activation     sigmoid tanh relu leaky_relu softplus elu softmax log_softmax
reduce         sum mean var std max min logsumexp (+ argmax argmin)
linalg         matmul outer
conv           conv2d conv_transpose2d max_pool2d avg_pool2d (im2col + GEMM)
shape          reshape permute transpose broadcast_to squeeze unsqueeze
               flatten cat stack split chunk pad getitem astype to_device
=============  ==========================================================
"""
from .activation import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, softplus, tanh
from .conv import avg_pool2d, conv2d, conv_transpose2d, max_pool2d
from .elementwise import (abs, add, clamp, clip, compare, div, exp, log, log1p, maximum, minimum,
                          mul, neg, pow, sign, sqrt, sub, where)
from .linalg import matmul, outer
from .reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var
from .shape import (as_tensor, astype, broadcast_to, cat, chunk, concatenate, expand, flatten,
                    getitem, pad, permute, reshape, split, squeeze, stack, to_device, transpose,
                    unbroadcast, unsqueeze, view)

# Functions that are also Tensor methods: x.exp() is exp(x).
TENSOR_METHODS = [
    "exp", "log", "log1p", "sqrt", "abs", "clamp", "clip", "maximum", "minimum", "sign",
    "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "softmax", "log_softmax",
    "sum", "mean", "var", "std", "max", "min", "amax", "amin", "logsumexp", "argmax", "argmin",
    "matmul", "reshape", "view", "permute", "transpose", "broadcast_to", "expand", "squeeze",
    "unsqueeze", "flatten", "split", "chunk", "pow",
]
