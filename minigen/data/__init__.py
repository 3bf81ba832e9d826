"""Data: the IDX reader, MNIST / Fashion-MNIST / digits, toy 2-D sets, batching.

    from minigen.data import load_dataset, DataLoader
    X, y = load_dataset("fashion-mnist", split="train")   # float32 (60000, 784) in [0, 1]
    for x, t in DataLoader((X, y), batch_size=128, shuffle=True, seed=0):
        ...

Read in this order: `idx` (the file format), `datasets` (where the files are found, how
they are downloaded and checked), `toy` (synthetic sets), `loader` (batches, resumable
shuffling).
"""
from .datasets import (SOURCES, ChecksumError, DataNotFoundError, FashionMNIST, MNIST,
                       cache_dir, download_file, load_dataset, load_digits, load_fashion_mnist,
                       load_mnist, locate)
from .idx import IDX_DTYPES, IDXError, read_idx, write_idx
from .loader import DataLoader, Dataset, TensorDataset, default_collate
from .toy import (colours, grid_centers, grid_of_gaussians, ring_centers, ring_of_gaussians,
                  two_moons)

__all__ = [
    "read_idx", "write_idx", "IDXError", "IDX_DTYPES",
    "MNIST", "FashionMNIST", "load_dataset", "load_fashion_mnist", "load_mnist", "load_digits",
    "DataNotFoundError", "ChecksumError", "cache_dir", "locate", "download_file", "SOURCES",
    "ring_of_gaussians", "grid_of_gaussians", "ring_centers", "grid_centers", "two_moons",
    "colours",
    "DataLoader", "Dataset", "TensorDataset", "default_collate",
]
