"""skae.plotting: every figure renders headless to a real PNG, and the promised errors."""

import pickle
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

pytest.importorskip("matplotlib")

import matplotlib.image  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402
from skae.plotting import (  # noqa: E402
    ReconstructionSnapshots,
    plot_interpolation,
    plot_latent_grid,
    plot_latent_space,
    plot_loss_curve,
    plot_reconstructions,
)

# One torch thread: on a shared, busy machine more threads only spin and wait.
SMALL = dict(hidden_layer_sizes=(32,), max_iter=4, batch_size=64, n_threads=1,
             random_state=0)


@pytest.fixture(scope="module")
def digits():
    """400 digits as 8x8 float images in [0, 1], flat rows and labels."""
    data = load_digits()
    images = (data.images[:400] / 16.0).astype(np.float32)
    return images, images.reshape(400, 64), data.target[:400]


@pytest.fixture(scope="module")
def ae_images(digits):
    return AutoencoderTransformer(n_components=2, **SMALL).fit(digits[0])


@pytest.fixture(scope="module")
def vae_images(digits):
    return VAETransformer(n_components=2, early_stopping=True, **SMALL).fit(digits[0])


@pytest.fixture(scope="module")
def ae_rows(digits):
    return AutoencoderTransformer(n_components=3, **SMALL).fit(digits[1])


def assert_png(figure, path):
    """Save ``figure`` and check that the PNG holds a real, non-blank picture."""
    assert isinstance(figure, Figure)
    figure.savefig(path, dpi=60)
    assert path.stat().st_size > 3000
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert pixels[..., :3].std() > 0.05


def image_array(figure):
    """The data of the single image drawn on the figure's first axes."""
    (image,) = figure.axes[0].get_images()
    return np.ma.filled(image.get_array(), np.nan)


# ----------------------------------------------------------------------
# plot_reconstructions
# ----------------------------------------------------------------------
def test_reconstructions_of_images(ae_images, digits, tmp_path):
    images = digits[0]
    figure = plot_reconstructions(ae_images, images, n=6)
    assert_png(figure, tmp_path / "reconstructions.png")
    mosaic = image_array(figure)
    assert mosaic.shape == (8 + 1 + 8, 6 * 8 + 5)  # 2 rows of 6 tiles, 1-pixel gaps
    np.testing.assert_allclose(mosaic[:8, :8], images[0], atol=1e-6)
    np.testing.assert_allclose(mosaic[9:, 9:17],
                               np.clip(ae_images.reconstruct(images[1:2])[0], 0, 1), atol=1e-6)
    assert np.isnan(mosaic[8]).all()  # the gap between the rows
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels == ["original", "reconstruction"]


def test_reconstructions_of_uint8_images(digits, tmp_path):
    images = (digits[0][:200] * 255).astype(np.uint8)
    model = AutoencoderTransformer(n_components=2, **SMALL).fit(images)
    figure = plot_reconstructions(model, images, n=4)
    assert_png(figure, tmp_path / "uint8.png")
    np.testing.assert_allclose(image_array(figure)[:8, :8], images[0] / 255.0, atol=1e-6)


def test_reconstructions_of_table_rows(ae_rows, digits, tmp_path):
    rows = digits[1]
    figure = plot_reconstructions(ae_rows, rows, n=5)
    assert_png(figure, tmp_path / "rows.png")
    heatmap = image_array(figure)
    assert heatmap.shape == (5 + 1 + 5, 64)
    assert len(figure.axes) == 2  # the heatmap and its colorbar


def test_reconstructions_into_given_axes(ae_images, digits):
    figure = Figure()
    ax = figure.add_subplot(1, 2, 2)
    assert plot_reconstructions(ae_images, digits[0], n=3, ax=ax) is figure
    assert len(ax.get_images()) == 1


