"""Optimizers (SGD, Adam, AdamW, RMSprop, Adadelta, Adagrad) and gradient/weight clipping
helpers; learning-rate schedules are in ``minigen.optim.lr_scheduler``.

Each optimizer mirrors ``torch.optim`` -- names, argument order, defaults and the
exact update arithmetic -- so the same hyper-parameters give the same trajectory.

An update runs once per parameter per training step, so it is written for speed:
in-place NumPy/CuPy ufuncs (``out=``, ``*=``, ``+=``) on the raw arrays, one reusable
scratch array per parameter, no graph (``no_grad``), no float64 promotion (a Python
float times a float32 array stays float32).

``state_dict()`` returns plain numbers and NumPy arrays (``minigen.save`` writes it
as is); ``load_state_dict`` restores it into an optimizer over the same parameters.
"""
import math

import numpy as np

from .. import backend
from ..autograd import enable_grad, no_grad
from ..backend import get_array_module
from ..kernels import use_numba
from ..tensor import Tensor


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, step, state dicts.

    ``params`` is an iterable of Tensors, or of dicts ``{"params": [...], "lr": ...}``
    (parameter groups, each with its own hyper-parameters).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}      # id(param) -> {"step": int, "exp_avg": array, ...}
        self._scratch = {}   # id(param) -> a reusable array (not saved)
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors "
                            "(e.g. model.parameters()), got a single Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: expected Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than "
                                 "one group (or twice in one)")
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:  # a fresh array: a grad may be shared with another tensor
                    p.grad = Tensor(get_array_module(p.data).zeros_like(p.data))

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.shape != p.shape:
                        raise RuntimeError(f"{type(self).__name__}.step: gradient of shape "
                                           f"{p.grad.shape} for a parameter of shape {p.shape}")
                    self._update(p.data, p.grad.data, self.state.setdefault(id(p), {}),
                                 self._buffer(p), group)
                    p._version += 1  # changed in place: a graph built before refuses backward
        return loss

    def _update(self, x, g, state, tmp, group):  # pragma: no cover - abstract
        """Update the array ``x`` in place from its gradient ``g``; ``tmp`` is scratch space."""
        raise NotImplementedError

    def _buffer(self, p):
        buf = self._scratch.get(id(p))
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or \
                backend.device_of(buf) != p.device:
            buf = self._scratch[id(p)] = get_array_module(p.data).empty_like(p.data)
        return buf

    # ------------------------------------------------------------ state dicts
    def state_dict(self):
        """{"state": {index: {name: number or array}}, "param_groups": [{..., "params": [index]}]}

        Parameters are numbered in group order, as in torch; arrays are NumPy copies.
        """
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for pid, i in index.items():
            if self.state.get(pid):
                state[i] = {k: (backend.to_numpy(v).copy() if hasattr(v, "shape") else v)
                            for k, v in self.state[pid].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters, step counts and moments saved by ``state_dict``."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} "
                             f"parameter groups, this optimizer {len(self.param_groups)}")
        by_index = {}
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {k} has "
                                 f"{len(saved['params'])} parameters in the saved state, "
                                 f"{len(group['params'])} here")
            by_index.update(zip((int(i) for i in saved["params"]), group["params"]))
        new_state = {}
        for key, saved in state_dict["state"].items():
            p = by_index[int(key)]  # keys may have become strings in some file formats
            entry = {}
            for field, value in saved.items():
                if np.ndim(value) == 0:  # a count such as "step"
                    entry[field] = value.item() if hasattr(value, "item") else value
                    continue
                array = _numpy(value)
                if array.shape != p.shape:
                    raise ValueError(f"{name}.load_state_dict: state {field!r} of parameter "
                                     f"{key} has shape {array.shape}, the parameter {p.shape}")
                xp = get_array_module(p.data)
                entry[field] = xp.array(backend.to_device(array.astype(p.dtype), p.device))
            new_state[id(p)] = entry
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = tuple(v) if isinstance(v, list) else v

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _numpy(value):
    """A saved state value (NumPy/CuPy array, Tensor, list) as a NumPy array."""
    value = value.data if isinstance(value, Tensor) else value
    return backend.to_numpy(value) if backend.device_of(value) == "cuda" else np.asarray(value)


