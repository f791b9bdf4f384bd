"""scikit-learn's own estimator checks, for every skae estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

# Small networks and few epochs: the checks test the contract, not learning.
CHECK_PARAMS = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=16, random_state=0)

ESTIMATORS = [
    AutoencoderTransformer(**CHECK_PARAMS),
    DenoisingAutoencoder(**CHECK_PARAMS),
    VAETransformer(**CHECK_PARAMS),
]

# architecture="conv" is not in this list: the checks feed tables of many
# widths (1, 2, 3, 5, 10, ... features) that carry no image shape, and a
# convolutional network needs one fixed (C, H, W), so no conv configuration
# can take their data. The conv path shares the base class these checks cover
# and has its own contract tests (fit/transform/inverse_transform,
# shapes, dtypes, uint8) in tests/test_images.py, its save/load and pickle
# round trips in tests/test_persistence.py, its determinism in
# tests/test_reliability.py.

# Minibatch training on shuffled rows: repeating a row k times gives other
# batches (and another number of steps) than weighting it by k, so the codes
# agree only statistically; tests/test_sample_weight.py tests that, with a
# tolerance. Every other check passes.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "weights equal repeated rows only statistically under minibatch training",
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