# ----------------------------------------------------------------------
# plot_latent_space
# ----------------------------------------------------------------------
def test_latent_space_2d_with_names(vae_images, digits, tmp_path):
    images, _, y = digits
    names = [f"digit {i}" for i in range(10)]
    figure = plot_latent_space(vae_images, images, y, target_names=names)
    assert_png(figure, tmp_path / "latent.png")
    ax = figure.axes[0]
    offsets = ax.collections[0].get_offsets()
    codes = vae_images.transform(images)
    # The points are the codes themselves (shuffled so no class hides another).
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(codes[:, 0]), rtol=1e-5)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == names
    assert ax.get_xlabel() == "code 1"


def test_latent_space_projects_wide_codes(ae_rows, digits, tmp_path):
    _, rows, y = digits
    figure = plot_latent_space(ae_rows, rows, y)
    assert_png(figure, tmp_path / "pca.png")
    assert figure.axes[0].get_xlabel().startswith("PC 1")
    # t-SNE's OpenMP threads crawl on an oversubscribed machine; one is plenty here.
    with threadpool_limits(limits=1, user_api="openmp"):
        figure = plot_latent_space(ae_rows, rows[:60], y[:60], method="tsne")
    assert_png(figure, tmp_path / "tsne.png")
    assert figure.axes[0].get_xlabel() == "t-SNE 1"
    assert figure.axes[0].collections[0].get_offsets().shape == (60, 2)


def test_latent_space_continuous_target_gets_colorbar(ae_images, digits, tmp_path):
    images, rows, _ = digits
    figure = plot_latent_space(ae_images, images, rows[:, 20] + 0.5)
    assert_png(figure, tmp_path / "continuous.png")
    assert len(figure.axes) == 2 and figure.axes[0].get_legend() is None


def test_latent_space_errors(ae_images, digits):
    images, _, y = digits
    with pytest.raises(ValueError, match="method='umap' must be"):
        plot_latent_space(ae_images, images, method="umap")
    with pytest.raises(ValueError, match="y has shape"):
        plot_latent_space(ae_images, images, y[:10])
    with pytest.raises(ValueError, match="target_names has 3 names but y holds the label 3"):
        plot_latent_space(ae_images, images, y, target_names=["a", "b", "c"])


# ----------------------------------------------------------------------
# plot_latent_grid
# ----------------------------------------------------------------------
def test_latent_grid_of_vae_spans_the_prior(vae_images, tmp_path):
    figure = plot_latent_grid(vae_images, n=7)
    assert_png(figure, tmp_path / "grid.png")
    mosaic = image_array(figure)
    assert mosaic.shape == (7 * 8, 7 * 8)
    # The top-left tile is the decoding of the code (-3, 3).
    expected = vae_images.inverse_transform(np.array([[-3.0, 3.0]], dtype=np.float32))[0]
    np.testing.assert_allclose(mosaic[:8, :8], expected, atol=1e-5)
    (image,) = figure.axes[0].get_images()
    np.testing.assert_allclose(image.get_extent(), [-3.5, 3.5, -3.5, 3.5])


def test_latent_grid_extent_from_codes_or_given(ae_images, digits):
    images = digits[0]
    codes = ae_images.transform(images)
    figure = plot_latent_grid(ae_images, n=5, X=images)
    (image,) = figure.axes[0].get_images()
    left, right, bottom, top = image.get_extent()
    step = (codes[:, 0].max() - codes[:, 0].min()) / 4
    np.testing.assert_allclose([left + step / 2, right - step / 2],
                               [codes[:, 0].min(), codes[:, 0].max()], rtol=1e-5)
    figure = plot_latent_grid(ae_images, n=3, extent=(0, 1, -2, 2))
    np.testing.assert_allclose(figure.axes[0].get_images()[0].get_extent(),
                               [-0.25, 1.25, -3, 3])