def _check(name, **values):
    for key, value in values.items():
        if value < 0:
            raise ValueError(f"{name}: invalid {key} {value} (must be >= 0)")


# ================================================================== SGD
class SGD(Optimizer):
    """Stochastic gradient descent with momentum (heavy ball or Nesterov) and weight decay.

        g <- g + weight_decay * x
        b <- momentum * b + (1 - dampening) * g        (b = g at the first step)
        g <- g + momentum * b   if nesterov   else   b
        x <- x - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        _check("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, x, g, state, tmp, group):
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd:
            g = g + wd * x  # a new array: p.grad itself is never modified
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                if group["dampening"]:
                    get_array_module(g).multiply(g, 1 - group["dampening"], out=tmp)
                    buf += tmp
                else:
                    buf += g
            g = g + momentum * buf if group["nesterov"] else buf
        get_array_module(x).multiply(g, lr, out=tmp)
        x -= tmp


# ================================================================== Adam, AdamW
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with torch's arithmetic::

        m <- m + (1 - beta1) (g - m)          v <- beta2 v + (1 - beta2) g^2
        x <- x - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    ``weight_decay`` adds ``wd * x`` to the gradient (L2 penalty); AdamW decays the
    weights directly instead. ``amsgrad`` uses the running maximum of v.
    GANs train with ``Adam(params, lr=2e-4, betas=(0.5, 0.999))`` (DCGAN).
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False):
        name = type(self).__name__
        _check(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{name}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, x, g, state, tmp, group):
        xp = get_array_module(x)
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(x)
            state["exp_avg_sq"] = xp.zeros_like(x)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(x)
        state["step"] += 1
        t = state["step"]
        if wd and self._decoupled:
            x *= 1 - lr * wd
        elif wd:
            g = g + wd * x
        m, v = state["exp_avg"], state["exp_avg_sq"]
        bias_correction1 = 1 - beta1 ** t
        bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
        if not group["amsgrad"] and _fused(x, m, v):  # the passes below, as one (kernels/cpu.py)
            from ..kernels import cpu
            cpu.adam_update(x, g, m, v, beta1, beta2, eps, bias_correction1,
                            bias_correction2_sqrt, lr)
            return
        xp.subtract(g, m, out=tmp)          # first moment, as torch's lerp: m + (1-b1)(g - m)
        tmp *= 1 - beta1
        m += tmp
        v *= beta2                          # second moment: b2 v + (1-b2) g g
        xp.multiply(g, 1 - beta2, out=tmp)
        tmp *= g
        v += tmp
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        xp.sqrt(v, out=tmp)                 # denominator sqrt(v_hat) + eps ...
        tmp /= bias_correction2_sqrt
        tmp += eps
        xp.divide(m, tmp, out=tmp)          # ... then the step m / denominator
        tmp *= lr / bias_correction1
        x -= tmp


def _fused(x, *state):
    """True when the Numba kernels can update ``x`` and its ``state`` arrays (one kind of
    array, as they are made by ``zeros_like(x)``) in place: NumPy, kernels on, contiguous (a
    flat view of each is the array itself)."""
    return use_numba(x) and all(a.flags.c_contiguous for a in (x,) + state)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): x <- x (1 - lr wd) first."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ================================================================== RMSprop
class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), the WGAN paper's optimizer, with torch's arithmetic::

        s <- alpha s + (1 - alpha) g^2
        d <- sqrt(s - gbar^2) + eps   (centered, gbar = running mean of g)   or   sqrt(s) + eps
        b <- momentum b + g / d ;  x <- x - lr b     (or x <- x - lr g / d without momentum)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False):
        _check("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
               momentum=momentum)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _update(self, x, g, state, tmp, group):
        xp = get_array_module(x)
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, wd = group["momentum"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(x)
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(x)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(x)
        state["step"] += 1
        if wd:
            g = g + wd * x
        s = state["square_avg"]
        s *= alpha
        xp.multiply(g, 1 - alpha, out=tmp)
        tmp *= g
        s += tmp
        if group["centered"]:
            gbar = state["grad_avg"]
            xp.subtract(g, gbar, out=tmp)    # gbar + (1-alpha)(g - gbar), torch's lerp
            tmp *= 1 - alpha
            gbar += tmp
            xp.multiply(gbar, gbar, out=tmp)
            xp.subtract(s, tmp, out=tmp)
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(s, out=tmp)
        tmp += eps
        xp.divide(g, tmp, out=tmp)
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += tmp
            xp.multiply(buf, lr, out=tmp)
        else:
            tmp *= lr
        x -= tmp


# ================================================================== Adadelta, Adagrad
class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012, Algorithm 1), with torch's arithmetic and defaults::

        v <- rho v + (1 - rho) g^2                      (running mean of squared gradients)
        d <- sqrt(u + eps) / sqrt(v + eps) * g          (the step, in the units of x)
        u <- rho u + (1 - rho) d^2                      (running mean of squared steps)
        x <- x - lr d

    ``lr`` scales the step (1.0 in the paper; PyTorch's MNIST example uses it with StepLR).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0):
        _check("Adadelta", lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        if rho > 1:
            raise ValueError(f"Adadelta: invalid rho {rho} (must be in [0, 1])")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, x, g, state, tmp, group):
        xp = get_array_module(x)
        lr, rho, eps, wd = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(x)
            state["acc_delta"] = xp.zeros_like(x)
        state["step"] += 1
        if wd:
            g = g + wd * x
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        xp.multiply(g, 1 - rho, out=tmp)
        tmp *= g
        v += tmp
        std = xp.sqrt(v + eps)
        xp.add(u, eps, out=tmp)              # the step d = sqrt(u + eps) / sqrt(v + eps) * g
        xp.sqrt(tmp, out=tmp)
        tmp /= std
        tmp *= g
        u *= rho
        u += (1 - rho) * tmp * tmp
        tmp *= lr
        x -= tmp


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer 2011), with torch's arithmetic::

        s <- s + g^2 ;   x <- x - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10):
        _check("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
               initial_accumulator_value=initial_accumulator_value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _update(self, x, g, state, tmp, group):
        xp = get_array_module(x)
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(x, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * x
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        xp.multiply(g, g, out=tmp)
        s += tmp
        std = xp.sqrt(s)
        std += group["eps"]
        xp.multiply(g, clr, out=tmp)
        tmp /= std
        x -= tmp


# ================================================================== clipping helpers
def _as_list(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm is the norm of the vector of per-parameter norms (all gradients
    seen as one long vector). Returns that norm, measured before clipping, as a
    Tensor, like torch.nn.utils.clip_grad_norm_.
    """
    params = [p for p in _as_list(parameters) if p.grad is not None]
    if not params:
        return Tensor(np.float32(0.0))
    xp = get_array_module(params[0].grad.data)
    norm_type = float(norm_type)
    grads = [p.grad.data for p in params]
    if math.isinf(norm_type):
        norms = xp.stack([xp.abs(g).max() for g in grads])
        total = norms.max()
    else:
        norms = xp.stack([xp.linalg.norm(g.ravel(), norm_type) for g in grads])
        total = xp.linalg.norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           "gradients is non-finite, so it cannot be clipped")
    coef = max_norm / (float(total) + 1e-6)
    if coef < 1.0:
        for p in params:
            # a new array, not *=: one gradient array can be shared by several tensors
            p.grad = Tensor(p.grad.data * p.grad.dtype.type(coef))
    return Tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad = Tensor(get_array_module(p.grad.data).clip(p.grad.data, -clip_value,
                                                                clip_value))


def clamp_weights_(parameters, low, high=None):
    """Clamp every parameter to [low, high] in place; ``clamp_weights_(ps, c)`` means [-c, c].

    WGAN's Lipschitz constraint on the critic: after each critic step its weights are
    clipped to [-0.01, 0.01] (Arjovsky, Chintala & Bottou 2017, Algorithm 1).
    """
    if high is None:
        low, high = -abs(low), abs(low)
    if low > high:
        raise ValueError(f"clamp_weights_: low {low} is above high {high}")
    for p in _as_list(parameters):
        get_array_module(p.data).clip(p.data, low, high, out=p.data)
        p._version += 1


from . import lr_scheduler  # noqa: E402  (optim.lr_scheduler.StepLR, as in torch)
