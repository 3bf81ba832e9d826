"""Loss modules: thin holders of a loss's options around ``functional``.

``criterion = BCEWithLogitsLoss(); loss = criterion(logits, target)`` is the same as
``F.binary_cross_entropy_with_logits(logits, target)``; see ``functional`` for the
formulas and for what each ``reduction`` means.
"""
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)  # moved by .to(device) with the model


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class KLDivLoss(_Loss):
    """``loss(log_q, p)``: KL(p || q) with log-probabilities as input (see F.kl_div)."""

    def __init__(self, reduction="mean", log_target=False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)


class BCELoss(_WeightedLoss):
    """Binary cross entropy on probabilities (after a sigmoid)."""

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross entropy on logits (before the sigmoid): the stable choice for GANs."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(NLLLoss):
    """Cross entropy from logits with integer labels (or class probabilities)."""

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction)


class GaussianNLLLoss(_Loss):
    """``loss(input, target, var)``: Gaussian negative log-likelihood with variance ``var``."""

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class KLNormalLoss(_Loss):
    """``loss(mu, logvar)``: KL(N(mu, exp(logvar)) || N(0, I)); default reduction 'sum'."""

    def __init__(self, reduction="sum"):
        super().__init__(reduction)

    def forward(self, mu, logvar):
        return F.kl_normal(mu, logvar, self.reduction)


class BernoulliLogLikelihood(_Loss):
    """``ll(logits, target)``: log p(target | logits), to be maximised (default reduction 'sum')."""

    def __init__(self, reduction="sum"):
        super().__init__(reduction)

    def forward(self, logits, target):
        return F.bernoulli_log_likelihood(logits, target, self.reduction)