def test_latent_grid_defaults_to_the_training_codes(ae_images, digits, tmp_path):
    """Without X or extent, the grid spans the 1st-99th percentiles of the training codes."""
    codes = ae_images.transform(digits[0])
    figure = plot_latent_grid(ae_images, n=5)
    assert_png(figure, tmp_path / "grid.png")
    left, right, bottom, top = figure.axes[0].get_images()[0].get_extent()
    (x_low, y_low), (x_high, y_high) = np.percentile(codes, [1, 99], axis=0)
    step_x, step_y = (x_high - x_low) / 4, (y_high - y_low) / 4
    np.testing.assert_allclose([left + step_x / 2, right - step_x / 2, bottom + step_y / 2,
                                top - step_y / 2], [x_low, x_high, y_low, y_high], rtol=1e-4)
    # Inside the range of the codes, not the extremes.
    assert codes[:, 0].min() <= x_low < x_high <= codes[:, 0].max()


def test_latent_grid_needs_an_extent_when_none_was_recorded(ae_images):
    """Models saved before the training range was recorded ask for extent or X."""
    model = pickle.loads(pickle.dumps(ae_images))
    del model._code_range
    with pytest.raises(ValueError, match="codes have no fixed scale: pass extent"):
        plot_latent_grid(model)


def test_latent_grid_errors(ae_images, ae_rows, digits):
    with pytest.raises(ValueError, match="n_components=3; fit it with n_components=2"):
        plot_latent_grid(ae_rows, extent=(-1, 1))
    with pytest.raises(ValueError, match=r"extent=\(1, 0\) must be"):
        plot_latent_grid(ae_images, extent=(1, 0))
    with pytest.raises(ValueError, match="n=1 must be an int of at least 2"):
        plot_latent_grid(ae_images, n=1, extent=(0, 1))
    flat = AutoencoderTransformer(n_components=2, **SMALL).fit(digits[1][:100])
    with pytest.raises(ValueError, match="fitted on rows of 64 features"):
        plot_latent_grid(flat, extent=(0, 1))


# ----------------------------------------------------------------------
# plot_interpolation
# ----------------------------------------------------------------------
def test_interpolation_of_vae_uses_interpolate(vae_images, digits, tmp_path):
    images = digits[0]
    figure = plot_interpolation(vae_images, images[0], images[1], n_steps=5)
    assert_png(figure, tmp_path / "interpolation.png")
    mosaic = image_array(figure)
    assert mosaic.shape == (8, 7 * 8 + 6)  # x_a, 5 steps, x_b
    path = vae_images.interpolate(images[0], images[1], n_steps=5)
    np.testing.assert_allclose(mosaic[:, 9:17], path[0], atol=1e-5)
    np.testing.assert_allclose(mosaic[:, :8], images[0], atol=1e-6)
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert labels[0] == "x_a" and labels[-1] == "x_b"


def test_interpolation_of_autoencoder_decodes_the_code_line(ae_images, digits):
    images = digits[0]
    figure = plot_interpolation(ae_images, images[2], images[3], n_steps=3)
    codes = ae_images.transform(images[2:4])
    middle = ae_images.inverse_transform(codes.mean(axis=0, keepdims=True))[0]
    np.testing.assert_allclose(image_array(figure)[:, 18:26], np.clip(middle, 0, 1), atol=1e-5)


def test_interpolation_of_table_rows(ae_rows, digits, tmp_path):
    rows = digits[1]
    figure = plot_interpolation(ae_rows, rows[0], rows[1], n_steps=4)
    assert_png(figure, tmp_path / "rows.png")
    assert len(figure.axes[0].get_lines()) == 4 + 2


def test_interpolation_rejects_wrong_sample(ae_images, digits):
    with pytest.raises(ValueError, match="x_b has 10 values"):
        plot_interpolation(ae_images, digits[0][0], np.zeros(10))
    with pytest.raises(ValueError, match="n_steps=1 must be"):
        plot_interpolation(ae_images, digits[0][0], digits[0][1], n_steps=1)


# ----------------------------------------------------------------------
# plot_loss_curve
# ----------------------------------------------------------------------
def test_loss_curve_of_vae_shows_its_terms(vae_images, tmp_path):
    figure = plot_loss_curve(vae_images)
    assert_png(figure, tmp_path / "loss.png")
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert set(lines) == {"training loss", "validation loss", "training reconstruction",
                          "training KL", "validation reconstruction", "validation KL"}
    np.testing.assert_allclose(lines["training loss"].get_ydata(), vae_images.loss_curve_)
    np.testing.assert_allclose(lines["training KL"].get_ydata(),
                               vae_images.net_.history[:, "train_kl"])
    np.testing.assert_allclose(lines["validation loss"].get_ydata(),
                               -np.asarray(vae_images.validation_scores_))


