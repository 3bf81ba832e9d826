"""State dicts to and from PyTorch: understand a model in minigen, train it at scale in PyTorch
(``DistributedDataParallel`` on many GPUs), bring it back to study it op by op.

minigen's layers keep PyTorch's parameter names and memory layouts -- ``Linear.weight``
(out, in), ``Conv2d.weight`` (out, in, kh, kw), ``ConvTranspose2d.weight`` (in, out, kh, kw),
``BatchNorm*`` weight/bias/running_mean/running_var/num_batches_tracked, ``Embedding.weight``
(num, dim), ``LayerNorm`` weight/bias -- so a model built the same way in both libraries
(the same layers, assigned to attributes of the same names) has the same state-dict keys and
shapes, and the numbers move across unchanged::

    from minigen import interop
    twin = TorchNet()                       # the same layers under the same names, in torch
    interop.copy_weights(model, twin)       # minigen -> torch (parameters and buffers)
    ...                                     # train twin with torch.distributed
    interop.copy_weights(twin, model)       # torch -> minigen

Nothing here knows any particular model: it works for every Module tree whose leaves are
those layers. Keys, shapes and dtypes are checked first, and every mismatch is named.
torch is imported only when a function needs it.
"""
from collections import OrderedDict

import numpy as np

from .nn.module import Module, _as_numpy


def _is_minigen(model):
    return isinstance(model, Module)


def state_dict_of(model):
    """{key: NumPy array} of a minigen Module, a torch ``nn.Module`` or a state dict of either."""
    if _is_minigen(model):
        return model.state_dict()
    sd = model.state_dict() if hasattr(model, "state_dict") else model
    return OrderedDict((k, np.array(_as_numpy(v))) for k, v in sd.items())


def to_torch_state_dict(model):
    """A minigen model (or its state dict) as a PyTorch state dict: {key: torch.Tensor}, the
    same keys, shapes and dtypes (copies)."""
    import torch
    return OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in state_dict_of(model).items())


def from_torch_state_dict(torch_model):
    """A torch ``nn.Module`` (or its state dict) as a minigen state dict {key: NumPy array}:
    what ``Module.load_state_dict`` takes."""
    return state_dict_of(torch_model)


def check_compatible(source, target):
    """Raise a ValueError listing every key missing on either side and every shape that
    differs between the state dicts ``source`` and ``target``; return None when they match."""
    problems = []
    missing = [k for k in target if k not in source]
    unexpected = [k for k in source if k not in target]
    if missing:
        problems.append("missing in the source: " + ", ".join(missing))
    if unexpected:
        problems.append("not in the target: " + ", ".join(unexpected))
    for key in source.keys() & target.keys():
        a, b = np.shape(source[key]), np.shape(target[key])
        if tuple(a) != tuple(b):
            problems.append(f"{key}: shape {tuple(a)} in the source, {tuple(b)} in the target")
    if problems:
        raise ValueError("the two models are not built the same way (same layers under the "
                         "same attribute names):\n    " + "\n    ".join(problems))


def copy_weights(source, target):
    """Copy every parameter and buffer of ``source`` into ``target``, in place, where one is a
    minigen Module and the other a torch ``nn.Module`` built the same way (either direction).
    Values keep the target's dtypes and devices. Returns ``target``."""
    src, dst = state_dict_of(source), state_dict_of(target)
    check_compatible(src, dst)
    if _is_minigen(target):
        target.load_state_dict(src)
        return target
    import torch
    with torch.no_grad():
        own = target.state_dict()
        for key, value in src.items():
            own[key].copy_(torch.from_numpy(np.array(value)))
    return target
