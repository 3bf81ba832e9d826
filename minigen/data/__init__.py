"""Datasets: the IDX reader, MNIST / Fashion-MNIST, toy sets, DataLoader."""