def test_loss_curve_of_autoencoder(ae_images, tmp_path):
    figure = plot_loss_curve(ae_images)
    assert_png(figure, tmp_path / "loss.png")
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["training loss"] + ["validation loss"] * ae_images.early_stopping_


# ----------------------------------------------------------------------
# Errors common to all functions
# ----------------------------------------------------------------------
CALLS = {
    "plot_reconstructions": lambda est, X: plot_reconstructions(est, X),
    "plot_latent_space": lambda est, X: plot_latent_space(est, X),
    "plot_latent_grid": lambda est, X: plot_latent_grid(est, extent=(-1, 1)),
    "plot_interpolation": lambda est, X: plot_interpolation(est, X[0], X[1]),
    "plot_loss_curve": lambda est, X: plot_loss_curve(est),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_missing_matplotlib_says_how_to_install(name, ae_images, digits, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install skae\[plotting\]"):
        CALLS[name](ae_images, digits[0])


@pytest.mark.parametrize("name", list(CALLS))
def test_unfitted_estimator(name, digits):
    with pytest.raises(NotFittedError):
        CALLS[name](AutoencoderTransformer(), digits[0])


# ----------------------------------------------------------------------
# ReconstructionSnapshots: grids saved while training
# ----------------------------------------------------------------------
@pytest.mark.parametrize("cls, architecture", [(AutoencoderTransformer, "conv"),
                                               (VAETransformer, "mlp")])
def test_snapshots_are_written_every_few_epochs_and_at_the_end(cls, architecture, digits,
                                                                tmp_path):
    images = digits[0]
    snapshots = ReconstructionSnapshots(tmp_path / "snaps", X=images[:6], every=2)
    est = cls(n_components=2, architecture=architecture, callbacks=[snapshots],
              **{**SMALL, "max_iter": 3, "tol": 0.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(images)
    files = sorted(path.name for path in (tmp_path / "snaps").iterdir())
    assert files == ["reconstructions_epoch002.png", "reconstructions_epoch003.png"]
    picture = matplotlib.image.imread(tmp_path / "snaps" / files[-1])
    assert picture.ndim == 3 and picture.shape[0] > 50
    # Snapshots leave training alone: the same fit without them gives the same codes.
    plain = cls(n_components=2, architecture=architecture, **{**SMALL, "max_iter": 3, "tol": 0.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(images)
    np.testing.assert_array_equal(est.transform(images), plain.transform(images))


def test_snapshots_of_flat_rows_use_image_shape_and_uint8_training_rows(tmp_path):
    X = (load_digits().data[:300] * 16).astype(np.uint8)      # flat uint8 rows
    snapshots = ReconstructionSnapshots(tmp_path, n=4, image_shape=(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AutoencoderTransformer(callbacks=[snapshots], **{**SMALL, "max_iter": 1}).fit(X)
    assert [path.name for path in tmp_path.iterdir()] == ["reconstructions_epoch001.png"]


def test_snapshots_errors_say_what_to_pass(digits, tmp_path):
    flat = digits[1]
    with pytest.raises(ValueError, match="pass image_shape"):
        AutoencoderTransformer(callbacks=[ReconstructionSnapshots(tmp_path)],
                               **SMALL).fit(flat)
    with pytest.raises(ValueError, match="X has 10 values per sample but the model takes 64"):
        AutoencoderTransformer(callbacks=[ReconstructionSnapshots(tmp_path, X=np.ones((2, 10)))],
                               **SMALL).fit(digits[0])
    with pytest.raises(ValueError, match="every=0 must be an int of at least 1"):
        AutoencoderTransformer(callbacks=[ReconstructionSnapshots(tmp_path, every=0)],
                               **SMALL).fit(digits[0])
