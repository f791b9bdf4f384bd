"""The methods the suite compares, each built as the last step of a Pipeline.

A :class:`Method` knows how to build its estimator for one dataset, size and
seed (:class:`Context`), and the few facts the harness needs: whether it
wants images, whether it trains on a subsample, whether its training codes
come from ``fit_transform`` (UMAP, t-SNE), and whether it is repeated over
seeds.

skae's estimators are built exactly as a user would write them: the
documented defaults, the same on every dataset, plus the training
:class:`Budget` of the profile (``max_iter``, ``early_stopping``).
"""

import importlib
from dataclasses import dataclass

from sklearn.decomposition import PCA, KernelPCA, TruncatedSVD

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

BASELINE, SKAE, EXTRA = "baseline", "skae", "extra"


@dataclass(frozen=True)
class Budget:
    """Training budget of a skae network: ``max_iter`` and ``early_stopping``."""

    max_iter: int = 200
    early_stopping: object = "auto"

    def describe(self):
        if self.early_stopping == "auto":
            return f"max_iter={self.max_iter}"
        return f"max_iter={self.max_iter}, early_stopping={self.early_stopping}"


# skae's own defaults: what "default settings" means in the goals.
DEFAULT_BUDGET = Budget()


@dataclass(frozen=True)
class Context:
    """What a builder needs: the dataset, the size, the seed, the budget."""

    dataset: object
    n_components: int
    seed: int
    budget: Budget
    n_threads: int


def _always(dataset, n_components):
    return True


@dataclass(frozen=True)
class Method:
    """A method of the suite.

    Parameters
    ----------
    name : str
        Key used on the command line and in the results.
    build : callable
        ``build(context) -> estimator``, the Pipeline's last step.
    family : {"baseline", "skae", "extra"}
        skae methods are repeated over every seed; the others run once.
    description : str
        One line for the report.
    applies : callable, default=always
        ``applies(dataset, n_components) -> bool``; False skips the cell.
    images : bool, default=False
        Feed (n, H, W) image arrays instead of flat rows.
    max_train_rows : int or None, default=None
        Fit on a seeded random subsample of at most this many rows.
    codes_from_fit : bool, default=False
        Training codes are ``fit_transform``'s output (methods whose
        ``transform`` re-embeds new points, such as UMAP and t-SNE).
    requires : str or None, default=None
        Module the method imports; its absence is reported in the row.
    conv : bool, default=False
        A convolutional network, whose epochs the profile budgets apart.
    """

    name: str
    build: object
    family: str
    description: str
    applies: object = _always
    images: bool = False
    max_train_rows: int = None
    codes_from_fit: bool = False
    requires: str = None
    conv: bool = False

    def check_requirements(self):
        """Raise ImportError naming the extra to install when a module is missing."""
        if self.requires is None:
            return
        try:
            importlib.import_module(self.requires)
        except ImportError as exc:
            raise ImportError(
                f"{self.name} needs the {self.requires!r} module; install it with "
                "pip install 'skae[full-benchmarks]'."
            ) from exc


def _skae_common(context):
    return dict(
        max_iter=context.budget.max_iter, early_stopping=context.budget.early_stopping,
        n_threads=context.n_threads, random_state=context.seed,
    )


_mlp_params = _skae_common


def _build_umap(context):
    import umap

    return umap.UMAP(n_components=context.n_components, random_state=context.seed,
                     n_jobs=context.n_threads)


def _build_tsne(context):
    from openTSNE.sklearn import TSNE

    return TSNE(n_components=context.n_components, random_state=context.seed,
                n_jobs=context.n_threads)


KERNEL_PCA_ROWS = 2000

METHODS = {m.name: m for m in [
    Method("pca", lambda c: PCA(c.n_components, random_state=c.seed), BASELINE,
           "sklearn PCA (the baseline)"),
    Method("truncated_svd", lambda c: TruncatedSVD(c.n_components, random_state=c.seed),
           BASELINE, "sklearn TruncatedSVD (no centering)"),
    Method("kernel_pca",
           lambda c: KernelPCA(c.n_components, kernel="rbf", fit_inverse_transform=True,
                               random_state=c.seed),
           BASELINE,
           f"sklearn KernelPCA(kernel='rbf', fit_inverse_transform=True) fitted on "
           f"{KERNEL_PCA_ROWS} random training rows",
           max_train_rows=KERNEL_PCA_ROWS),
    Method("ae_mlp", lambda c: AutoencoderTransformer(c.n_components, **_mlp_params(c)),
           SKAE, "skae AutoencoderTransformer, MLP"),
    Method("ae_conv",
           lambda c: AutoencoderTransformer(c.n_components, architecture="conv",
                                            **_skae_common(c)),
           SKAE, "skae AutoencoderTransformer(architecture='conv') on images",
           applies=lambda dataset, k: dataset.is_image, images=True, conv=True),
    Method("dae", lambda c: DenoisingAutoencoder(c.n_components, **_mlp_params(c)),
           SKAE, "skae DenoisingAutoencoder (gaussian noise 0.2), MLP"),
    Method("vae", lambda c: VAETransformer(c.n_components, **_mlp_params(c)),
           SKAE, "skae VAETransformer (posterior mean codes), MLP"),
    Method("umap", _build_umap, EXTRA, "umap-learn UMAP (no inverse)",
           codes_from_fit=True, requires="umap"),
    Method("tsne", _build_tsne, EXTRA, "openTSNE TSNE, 2-D only (no inverse)",
           applies=lambda dataset, k: k == 2, codes_from_fit=True, requires="openTSNE"),
]}
METHOD_NAMES = tuple(METHODS)


def get_method(method):
    """A :class:`Method` from its name (or the Method itself)."""
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise ValueError(
            f"Unknown method {method!r}; choose from {', '.join(METHOD_NAMES)}."
        )
    return METHODS[method]
