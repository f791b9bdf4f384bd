"""The two profiles of the suite: ``quick`` (``make demo``) and ``full`` (``make bench``).

quick: a fixed 5,000/1,000 Fashion-MNIST subset, digits and the three tables;
n_components 2 and 8; one seed. full: the official Fashion-MNIST split and the
four small sets at n_components 2 to 64, UMAP and openTSNE when installed;
three seeds on the small sets, one on Fashion-MNIST. Every skae network of
the full profile trains with skae's defaults (``max_iter=200``,
``early_stopping="auto"``) except the convolutional ones, whose epochs are
budgeted; the quick profile budgets Fashion-MNIST's epochs too.
``python -m benchmarks estimate --profile full`` predicts the run time.
"""

from dataclasses import dataclass, field

from .data import DATASET_NAMES
from .methods import DEFAULT_BUDGET, Budget


@dataclass(frozen=True)
class Profile:
    """Settings of one run of the suite.

    ``budgets`` maps a dataset name (or ``"*"`` for the rest) to
    ``{"mlp": Budget, "conv": Budget}``. ``seeds_by_dataset`` overrides
    ``seeds`` per dataset. ``restrict`` maps ``(dataset or "*", method)`` to
    the only sizes that method runs at on that dataset; it applies only when
    the sizes come from the profile (not from an explicit ``n_components``).
    """

    name: str
    datasets: tuple
    methods: tuple
    n_components: tuple
    seeds: tuple
    fashion_rows: tuple
    budgets: dict
    seeds_by_dataset: dict = field(default_factory=dict)
    restrict: dict = field(default_factory=dict)

    def budget(self, dataset_name, conv):
        budgets = self.budgets.get(dataset_name, self.budgets["*"])
        return budgets["conv" if conv else "mlp"]

    def seeds_for(self, dataset_name):
        return self.seeds_by_dataset.get(dataset_name, self.seeds)

    def sizes_for(self, dataset_name, method_name, sizes):
        allowed = self.restrict.get(
            (dataset_name, method_name), self.restrict.get(("*", method_name))
        )
        return sizes if allowed is None else tuple(k for k in sizes if k in allowed)


CORE_METHODS = ("pca", "truncated_svd", "kernel_pca", "ae_mlp", "ae_conv", "dae", "vae")
SMALL_DEFAULTS = {"mlp": DEFAULT_BUDGET, "conv": DEFAULT_BUDGET}

PROFILES = {
    "quick": Profile(
        name="quick",
        datasets=DATASET_NAMES,
        methods=CORE_METHODS,
        n_components=(2, 8),
        seeds=(0,),
        fashion_rows=(5000, 1000),
        budgets={
            "fashion_mnist": {"mlp": Budget(15), "conv": Budget(4)},
            "digits": {"mlp": DEFAULT_BUDGET, "conv": Budget(30)},
            "*": SMALL_DEFAULTS,
        },
    ),
    "full": Profile(
        name="full",
        datasets=DATASET_NAMES,
        methods=(*CORE_METHODS, "umap", "tsne"),
        n_components=(2, 4, 8, 16, 32, 64),
        seeds=(0, 1, 2),
        fashion_rows=(None, None),
        budgets={
            # The 50 epochs of the Parametric UMAP paper's autoencoder (its 64-D mark).
            "fashion_mnist": {"mlp": DEFAULT_BUDGET, "conv": Budget(50)},
            "digits": {"mlp": DEFAULT_BUDGET, "conv": Budget(100)},
            "*": SMALL_DEFAULTS,
        },
        seeds_by_dataset={"fashion_mnist": (0,)},
        restrict={("fashion_mnist", "umap"): (2,)},
    ),
}


def get_profile(profile):
    """A :class:`Profile` from its name (or the Profile itself)."""
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown profile {profile!r}; choose from {', '.join(PROFILES)}."
        )
    return PROFILES[profile]
