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

# None expected: every check passes.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
