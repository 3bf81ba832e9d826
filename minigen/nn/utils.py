"""``minigen.nn.utils``: where PyTorch scripts find ``clip_grad_norm_`` (it lives in optim)."""
from ..optim import clamp_weights_, clip_grad_norm_, clip_grad_value_  # noqa: F401


def parameters_to_vector(parameters):
    """All parameters as one flat tensor (a copy; differentiable)."""
    from ..ops import cat
    return cat([p.reshape(-1) for p in parameters])
