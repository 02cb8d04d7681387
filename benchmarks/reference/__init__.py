"""Adapters to the papers' released code: build a released model from a checkout of its repository (CPU, the
pure-PyTorch paths), to generate key manifests and to compare outputs with ours (``reference_manifest.py``,
``reference_parity.py``). Nothing of the released code is copied here: it is imported from the checkout at run time.

An adapter module ``reference/<name>.py`` defines:

* ``RELEASES: dict[str, Release]``: the released checkpoints it covers;
* ``build_reference(root: Path, release: str) -> nn.Module``: the released model, built from the checkout at
  ``root`` (random initialisation; the caller seeds);
* ``compare(root: Path, release: str, ours: LightningModule, reference: nn.Module, seed: int) -> list[Row]``: runs
  both in eval mode on the same input and returns ``(output name, max |difference|, note)`` rows.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "weights"
ADAPTERS = tuple(sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem != "__init__"))
"""The adapter modules present (``stcn``, ``seqformer``, ``vistr``, …)."""
Row = tuple[str, float, str]


@dataclass(frozen=True)
class Release:
    """One released checkpoint layout and the model of ours it converts to.

    Attributes:
        paper: our paper package (``vidseg.models`` entry point).
        rules: the name of the rule table in that model's ``weight_rules``.
        configs: experiment YAMLs (relative to the repository) whose ``model:`` sections build our model.
        overrides: further ``model:`` options (e.g. ``{"gate": "none"}``).
        description: the release (repository, file).
    """

    paper: str
    rules: str
    configs: tuple[str, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def fixture_path(release: str) -> Path:
    """The committed key manifest of ``release`` (``tests/fixtures/weights/<release>.json``)."""
    return FIXTURES / f"{release}.json"


def adapter(name: str) -> Any:
    """The adapter module ``reference.<name>``."""
    return importlib.import_module(f"reference.{name}")


def releases() -> dict[str, tuple[Any, Release]]:
    """Every release of every adapter: ``{release name: (adapter module, Release)}``."""
    out = {}
    for name in ADAPTERS:
        module = adapter(name)
        for key, release in module.RELEASES.items():
            out[key] = (module, release)
    return out


def our_model(release: Release) -> Any:
    """Our model for ``release`` (built from its configs and overrides, BN policy applied), in eval mode."""
    import yaml

    from vidseg_common.tools.weights import model_classes

    cls = model_classes()[release.paper]
    options: dict[str, Any] = {}
    for config in release.configs:
        options.update((yaml.safe_load((REPO / config).read_text()) or {}).get("model") or {})
    options.update(release.overrides)
    options.pop("init_weights", None)
    options.update({key: False for key in ("pretrained",) if key in options})  # no download: all weights replaced
    module = cls(**options)
    module.configure_model()
    return module.eval()


def write_manifest(path: Path, state_dict: dict, source: str) -> None:
    """``{"source": ..., "keys": {name: shape}}`` as JSON (sorted keys; small enough to commit)."""
    keys = {name: list(tensor.shape) for name, tensor in sorted(state_dict.items())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"source": source, "keys": keys}, indent=0) + "\n")


def read_manifest(path: Path) -> dict[str, list[int]]:
    return json.loads(path.read_text())["keys"]


def stub(name: str, **attributes: Any) -> types.ModuleType:
    """An empty module for an import the released code makes but never uses here (a CUDA extension, a dataset)."""
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@contextlib.contextmanager
def cuda_is_cpu() -> Iterator[None]:
    """``Tensor.cuda()`` is a no-op during the block (released inference scripts call it unconditionally)."""
    import torch

    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = cuda  # type: ignore[method-assign]


@contextlib.contextmanager
def released_code(root: Path, top_level: Iterable[str], stubs: dict[str, types.ModuleType] | None = None
                  ) -> Iterator[None]:
    """Import from the checkout at ``root`` during the block.

    The released top-level names (``models``, ``util``, … — the same names in several releases) are taken out of
    ``sys.modules`` on entry and on exit (what was there is put back), the checkout is first on ``sys.path``, and
    ``stubs`` stand in for modules the released code imports but that cannot load here.
    """
    tops = tuple(top_level)

    def owned(name: str) -> bool:
        return any(name == top or name.startswith(top + ".") for top in tops)

    saved = {name: module for name, module in sys.modules.items() if owned(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        sys.modules.update(stubs or {})
        yield
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if owned(name) or name in (stubs or {})]:
            del sys.modules[name]
        sys.modules.update(saved)


def perturb_constants(model: Any, special: dict[str, Callable[[Any], Any]] | None = None) -> None:
    """Give every constant tensor of ``model`` (zero biases, unit norms, BatchNorm statistics of a fresh init) random
    values, so that a misplaced key shows in the outputs: BatchNorm variances uniform in [0.5, 1.5], others + 0.1·N(0, 1);
    ``special`` maps a key suffix to an in-place initialiser used instead (first match)."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point() or tensor.numel() < 2 or bool((tensor != tensor.flatten()[0]).any()):
                continue
            init = next((fn for suffix, fn in (special or {}).items() if name.endswith(suffix)), None)
            if init is not None:
                init(tensor)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.add_(0.1 * torch.randn_like(tensor))
