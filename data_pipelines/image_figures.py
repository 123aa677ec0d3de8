"""Figures of the image data: tokens available per source, and the quantisers' reconstruction error.

Reads every available image source once at ``--size`` px (tokens per image: ``(size/8)^2``
codes + ``<image>`` + ``</image>``), splits each source's images by a seeded hash
(:func:`mmlaws.corpora.build.is_validation`, ``--held_out_fraction``), fits both quantisers on up
to ``--fit_images`` training images taken in turn from each source (the builders' rule), and
measures MSE (pixels in [0, 1]) and PSNR on up to ``--held_out`` held-out images per source.
Writes a JSON file and prints Markdown tables (``data_pipelines/README_images.md``).

    python data_pipelines/image_figures.py --out image_figures.json [--size 32] [--layout SMALL]
"""

import argparse
import json
import time

import numpy as np

from mmlaws.corpora import build, images, sources
from mmlaws.corpora.sources import images as si
from mmlaws.corpora.tokenizers import vq, vqvae
from mmlaws.data import shards


def read_all(size: int, seed: int, fraction: float, log=print):
    """Per available source: (train images, held-out images, captions) — uint8 arrays."""
    out = {}
    for source in sources.available(si.image_sources(size, seed), log=log):
        start = time.perf_counter()
        train, held, captions = [], [], []
        for index, item in enumerate(source.read()):
            held_out = build.is_validation(source.name, index, seed=seed, fraction=fraction)
            (held if held_out else train).append(item.image)
            captions.append(item.caption)
        out[source.name] = (np.stack(train), np.stack(held), captions)
        log(f"{source.name}: {len(captions)} images in {time.perf_counter() - start:.1f} s")
    return out


def interleave(arrays: list[np.ndarray], count: int) -> np.ndarray:
    """Up to ``count`` rows taken in turn from each array (the builders' fit-set rule)."""
    rows, i = [], 0
    while len(rows) < count and any(i < len(a) for a in arrays):
        rows.extend(a[i] for a in arrays if i < len(a))
        i += 1
    return np.stack(rows[:count])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--layout", default="SMALL", choices=sorted(shards.PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held_out_fraction", type=float, default=0.1)
    parser.add_argument("--held_out", type=int, default=200, help="held-out images per source")
    parser.add_argument("--fit_images", type=int, default=4000)
    parser.add_argument("--vqvae_steps", type=int, default=1500)
    args = parser.parse_args()
    layout = shards.PRESETS[args.layout]
    per_image = images.tokens_per_image(args.size)
    data = read_all(args.size, args.seed, args.held_out_fraction)

    available = {}
    for name, (train, held, captions) in data.items():
        n = len(train) + len(held)
        available[name] = {"images": n, "tokens": n * per_image,
                           "captioned": sum(c is not None for c in captions)}  # fmt: skip
    fit = interleave([train for train, _, _ in data.values()], args.fit_images)
    held = {name: h[: args.held_out] for name, (_, h, _) in data.items()}
    trainers = {
        "kmeans": vq.KMeansTrainer(layout.image_codes, seed=args.seed),
        "vqvae": vqvae.VQVAETrainer(layout.image_codes, steps=args.vqvae_steps, seed=args.seed),
    }
    errors = {}
    for kind, trainer in trainers.items():
        start = time.perf_counter()
        tok = trainer.fit(fit)
        seconds = time.perf_counter() - start
        per_source = {n: vq.reconstruction_error(tok, h) for n, h in held.items()}
        overall = vq.reconstruction_error(tok, np.concatenate(list(held.values())))
        codes = tok.encode(fit)
        errors[kind] = {"fit_seconds": round(seconds, 1), "overall": overall,
                        "per_source": per_source, "trainer": dataclasses_dict(trainer),
                        "codes_used": int(len(np.unique(codes)))}  # fmt: skip
        print(f"{kind}: fitted in {seconds:.1f} s, held-out {overall}")
    result = {"size": args.size, "layout": args.layout, "tokens_per_image": per_image,
              "fit_images": len(fit), "available": available, "reconstruction": errors}  # fmt: skip
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(tables(result))


def dataclasses_dict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)


def tables(r: dict) -> str:
    """The two Markdown tables of the README."""
    lines = [f"| source | images | tokens ({r['tokens_per_image']} per image) | captioned |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for name, a in r["available"].items():
        lines.append(f"| {name} | {a['images']:,} | {a['tokens']:,} | {a['captioned']:,} |")
    total = sum(a["tokens"] for a in r["available"].values())
    images = sum(a["images"] for a in r["available"].values())
    lines += [f"| **all** | {images:,} | {total:,} | |", ""]
    names = list(r["available"])
    lines.append("| quantiser | fit (s) | codes used | held-out MSE | PSNR (dB) | "
                 + " | ".join(f"{n} PSNR" for n in names) + " |")  # fmt: skip
    lines.append("|---|---:|---:|---:|---:|" + "---:|" * len(names))
    for kind, e in r["reconstruction"].items():
        o = e["overall"]
        per_source = " | ".join(f"{e['per_source'][n]['psnr']:.2f}" for n in names)
        lines.append(
            f"| {kind} | {e['fit_seconds']} | {e['codes_used']} | {o['mse']:.5f} | "
            f"{o['psnr']:.2f} | {per_source} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
