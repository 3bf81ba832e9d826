"""Figures (matplotlib, Agg backend: no screen needed). Each function writes one PNG.

Images are NumPy arrays in [0, 1]: (N, H, W) grey, (N, H, W, 3) colour, or (N, C, H, W)
as the models produce them.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _to_images(images, image_shape=None):
    """-> float array (N, H, W) or (N, H, W, 3) in [0, 1]."""
    from .backend import to_numpy
    x = to_numpy(getattr(images, "data", None) if hasattr(images, "requires_grad") else images)
    x = np.asarray(x, dtype=np.float32)
    if image_shape is not None:
        x = x.reshape((-1,) + tuple(image_shape))
    if x.ndim == 2:  # flat vectors: assume square grey images
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"cannot show vectors of length {x.shape[1]} as square images; "
                             "pass image_shape")
        x = x.reshape(-1, side, side)
    if x.ndim == 4 and x.shape[1] in (1, 3):  # (N, C, H, W) -> (N, H, W[, C])
        x = x.transpose(0, 2, 3, 1)
        if x.shape[-1] == 1:
            x = x[..., 0]
    return np.clip(x, 0.0, 1.0)


def tile(images, nrow, pad=1, image_shape=None):
    """Arrange N images into one array, ``nrow`` images per row, with ``pad`` pixels between."""
    x = _to_images(images, image_shape)
    n, h, w = x.shape[:3]
    ncol = nrow
    nrows = -(-n // ncol)
    shape = (nrows * (h + pad) + pad, ncol * (w + pad) + pad) + x.shape[3:]
    canvas = np.ones(shape, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, ncol)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h,
               pad + c * (w + pad): pad + c * (w + pad) + w] = x[k]
    return canvas


def save_image_grid(images, path, nrow=8, title=None, image_shape=None, row_labels=None,
                    cmap="gray"):
    """Write a grid of images to ``path`` (PNG); ``row_labels`` name each row on the left."""
    canvas = tile(images, nrow, image_shape=image_shape)
    h, w = canvas.shape[:2]
    fig = plt.figure(figsize=(max(3.0, w / 40), max(3.0, h / 40)), dpi=100)
    ax = fig.add_axes([0.12 if row_labels else 0.02, 0.02, 0.86 if row_labels else 0.96,
                       0.90 if title else 0.96])
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        n_rows = len(row_labels)
        step = h / n_rows
        ax.set_yticks([step * (i + 0.5) for i in range(n_rows)])
        ax.set_yticklabels(row_labels, fontsize=8)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def save_curves(curves, path, xlabel="epoch", ylabel="", title=None, logy=False):
    """Line plot of named series: ``curves = {"train": [...], "test": [...]}``."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, ys in curves.items():
        ys = list(ys)
        if ys:
            ax.plot(range(1, len(ys) + 1), ys, marker="o" if len(ys) < 30 else None,
                    markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def save_scatter(points, labels, path, title=None, class_names=None):
    """2-D scatter coloured by integer label (latent spaces, toy data)."""
    points = np.asarray(points)
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    if class_names is not None:
        handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(k)))
                   for k in range(len(class_names))]
        ax.legend(handles, class_names, fontsize=7, markerscale=1, loc="best")
    if title:
        ax.set_title(title)
    _save(fig, path)


def _save(fig, path):
    """Save and close (figures otherwise pile up in memory over a long run)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
