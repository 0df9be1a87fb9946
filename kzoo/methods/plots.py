"""Figures of the training loops (matplotlib, imported on first use), saved atomically as PNG files."""

import os

from kzoo.io import atomic_file


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=110):
    """Write ``fig`` as a PNG at ``path`` (through a temporary file and a rename); returns the absolute path."""
    path = os.path.abspath(path)
    with atomic_file(path, ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return path
