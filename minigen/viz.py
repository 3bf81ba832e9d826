"""Figures (matplotlib, Agg backend: no screen needed). Each function writes one PNG.

Images are NumPy arrays in [0, 1]: (N, H, W) grey, (N, H, W, 3) colour, or (N, C, H, W)
as the models produce them.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401  (integer epoch ticks)
import numpy as np  # noqa: E402

from .dot import draw_graph, render as render_dot, trace_modules  # noqa: E402,F401  (graphs)


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


def save_curves(curves, path, xlabel="epoch", ylabel="", title=None, logy=False, x=None,
                note=None):
    """Line plot of named series: ``curves = {"train": [...], "test": [...]}``.

    Series are plotted against 1, 2, ... unless ``x`` maps a series' name to its own x values
    (a per-epoch mean of training batches belongs mid-epoch, at ``epoch - 0.5``). Integer
    x ticks only; every point is marked while there are few, so one epoch shows as points,
    not as an empty plot. ``note`` is a line of small print under the axes."""
    x = x or {}
    fig, ax = plt.subplots(figsize=(6, 4.4 if note else 4), dpi=100)
    longest = 0
    for name, ys in curves.items():
        ys = list(ys)
        if ys:
            xs = list(x.get(name, range(1, len(ys) + 1)))
            longest = max(longest, len(ys))
            ax.plot(xs, ys, marker="o" if len(ys) < 30 else None, markersize=4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if longest <= 2:  # one or two epochs: show them from the start, not as a 0.1-wide sliver
        ax.set_xlim(0, longest + 0.5)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="#444444", wrap=True)
        fig.subplots_adjust(bottom=0.2)
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


# ---------------------------------------------------------------- VAE figures
# The model code computes the images (minigen/commands/vae.py); these functions only lay
# them out, with the labels that make a grid readable (which latent, which value, which class).
def _labelled_grid(images, nrow, path, image_shape=None, row_labels=None, col_labels=None,
                   title=None, xlabel=None, ylabel=None):
    """A tiled grid with optional labels for each row and each column of tiles."""
    canvas = tile(images, nrow, pad=2, image_shape=image_shape)
    h, w = canvas.shape[:2]
    nrows = -(-len(_to_images(images, image_shape)) // nrow)
    scale = 1 / 50  # inches per pixel: a 28-pixel image is about half an inch
    fig = plt.figure(figsize=(w * scale + 1.6, h * scale + 1.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([(c + 0.5) * w / nrow for c in range(nrow)] if col_labels else [])
    if col_labels:
        ax.set_xticklabels(col_labels, fontsize=7)
    ax.set_yticks([(r + 0.5) * h / nrows for r in range(nrows)] if row_labels else [])
    if row_labels:
        ax.set_yticklabels(row_labels, fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def save_reconstructions(originals, reconstructions, path, nrow=8, image_shape=None,
                         title="test images (odd rows) and their reconstructions (even rows)"):
    """Originals and reconstructions in alternating rows: each image sits above its copy."""
    a = _to_images(originals, image_shape)
    b = _to_images(reconstructions, image_shape)
    rows = []
    for start in range(0, len(a), nrow):
        rows += [a[start:start + nrow], b[start:start + nrow]]
    labels = ["original", "reconstr."] * (len(rows) // 2)
    _labelled_grid(np.concatenate(rows), nrow, path, row_labels=labels, title=title)


def save_latent_traversal(images, values, path, row_labels, image_shape=None, title=None):
    """One row per latent coordinate, one column per value it takes (the others held fixed).

    ``images`` is (rows * len(values), ...) in row order; ``row_labels`` names the rows."""
    _labelled_grid(images, len(values), path, image_shape=image_shape, row_labels=row_labels,
                   col_labels=[f"{v:+.1f}" for v in values], xlabel="value of the coordinate",
                   title=title or "latent traversal: each row sweeps one coordinate of z")


def save_interpolations(images, n_steps, path, image_shape=None, title=None):
    """Rows of ``n_steps`` images going from one test image to another through latent space
    (first and last columns: the two originals)."""
    cols = ["A"] + [f"{t:.2f}" for t in np.linspace(0, 1, n_steps - 2)] + ["B"]
    _labelled_grid(images, n_steps, path, image_shape=image_shape, col_labels=cols,
                   xlabel="decode((1 - t) z_A + t z_B)",
                   title=title or "interpolation between two test images in latent space")


def save_manifold(images, values, path, image_shape=None, title=None):
    """Images decoded on a grid of the 2-D latent plane: column = z1, row = z2 (top: high)."""
    labels = [f"{v:+.1f}" for v in values]
    _labelled_grid(images, len(values), path, image_shape=image_shape, col_labels=labels,
                   row_labels=labels[::-1], xlabel="z1", ylabel="z2",
                   title=title or "decoded latent manifold")


def save_class_rows(images, class_names, path, image_shape=None, title=None):
    """One row per class (conditional models): ``images`` is (n_classes * per_row, ...)."""
    per_row = len(_to_images(images, image_shape)) // len(class_names)
    _labelled_grid(images, per_row, path, image_shape=image_shape, row_labels=list(class_names),
                   title=title or "samples, one row per class")
