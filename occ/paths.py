"""Where every stage reads and writes: its results folder (``results/<stage>``, the stage's name in
:data:`occ.registry.STAGES`), and the data and run folders.

Large artefacts (features, checkpoints, WAVs) live under `data/` and `runs/` (DVC-cached, git-ignored); small
results (tables, metrics, curves, figures, executed notebooks) under `results/<stage>/` (committed).
Notebooks run from the repository root (DVC, papermill) or from `notebooks/` (Jupyter): `project_root`
finds the root either way, so no notebook needs a literal path or `os.chdir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from occ.atomic import make_folder


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) that holds params.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file():
            return folder
    raise FileNotFoundError(f"No params.yaml at or above {here}: run from inside the occ repository.")


@dataclass(frozen=True)
class Layout:
    """The project's folders, relative to its root."""

    root: Path

    @classmethod
    def find(cls, start: str | Path | None = None) -> "Layout":
        return cls(project_root(start))

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    def results(self, stage: str, variant: str | None = None, seed: int | None = None) -> Path:
        """`results/<stage>[/<variant>][/seed<k>]`, created on demand."""
        path = self.root / "results" / stage / (variant or "") / seed_dir(seed)
        make_folder(path)
        return path

    def data(self, relative: str) -> Path:
        """A path from params (e.g. `data.cache`), resolved against the root unless absolute."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def supcon_run(self) -> Path:
        return self.root / "runs" / "supcon"

    def train_run(self, variant: str, seed: int | None = None) -> Path:
        """`runs/train/<variant>/seed<k>`: one GAN run's checkpoints."""
        return self.root / "runs" / "train" / variant / seed_dir(seed)

    def generated(self, variant: str, seed: int | None = None) -> Path:
        """Generated WAVs of one run in the DCASE submission layout."""
        return self.root / "runs" / "generated" / variant / seed_dir(seed)

    @property
    def reference(self) -> Path:
        """Embeddings of the held-out reference clips (FAD reference statistics)."""
        return self.root / "runs" / "reference"


def seed_dir(seed: int | None) -> str:
    """The folder name of one training seed, ``seed<k>`` (empty for ``None``)."""
    return "" if seed is None else f"seed{int(seed)}"
