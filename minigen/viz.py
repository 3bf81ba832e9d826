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


def save_bar_panels(panels, labels, path, errors=None, title=None):
    """One bar chart per metric, side by side: ``panels = {"FID (lower is better)": [..]}``
    with one value per entry of ``labels``; ``errors`` (same keys) draws error bars.
    Missing values (None) leave a gap."""
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels) + 1.0,
                                                       1.2 + 0.32 * len(labels)), dpi=100,
                             squeeze=False)
    colours = plt.get_cmap("tab10")(np.arange(len(labels)) % 10)
    y = np.arange(len(labels))
    for ax, (name, values) in zip(axes[0], panels.items()):
        v = np.array([np.nan if x is None else x for x in values], dtype=float)
        err = None if not errors or name not in errors else \
            np.array([0.0 if e is None else e for e in errors[name]], dtype=float)
        ax.barh(y, np.nan_to_num(v), xerr=err, color=colours, capsize=2)
        for yi, vi, ei in zip(y, v, np.zeros_like(v) if err is None else err):
            if np.isfinite(vi):
                ax.text(vi + ei, yi, f" {vi:.3g}", va="center", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_yticks(y)
        ax.set_yticklabels(labels if ax is axes[0][0] else [], fontsize=8)
        ax.invert_yaxis()
        ax.margins(x=0.25)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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


# ---------------------------------------------------------------- GAN figures
# minigen/commands/gan.py computes the samples and D's outputs; these lay them out.
def save_step_curves(steps, curves, path, xlabel="generator iteration", ylabel="", title=None,
                     smooth=25):
    """Noisy per-iteration series (GAN losses): each drawn faintly as is and boldly as a
    moving average over ``smooth`` points, against the iteration numbers ``steps``."""
    steps = np.asarray(steps)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k, (name, ys) in enumerate(curves.items()):
        ys = np.asarray(ys, dtype=np.float64)
        if not len(ys):
            continue
        colour = f"C{k}"
        ax.plot(steps, ys, color=colour, alpha=0.25, linewidth=0.8)
        w = max(1, min(smooth, len(ys) // 5))
        avg = np.convolve(ys, np.ones(w) / w, mode="valid")
        ax.plot(steps[w - 1:], avg, color=colour, linewidth=1.6, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def save_interpolation_rows(images, n_steps, path, image_shape=None, title=None):
    """Rows of ``n_steps`` generated images, G((1 - t) z_A + t z_B) for t from 0 to 1."""
    cols = [f"{t:.2f}" for t in np.linspace(0, 1, n_steps)]
    _labelled_grid(images, n_steps, path, image_shape=image_shape, col_labels=cols,
                   xlabel="t", title=title or "latent interpolation: G((1 - t) z_A + t z_B)")


def save_toy_panels(panels, real, path, title=None, levels_label="D"):
    """Real (grey) and generated (red) 2-D points over a filled contour of D's output, one
    panel per snapshot: ``panels`` is a list of dicts with ``epoch``, ``fake`` (n, 2),
    ``grid`` (k, k) D's output on the square ``extent`` = (lo, hi) of both axes."""
    n = len(panels)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), dpi=100,
                             squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, panel in zip(axes.ravel(), panels):
        lo, hi = panel["extent"]
        k = panel["grid"].shape[0]
        ticks = np.linspace(lo, hi, k)
        cs = ax.contourf(ticks, ticks, panel["grid"], levels=20, cmap="Blues", alpha=0.8)
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.35", alpha=0.5, label="real")
        ax.scatter(panel["fake"][:, 0], panel["fake"][:, 1], s=2, c="tab:red", alpha=0.6,
                   label="generated")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(panel.get("label", f"epoch {panel['epoch']}"), fontsize=9)
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.02).set_label(levels_label, fontsize=7)
    axes.ravel()[0].legend(loc="upper left", fontsize=7, markerscale=3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


# ---------------------------------------------------------------- autoencoder figures
# minigen/commands/aae.py, vaegan.py and catvae.py compute the codes and images; these lay
# them out.
def save_codes_over_density(codes, labels, log_density, extent, path, class_names=None,
                            title=None):
    """2-D codes (n, 2) as dots coloured by class over a grey map of a prior's density:
    ``log_density`` (k, k) is log p(z) on the square ``extent`` = (lo, hi) (row = z2, from lo)."""
    codes = np.asarray(codes)
    lo, hi = extent
    k = log_density.shape[0]
    fig, ax = plt.subplots(figsize=(6.4, 5.8), dpi=100)
    density = np.exp(log_density - log_density.max())
    ax.imshow(density, extent=(lo, hi, lo, hi), origin="lower", cmap="Greys", vmin=0,
              vmax=1.6, interpolation="bilinear", aspect="equal")
    ax.contour(np.linspace(lo, hi, k), np.linspace(lo, hi, k), density, levels=[0.05, 0.5],
               colors="0.3", linewidths=0.6)
    sc = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=2,
                    alpha=0.6)
    if class_names is not None:
        handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(c)))
                   for c in range(len(class_names))]
        ax.legend(handles, class_names, fontsize=7, loc="upper right", framealpha=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def save_labelled_rows(images, n_cols, path, col_labels=None, row_labels=None, image_shape=None,
                       title=None, xlabel=None):
    """A grid of ``n_cols`` images per row with a label for each column and each row (e.g.
    one style per row, one class per column)."""
    _labelled_grid(images, n_cols, path, image_shape=image_shape, row_labels=row_labels,
                   col_labels=col_labels, title=title, xlabel=xlabel)


# ---------------------------------------------------------------- domain adaptation figures
# minigen/commands/dann.py computes the accuracies and the projected features; these lay them out.
def save_xy_curves(curves, path, xlabel="", ylabel="", title=None, dashed=()):
    """Line plot of named series with their own x values: ``curves = {name: (xs, ys)}``;
    the names in ``dashed`` are drawn dashed in the colour of the solid series at the same
    position (e.g. a baseline beside the model: the k-th dashed curve takes colour k)."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    solid = [name for name in curves if name not in dashed]
    for k, name in enumerate(solid):
        xs, ys = curves[name]
        if len(ys):
            ax.plot(xs, ys, color=f"C{k}", marker="o", markersize=3, label=name)
    for k, name in enumerate(n for n in curves if n in dashed):
        xs, ys = curves[name]
        if len(ys):
            ax.plot(xs, ys, color=f"C{k}", linestyle="--", marker="x", markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def save_domain_projections(panels, path, class_names=None, title=None):
    """2-D projections of source and target points, one column per panel: top row coloured
    by domain (source blue, target red), bottom row by class (source dots, target crosses).
    ``panels``: dicts with ``title``, ``source`` (n, 2), ``target`` (m, 2), ``source_labels``,
    ``target_labels``."""
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(4.6 * n, 8.6), dpi=100, squeeze=False)
    for col, panel in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        top.scatter(*panel["source"].T, s=4, c="tab:blue", alpha=0.5, label="source")
        top.scatter(*panel["target"].T, s=4, c="tab:red", alpha=0.5, label="target")
        top.set_title(f"{panel['title']}: by domain", fontsize=10)
        top.legend(fontsize=7, markerscale=3)
        bottom.scatter(*panel["source"].T, s=5, c=panel["source_labels"], cmap="tab10",
                       vmin=0, vmax=9, alpha=0.6, marker="o")
        bottom.scatter(*panel["target"].T, s=9, c=panel["target_labels"], cmap="tab10",
                       vmin=0, vmax=9, alpha=0.6, marker="x", linewidths=0.6)
        bottom.set_title(f"{panel['title']}: by class (o source, x target)", fontsize=10)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    if class_names is not None:
        cmap = plt.get_cmap("tab10")
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(k)) for k in
                   range(len(class_names))]
        axes[1, -1].legend(handles, class_names, fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
