"""Key manifests (names + shapes) of released models, generated from their released code.

    python benchmarks/reference_manifest.py --release stcn --reference-root /path/to/STCN
    python benchmarks/reference_manifest.py --quick        # check the committed manifests convert (no checkout)

With a checkout, builds the released model (``reference/<adapter>.py``) and writes
``tests/fixtures/weights/<release>.json``. ``--quick`` converts every committed manifest onto our model with the
paper's rule table and prints the mapped / dropped / fresh counts (what ``tests/*/test_weights.py`` assert).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from reference import fixture_path, our_model, read_manifest, releases, write_manifest


def check(release_name: str) -> str:
    """Convert the committed manifest of ``release_name`` onto our model; the summary line."""
    from vidseg_common.weights import convert

    _, release = releases()[release_name]
    ours = our_model(release)
    source = {name: torch.empty(shape) for name, shape in read_manifest(fixture_path(release_name)).items()}
    _, conversion = convert(source, ours.state_dict(), type(ours).weight_rules[release.rules], fixture_path(release_name))
    return conversion.summary().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", action="append", help="release name (default: all of the adapter's)")
    parser.add_argument("--reference-root", type=Path, help="checkout of the released repository")
    parser.add_argument("--quick", action="store_true", help="only convert the committed manifests")
    args = parser.parse_args()
    known = releases()
    names = args.release or sorted(known)
    for name in names:
        module, release = known[name]
        if args.quick or args.reference_root is None:
            if fixture_path(name).is_file():
                print(f"{name:24s} {check(name)}")
            else:
                print(f"{name:24s} no committed manifest yet")
            continue
        torch.manual_seed(0)
        reference = module.build_reference(args.reference_root, name)
        write_manifest(fixture_path(name), reference.state_dict(), release.description)
        print(f"{name:24s} {len(reference.state_dict())} keys → {fixture_path(name)}")


if __name__ == "__main__":
    main()
