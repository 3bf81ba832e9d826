"""Module, Parameter and the containers (Sequential, ModuleList, ModuleDict).

A ``Module`` is a tree: it owns Parameters (the weights an optimizer updates), buffers
(state that is saved but not trained, such as batch norm's running statistics) and
child Modules. Assigning an attribute files it in the right place::

    class MLP(Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(2, 8)        # a child module  -> self._modules["fc"]
            self.scale = Parameter(ones(8))   # a parameter -> self._parameters["scale"]

        def forward(self, x):
            return self.fc(x) * self.scale

Everything else -- ``parameters()``, ``state_dict()``, ``train()``/``eval()``, ``to()`` --
is a walk over that tree. Names and key formats ("0.weight", "bn.running_mean") are
PyTorch's, so a torch state dict converted to NumPy arrays loads into the same model.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..tensor import Tensor, parse_to


class Parameter(Tensor):
    """A Tensor that is a weight of a Module: it requires grad and is found by ``parameters()``.

    ``Parameter(tensor)`` shares the tensor's array and keeps its float dtype (as torch).
    Anything else (an array, a list) is copied into the default dtype, float32, as
    ``minigen.tensor`` does -- so optimizer steps never write into the caller's array.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
            if data.dtype.kind != "f":
                data = data.astype(backend.get_default_dtype())
        else:
            data = get_array_module(data).array(data, dtype=backend.get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


# what load_state_dict returns when strict=False (the same fields as torch's)
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_numpy(value):
    """A state-dict value (minigen Tensor, NumPy/CuPy array, torch tensor, number) as NumPy."""
    if isinstance(value, Tensor):
        return backend.to_numpy(value.data)
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor (torch not imported)
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    try:
        return backend.to_numpy(value)  # a CuPy array
    except AttributeError:
        return np.asarray(value)


class Module:
    """Base class of every layer and model. Subclasses define ``__init__`` and ``forward``."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dicts to exist first
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ registration
    def _registries(self):
        try:
            d = self.__dict__
            return d["_parameters"], d["_buffers"], d["_modules"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() in __init__ "
                                 "before assigning parameters, buffers or sub-modules") from None

    def __setattr__(self, name, value):
        # Parameters and Modules are filed in their registries (in assignment order, which
        # is the order of parameters() and of the state dict); a known slot keeps its kind.
        d = self.__dict__
        if isinstance(value, (Parameter, Module)):
            params, buffers, modules = self._registries()
            for registry in (params, buffers, modules):
                registry.pop(name, None)
            d.pop(name, None)
            (params if isinstance(value, Parameter) else modules)[name] = value
        elif name in d.get("_parameters", ()) or name in d.get("_modules", ()):
            if value is not None:
                kind = "Parameter" if name in d["_parameters"] else "Module"
                raise TypeError(f"cannot assign {type(value).__name__} to {name!r}: it is a "
                                f"{kind} slot (assign a {kind} or None)")
            (d["_parameters"] if name in d["_parameters"] else d["_modules"])[name] = None
        elif name in d.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r} "
                                "(assign a Tensor or None)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, ()):
                del self.__dict__[registry][name]
                self.__dict__["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Add a Parameter (or None, meaning 'this layer has no such weight', e.g. bias=False)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._registries()[0][name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state moved by ``to()`` and saved by ``state_dict()`` but not trained.

        ``persistent=False`` keeps it out of the state dict.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._registries()[1][name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        self._registries()[2][str(name)] = module

    register_module = add_module

    # ------------------------------------------------------------ walking the tree
    def named_modules(self, prefix="", memo=None):
        """(name, module) for this module and every descendant, depth first, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, prefix, recurse):
        seen = set()  # a weight shared by two layers is reported (and optimised) once
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively), then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ modes and moves
    def train(self, mode=True):
        """Training mode (dropout active, batch norm uses batch statistics) for the whole tree."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: dropout is the identity, batch norm uses its running statistics."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def to(self, *args, **kwargs):
        """Move every parameter and buffer to a device and/or cast floats to a dtype, in place:
        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` as in PyTorch.

        The Parameter objects stay the same (only their arrays change), so an optimizer
        built before the move still updates them.
        """
        device, dtype, _ = parse_to(args, kwargs)
        if device is not None:
            device = backend.check_device(device)

        def convert(array):
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array if device is None else backend.to_device(array, device)

        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is None:
                    continue
                t.data = convert(t.data)
                if t.grad is not None:
                    t.grad = Tensor(convert(t.grad.data))
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    # ------------------------------------------------------------ state dict
    def state_dict(self, prefix=""):
        """Every parameter and persistent buffer as ``{"name.path": numpy array}``.

        The arrays are copies -- a snapshot. (PyTorch returns tensors that share storage
        with the model, so a "best model so far" dict silently changes as training goes
        on; here it does not.)
        """
        out = OrderedDict()
        for mod_prefix, m in self.named_modules(prefix):
            head = f"{mod_prefix}." if mod_prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[head + name] = backend.to_numpy(p.data).copy()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[head + name] = backend.to_numpy(b.data).copy()
        return out

    def _state_slots(self):
        """{key: Tensor} for everything ``state_dict`` saves (the targets of a load)."""
        slots = OrderedDict()
        for mod_prefix, m in self.named_modules():
            head = f"{mod_prefix}." if mod_prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    slots[head + name] = p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    slots[head + name] = b
        return slots

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into the parameters and buffers, in place.

        All problems are collected first and reported together in one RuntimeError:
        missing keys and unexpected keys (only when ``strict``), and every shape
        mismatch (always). Values may be NumPy/CuPy arrays, minigen or torch tensors.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        slots = self._state_slots()
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        arrays, mismatched = {}, []
        for key, target in slots.items():
            if key not in state_dict:
                continue
            value = _as_numpy(state_dict[key])
            if tuple(value.shape) != tuple(target.shape):
                mismatched.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{tuple(value.shape)} from checkpoint, the shape in current "
                                  f"model is {tuple(target.shape)}")
            arrays[key] = value
        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " +
                            ", ".join(f'"{k}"' for k in unexpected))
        problems += mismatched
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" +
                               "\n\t".join(problems))
        for key, value in arrays.items():
            target = slots[key]
            xp = get_array_module(target.data)
            target.data[...] = xp.asarray(backend.to_device(value, target.device))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ printing
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (layer sizes, options)."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = ([extra] if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"


# ------------------------------------------------------------------ containers
class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Children are named "0", "1", ... (or by the keys of an OrderedDict), so their
    state-dict keys are "0.weight", "2.bias" as in PyTorch.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential: index {index} out of range for {len(items)} modules")
        return items[index][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[index]

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is a container: iterate over it in your forward()")


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        for name, m in (dict(modules) if modules else {}).items():
            self.add_module(name, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict is a container: index it in your forward()")
