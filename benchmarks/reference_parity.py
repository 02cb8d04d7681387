"""Released-code parity: the released model and ours, same weights, same input, every output compared.

    python benchmarks/reference_parity.py --release stcn --reference-root /path/to/STCN
    python benchmarks/reference_parity.py --quick       # no checkout: the committed manifests convert (plumbing)

Builds the released model from a checkout (``reference/<adapter>.py``; CPU, float32), random-initialises it with
``--seed``, converts its state_dict with our rule table (:mod:`vidseg_common.weights`), loads it into our model,
runs both in eval mode on the same input and prints the largest absolute difference of every raw output and of
the post-processed results. Differences the papers' text makes us keep are named in the adapter's notes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from reference import fixture_path, our_model, releases
from reference_manifest import check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", action="append", help="release name (default: all)")
    parser.add_argument("--reference-root", type=Path, help="checkout of the released repository")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="no checkout: convert the committed manifests only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    known = releases()
    for name in args.release or sorted(known):
        module, release = known[name]
        if args.quick or args.reference_root is None:
            summary = check(name) if fixture_path(name).is_file() else "no committed manifest yet"
            print(f"{name:24s} (no --reference-root) {summary}")
            continue
        from vidseg_common.weights import convert

        torch.manual_seed(args.seed)
        reference = module.build_reference(args.reference_root, name).eval()
        ours = our_model(release)
        state, conversion = convert(reference.state_dict(), ours.state_dict(), type(ours).weight_rules[release.rules],
                                    f"{name} (random init, seed {args.seed})")
        ours.load_state_dict(state, strict=True)
        print(f"== {name}: {release.description}\n{conversion.summary()}")
        with torch.no_grad():
            rows = module.compare(args.reference_root, name, ours, reference, args.seed)
        width = max(len(row[0]) for row in rows)
        for output, diff, note in rows:
            print(f"  {output:{width}s}  max |Δ| {diff:.3g}  {note}")


if __name__ == "__main__":
    main()
