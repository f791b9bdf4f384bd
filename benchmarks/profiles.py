"""The two profiles of the suite: ``quick`` (``make demo``) and ``full`` (``make bench``).

Training budgets are per dataset: ``max_iter`` for the MLP networks and for
the convolutional one, always with ``early_stopping=True`` (10% of the
training rows held out, best weights restored), so a budget is an upper bound.

quick
    Fashion-MNIST on a fixed 5,000/1,000 subset when ``$SKAE_DATA`` has it,
    plus the four small sets; n_components 2 and 8; one seed; short budgets.
    About 2-3 minutes on 2 cores.
full
    The official 60,000/10,000 Fashion-MNIST split and the four small sets,
    n_components 2, 4, 8, 16, 32, 64 (below the number of features), three
    seeds for the skae methods, UMAP and openTSNE when installed. Running
    every skae network over 3 seeds and 6 sizes on 60,000 images would take
    many hours on 2 cores (the convolutional decoder alone costs about 2 min
    an epoch there), so on Fashion-MNIST the skae methods run one seed, the
    convolutional autoencoder only at sizes 2, 8 and 32, and UMAP at size 2;
    ``python -m benchmarks estimate --profile full`` times one epoch of each
    network on this machine and prints the expected run time.
"""

from dataclasses import dataclass, field

from .data import DATASET_NAMES


@dataclass(frozen=True)
class Profile:
    """Settings of one run of the suite.

    ``max_iter`` maps a dataset name (or ``"*"`` for the rest) to
    ``{"mlp": epochs, "conv": epochs}``. ``seeds_by_dataset`` overrides
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
    max_iter: dict
    seeds_by_dataset: dict = field(default_factory=dict)
    restrict: dict = field(default_factory=dict)

    def epochs(self, dataset_name, conv):
        budget = self.max_iter.get(dataset_name, self.max_iter["*"])
        return budget["conv" if conv else "mlp"]

    def seeds_for(self, dataset_name):
        return self.seeds_by_dataset.get(dataset_name, self.seeds)

    def sizes_for(self, dataset_name, method_name, sizes):
        allowed = self.restrict.get(
            (dataset_name, method_name), self.restrict.get(("*", method_name))
        )
        return sizes if allowed is None else tuple(k for k in sizes if k in allowed)


CORE_METHODS = ("pca", "truncated_svd", "kernel_pca", "ae_mlp", "ae_conv", "dae", "vae")

PROFILES = {
    "quick": Profile(
        name="quick",
        datasets=DATASET_NAMES,
        methods=CORE_METHODS,
        n_components=(2, 8),
        seeds=(0,),
        fashion_rows=(5000, 1000),
        max_iter={
            "fashion_mnist": {"mlp": 10, "conv": 3},
            "digits": {"mlp": 60, "conv": 15},
            "*": {"mlp": 60, "conv": 15},
        },
    ),
    "full": Profile(
        name="full",
        datasets=DATASET_NAMES,
        methods=(*CORE_METHODS, "umap", "tsne"),
        n_components=(2, 4, 8, 16, 32, 64),
        seeds=(0, 1, 2),
        fashion_rows=(None, None),
        max_iter={
            "fashion_mnist": {"mlp": 12, "conv": 5},
            "*": {"mlp": 300, "conv": 60},
        },
        seeds_by_dataset={"fashion_mnist": (0,)},
        restrict={
            ("fashion_mnist", "ae_conv"): (2, 8, 32),
            ("fashion_mnist", "umap"): (2,),
        },
    ),
}


def get_profile(profile):
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown profile {profile!r}; choose from {', '.join(PROFILES)}."
        )
    return PROFILES[profile]
