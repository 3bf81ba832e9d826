"""Neural-network building blocks: Module, Parameter, layers, init, losses.

Read in this order: ``module.py`` (the Module tree, state dicts), ``functional.py`` (the
maths of every layer and loss), ``layers.py`` and ``losses.py`` (Modules holding
parameters and options), ``init.py`` (how weights start).
"""
from . import functional, init
from .layers import (ELU, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout,
                     Dropout2d, Embedding, Flatten, Identity, LayerNorm, LeakyReLU, Linear,
                     LogSoftmax, MaxPool2d, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh,
                     Unflatten, Upsample)
from .layers import GradientReversal, InstanceNorm2d
from .losses import (BCELoss, BCEWithLogitsLoss, BernoulliLogLikelihood, CrossEntropyLoss,
                     GaussianNLLLoss, KLDivLoss, KLNormalLoss, L1Loss, MSELoss, NLLLoss,
                     SmoothL1Loss)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential


def __getattr__(name):
    # torch.nn.utils.clip_grad_norm_ lives with the optimizers here; reachable as nn.<name>
    # and nn.utils.<name> too
    if name in ("clip_grad_norm_", "clip_grad_value_", "clamp_weights_"):
        from .. import optim
        return getattr(optim, name)
    if name == "utils":
        import importlib
        return importlib.import_module(f"{__name__}.utils")
    raise AttributeError(f"module 'minigen.nn' has no attribute {name!r}")
