"""Base class for metrics whose state is a table of rows tagged with (video, object, frame) ids.

Every state is a flat 1-D float64 list state reduced with ``cat``, so a DDP sync is a concatenation
(docs/reference/ecosystem.md §2.4):

* Pitfall A (duplicates from a padded ``DistributedSampler``): rows are de-duplicated by their key
  columns in :meth:`TaggedRowsMetric.rows`; the first occurrence wins (duplicates are identical).
* Pitfall B (a rank that saw nothing): torchmetrics replaces an empty list by a placeholder of
  ``self.dtype`` (float32 by default), which would not match the float64 tensors of the other ranks;
  :meth:`_sync_dist` inserts float64 placeholders instead, so an empty rank still syncs.
* Pitfall D (order): rows are sorted by their key columns before anything is reduced, so the numbers
  do not depend on how videos were spread over ranks.

Video names are mapped to 48-bit integer keys (exact in float64) by a stable hash; the names are
gathered with ``all_gather_object`` when a per-object table is requested under DDP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric

from vidseg_common.errors import DataError


def video_key(name: str) -> int:
    """Stable 48-bit integer key of a video name (exactly representable in float64)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=6).digest(), "big")


class TaggedRowsMetric(Metric):
    """A metric storing tables of float64 columns.

    Subclasses set ``tables``: table name → (columns, key columns); each column is a list state named
    ``<table>_<column>``.
    """

    tables: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    full_state_update: ClassVar[bool] = False
    is_differentiable: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for table, (columns, _) in self.tables.items():
            for name in columns:
                self.add_state(f"{table}_{name}", default=[], dist_reduce_fx="cat")
        self._names: dict[int, str] = {}

    def _register_video(self, video: str | int) -> int:
        name = str(video)
        key = video_key(name)
        known = self._names.setdefault(key, name)
        if known != name:
            raise DataError(f"video ids {known!r} and {name!r} collide in the 48-bit key hash; rename one")
        return key

    def _append(self, table: str, **cols: Tensor | np.ndarray | float) -> None:
        lengths = set()
        tensors = {}
        for name in self.tables[table][0]:
            value = torch.as_tensor(np.asarray(cols[name]) if not isinstance(cols[name], Tensor) else cols[name])
            tensors[name] = value.to(device=self.device, dtype=torch.float64).reshape(-1)
            lengths.add(tensors[name].numel())
        if len(lengths) > 1:
            raise ValueError(f"{type(self).__name__}: {table} columns have different lengths {sorted(lengths)}")
        for name, value in tensors.items():
            getattr(self, f"{table}_{name}").append(value)
        self._computed = None

    def _count_update(self) -> None:
        """Record an update made outside ``update()`` (results computed in a worker process)."""
        self._update_count += 1
        self._computed = None

    def _sync_dist(self, dist_sync_fn: Callable | None = None, process_group: Any | None = None) -> None:
        for name in self._reductions:
            state = getattr(self, name)
            if isinstance(state, list) and len(state) == 0:
                state.append(torch.zeros(0, dtype=torch.float64, device=self.device))
        kwargs = {"process_group": process_group}
        if dist_sync_fn is not None:
            kwargs["dist_sync_fn"] = dist_sync_fn
        super()._sync_dist(**kwargs)

    def rows(self, table: str = "rows") -> dict[str, np.ndarray]:
        """All rows of ``table`` (synced inside ``compute``), de-duplicated by key and sorted by key."""
        columns, key_columns = self.tables[table]
        out = {}
        for name in columns:
            state = getattr(self, f"{table}_{name}")
            if isinstance(state, list):
                state = torch.cat(state) if state else torch.zeros(0, dtype=torch.float64)
            out[name] = state.detach().cpu().double().numpy().reshape(-1)
        if not key_columns or out[columns[0]].size == 0:
            return out
        keys = np.stack([out[k] for k in key_columns], axis=1)
        _, first = np.unique(keys, axis=0, return_index=True)  # unique rows come back sorted by key
        return {name: col[first] for name, col in out.items()}

    def video_names(self) -> dict[int, str]:
        """Key → name for every video seen on any rank (a collective under DDP: call it on all ranks)."""
        names = dict(self._names)
        if self.sync_on_compute and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[dict[int, str]] = [{} for _ in range(dist.get_world_size())]
            dist.all_gather_object(gathered, names, group=self.process_group)
            for part in gathered:
                names.update(part)
        return names
