"""Generate-once cache of synthetic datasets, keyed by the generator options.

Folder: ``$VIDSEG_CACHE/synthetic/<hash>`` if ``VIDSEG_CACHE`` is set, else
``<repository root or cwd>/.cache/vidseg/synthetic/<hash>``. A dataset is generated into a temporary
sibling folder and renamed into place when complete, so concurrent processes (DDP ranks, DataLoader
workers) never read a half-written dataset; the loser of a race discards its copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.generator import generate_dataset

CACHE_ENV = "VIDSEG_CACHE"


def default_cache_dir() -> Path:
    """``$VIDSEG_CACHE`` or ``<git root of cwd, else cwd>/.cache/vidseg``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder / ".cache" / "vidseg"
    return cwd / ".cache" / "vidseg"


def synthetic_root(cfg: SyntheticConfig, cache_dir: str | os.PathLike[str] | None = None, workers: int = 1) -> Path:
    """Root of the dataset for ``cfg``, generating it first if it is not cached yet.

    ``workers`` defaults to 1 (in-process): worker processes use the ``forkserver`` start method, which
    re-imports the caller's ``__main__`` and so needs an ``if __name__ == "__main__":`` guard there.
    ``vidseg synth`` uses 2.
    """
    base = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "synthetic"
    final = base / cfg.cache_key()
    if (final / "synthetic.json").is_file():
        return final
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{cfg.cache_key()}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    generate_dataset(tmp, cfg, workers=workers)
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished first
        if not (final / "synthetic.json").is_file():
            raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return final
