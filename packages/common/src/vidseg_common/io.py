"""Small file-system helpers shared by every writer: atomic writes and root-confined paths."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vidseg_common.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Readers never see a half-written file, and a crash leaves the previous version intact.
    The temporary file keeps ``path``'s suffix so that writers which infer the format from it
    (PIL, cv2) still work.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename)."""
    atomic_write_bytes(path, text.encode(encoding))


def resolve_inside(root: str | os.PathLike[str], relative: str | os.PathLike[str], what: str = "path") -> Path:
    """Join ``relative`` onto ``root`` and refuse results that escape ``root``.

    Dataset JSON files name frames with relative paths; a path such as ``../../etc/passwd`` or an
    absolute path must never be read. Symlinks inside the dataset are resolved before the check.

    Raises:
        DataError: if the joined path is absolute or lies outside ``root``.
    """
    root_path = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute():
        raise DataError(f"{what} {str(relative)!r} is absolute; dataset paths must be relative to {root_path}")
    candidate = (root_path / rel).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise DataError(f"{what} {str(relative)!r} escapes the dataset root {root_path}")
    return candidate
