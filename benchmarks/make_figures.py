"""The README's pictures, made from real Fashion-MNIST runs.

Question: what do skae's 2-D codes, decoded latent grids, reconstructions,
interpolations and loss curves look like on real images?

Data: Fashion-MNIST from ``$SKAE_DATA/fashion_mnist.npz`` (the first
``--n-train`` training images; the first 2,000 test images for the maps).

Usage::

    python benchmarks/make_figures.py [--n-train 20000] [--max-iter 10] [--out docs/images]

Writes ``conv_ae_latent_space.png``, ``conv_ae_latent_grid.png``,
``conv_ae_reconstructions.png``, ``conv_ae_loss_curve.png``,
``vae_latent_grid.png``, ``vae_interpolation.png`` and ``figures.md`` (the
command, versions and test MSEs) to ``--out``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from skae import AutoencoderTransformer, VAETransformer, __version__
from skae.datasets import load_fashion_mnist
from skae.plotting import (
    plot_interpolation,
    plot_latent_grid,
    plot_latent_space,
    plot_loss_curve,
    plot_reconstructions,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    bunch = load_fashion_mnist()
    X_train, X_test = bunch.images[: args.n_train], bunch.images_test[:2000]
    y_test, names = bunch.target_test[:2000], list(bunch.target_names)

    lines = [f"# Figures\n\nCommand: `{' '.join(['python', *sys.argv])}`  ",
             f"skae {__version__}; {args.n_train} training images; max_iter={args.max_iter}.\n"]
    models = {
        "conv_ae": AutoencoderTransformer(n_components=2, architecture="conv", batch_size=128,
                                          max_iter=args.max_iter, random_state=0),
        "vae": VAETransformer(n_components=2, architecture="conv", batch_size=128,
                              max_iter=args.max_iter, random_state=0),
    }
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - start
        # score is the negative reconstruction MSE for an AE, the ELBO for a VAE.
        quality = (f"negative ELBO per test image {-model.score(X_test):.1f} nats"
                   if isinstance(model, VAETransformer)
                   else f"test reconstruction MSE {-model.score(X_test):.4f}")
        lines.append(f"- {name}: fit {seconds:.0f} s, {model.n_iter_} epochs, {quality}")

    ae, vae = models["conv_ae"], models["vae"]
    figures = {
        "conv_ae_latent_space": plot_latent_space(ae, X_test, y_test, target_names=names),
        "conv_ae_latent_grid": plot_latent_grid(ae, n=15, X=X_test),
        "conv_ae_reconstructions": plot_reconstructions(ae, X_test[:10]),
        "conv_ae_loss_curve": plot_loss_curve(ae),
        "vae_latent_grid": plot_latent_grid(vae, n=15),
        "vae_interpolation": plot_interpolation(vae, X_test[0], X_test[1], n_steps=10),
    }
    for name, figure in figures.items():
        figure.savefig(out / f"{name}.png", dpi=90, bbox_inches="tight")
        lines.append(f"\n![{name}]({name}.png)")
    (out / "figures.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
