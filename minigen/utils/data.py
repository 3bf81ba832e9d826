"""``minigen.utils.data``: where PyTorch scripts look for ``DataLoader`` and ``TensorDataset``
(``torch.utils.data``). They are ``minigen.data``'s; this module only gives them that address."""
from ..data.loader import DataLoader, Dataset, TensorDataset  # noqa: F401
