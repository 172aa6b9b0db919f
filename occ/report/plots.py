"""Figures of single runs: Figure 1 (push/pull schematic), Figure 2 (t-SNE of discriminator embeddings), a run's
loss curves, generated log-mels beside real ones.

Every function returns a matplotlib Figure and works headless (Agg); the stages' calls save them and the
notebooks show them. Figures over
seeds are in `occ.report.plots_seeds`, figures of the training data in `occ.report.plots_data`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from occ.config import SUPCON_KINDS  # noqa: E402
from occ.report.paper import OCC_PAIRS, PAPER_RUNS  # noqa: E402

#: Figure 1's panels: the losses of the paper's with / without OCC pairs, each without beside its with (2C | O2C,
#: C-SupCon | OC-SupCon), and the losses with OCC.
PAIRED_LOSSES = tuple(PAPER_RUNS[v]["loss"] for pair in OCC_PAIRS for v in pair)
OCC_LOSSES = tuple(PAPER_RUNS[with_occ]["loss"] for _, with_occ in OCC_PAIRS)
LOSS_TITLES = {"2c": "2C (ContraGAN)", "o2c": "O2C (eq. 3)", "csupcon": "C-SupCon", "ocsupcon": "OC-SupCon (eq. 5)"}


def push_pull_roles(kind: str) -> dict[str, str]:
    """Which terms each loss pulls toward the anchor d_i and which it pushes away (docs/reference.md, section 1).

    A term in the numerator (and denominator) is pulled; a term only in the denominator is pushed.

    Returns
    -------
    dict
        term -> "pull" or "push", for the terms "class" (e(c_i)), "source" (f(x_i), SupCon kinds only),
        "same-class data" (d_k, y_k = y_i) and "other-class data" (d_k, y_k != y_i).
    """
    if kind not in LOSS_TITLES:
        raise ValueError(f"kind = {kind!r} is not one of {sorted(LOSS_TITLES)}")
    roles = {"class": "pull"}
    if kind in SUPCON_KINDS:
        roles["source"] = "pull"
    roles["same-class data"] = "push" if kind in OCC_LOSSES else "pull"
    roles["other-class data"] = "push"
    return roles


def plot_push_pull() -> plt.Figure:
    """Figure 1: what each contrastive loss pulls toward and pushes away from one anchor embedding.

    Points sit on the unit circle (cosine similarity lives on the hypersphere). Green arrows pull toward the
    anchor d_i, red arrows push away; the roles come from `push_pull_roles`, i.e. from the loss equations.
    Two panels to a row, each loss beside its OCC counterpart (2C | O2C, C-SupCon | OC-SupCon), so the
    figure reads at its own size (about 1000 px wide at 110 dpi).
    """
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))  # rows: 2C vs O2C, C-SupCon vs OC-SupCon
    anchor = np.array([1.0, 0.0])
    same = [_on_circle(a) for a in (0.9, -0.95, 1.25)]
    other = [_on_circle(a) for a in (2.3, 3.0, -2.4, 1.9)]
    places = {"class": _on_circle(0.5), "source": _on_circle(-0.5)}
    for ax, kind in zip(axes.flat, PAIRED_LOSSES):
        roles = push_pull_roles(kind)
        ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.8", lw=1))
        ax.scatter(*anchor, s=160, c="tab:blue", edgecolors="k", zorder=5)
        ax.annotate("$d_i$", anchor, xytext=(8, -14), textcoords="offset points", fontsize=12)
        ax.scatter(*places["class"], marker="s", s=140, c="tab:blue", edgecolors="k", zorder=5)
        ax.annotate("$e(c_i)$", places["class"], xytext=(6, 6), textcoords="offset points", fontsize=11)
        _arrow(ax, places["class"], anchor, roles["class"])
        if "source" in roles:
            ax.scatter(*places["source"], marker="^", s=150, c="tab:blue", edgecolors="k", zorder=5)
            ax.annotate("$f(x_i)$", places["source"], xytext=(6, -16), textcoords="offset points", fontsize=11)
            _arrow(ax, places["source"], anchor, roles["source"])
        for p in same:
            ax.scatter(*p, s=80, c="tab:blue", alpha=0.6, zorder=4)
            _arrow(ax, p, anchor, roles["same-class data"])
        for p in other:
            ax.scatter(*p, s=80, c="tab:orange", alpha=0.8, zorder=4)
            _arrow(ax, p, anchor, roles["other-class data"])
        ax.set_title(LOSS_TITLES[kind])
        ax.set_xlim(-1.35, 1.55)
        ax.set_ylim(-1.35, 1.35)
        ax.set_aspect("equal")
        ax.axis("off")
    handles = [
        plt.Line2D([], [], color="tab:green", lw=2, label="pulled toward $d_i$"),
        plt.Line2D([], [], color="tab:red", lw=2, label="pushed away from $d_i$"),
        plt.Line2D([], [], ls="", marker="o", color="tab:blue", label="same class as $x_i$"),
        plt.Line2D([], [], ls="", marker="o", color="tab:orange", label="other classes"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False, fontsize=11)
    fig.suptitle("Figure 1: oneself-conditioned contrastive (OCC) learning\npushes same-class samples away too")
    fig.tight_layout(rect=(0, 0.07, 1, 0.94))
    return fig


def plot_loss_curves(logs: dict[str, pd.DataFrame], *, column: str = "d_adv", smooth: int = 20,
                     title: str = "") -> plt.Figure:
    """Curves of one log column per variant (moving average over `smooth` steps), e.g. D's adversarial loss."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, df in logs.items():
        y = df[column].rolling(max(1, smooth), min_periods=1).mean()
        ax.plot(df["step"], y, label=name, lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel(column)
    ax.set_title(title or column)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_tsne_panels(points: dict[str, np.ndarray], labels: dict[str, np.ndarray], class_names: list[str],
                     *, title: str = "") -> plt.Figure:
    """One t-SNE panel per model, points coloured by class (Figure 2)."""
    n = len(points)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, xy) in zip(axes.flat, points.items()):
        for c, cname in enumerate(class_names):
            sel = labels[name] == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(c % 10), label=cname)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [plt.Line2D([], [], ls="", marker="o", color=cmap(c % 10), label=cn) for c, cn in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(7, len(class_names)), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


def plot_generated_vs_real(gen_mels: np.ndarray, gen_labels: np.ndarray, real_mels: np.ndarray, real_labels: np.ndarray,
                           class_names: list[str], *, per_class: int = 4, title: str = "") -> plt.Figure:
    """Per class (one row each), `per_class` generated log-mels on the left and `per_class` real ones on the right.

    Both are natural-log mels (N, 80, frames) on the same colour scale, so a reader sees at a glance whether a
    class's generated clips have the shape, the level and the variety of its real clips.
    """
    gen_mels, gen_labels = np.asarray(gen_mels), np.asarray(gen_labels)
    real_mels, real_labels = np.asarray(real_mels), np.asarray(real_labels)
    n_rows, n_cols = len(class_names), 2 * per_class
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.55 * n_cols, 1.05 * n_rows + 0.6), squeeze=False)
    for c, cname in enumerate(class_names):
        for side, (mels, labels) in enumerate(((gen_mels, gen_labels), (real_mels, real_labels))):
            idx = np.flatnonzero(labels == c)[:per_class]
            for j in range(per_class):
                ax = axes[c, side * per_class + j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j < len(idx):
                    ax.imshow(mels[idx[j]], origin="lower", aspect="auto", cmap="magma", vmin=-11.5, vmax=2.5)
                if side == 1 and j == 0:
                    for spine in ax.spines.values():
                        spine.set_edgecolor("tab:green")
                        spine.set_linewidth(2)
        axes[c, 0].set_ylabel(cname, rotation=0, ha="right", va="center", fontsize=10, fontweight="bold")
    axes[0, 0].set_title("generated", loc="left", fontsize=10)
    axes[0, per_class].set_title("real (held out)", loc="left", fontsize=10, color="tab:green")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _on_circle(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def _arrow(ax, point: np.ndarray, anchor: np.ndarray, role: str) -> None:
    direction = anchor - point
    if role == "pull":
        start, delta, color = point, 0.35 * direction, "tab:green"
    else:
        start, delta, color = point, -0.25 * direction / max(np.linalg.norm(direction), 1e-9), "tab:red"
    ax.annotate("", xy=start + delta, xytext=start, arrowprops=dict(arrowstyle="->", color=color, lw=2))
