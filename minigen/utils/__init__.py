"""``minigen.utils``: PyTorch's ``torch.utils`` names (``minigen.utils.data.DataLoader``)."""
from . import data  # noqa: F401
