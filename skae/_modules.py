"""Pure torch building blocks: encoders, decoders and the autoencoder heads.

Nothing here knows about scikit-learn or skorch. Every autoencoder module
exposes ``encode(x)`` (the deterministic code used by ``transform``) and
``decode(z)`` (codes back to the input space, output activation applied), and
its ``forward`` returns a tuple that the matching skorch net unpacks in
``get_loss``.

:class:`ResidualEncoder` and :class:`ResidualDecoder` put a linear path beside
any encoder or decoder (the "branch"): the estimators set the linear path to
PCA's solution and zero the branch's output layer, so that training starts
from PCA's reconstruction and the branch learns what PCA misses.
"""

import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}



class Clip(nn.Module):
    """Clamp into ``[low, high]`` in eval mode; the identity while training.

    A reconstruction clamped into the range that holds every target can only
    come closer to each target, so clipping at inference never raises the
    error; while training the gradient of the unclamped output is kept.
    """

    def __init__(self, low=0.0, high=1.0):
        super().__init__()
        self.low = float(low)
        self.high = float(high)

    def forward(self, x):
        return x if self.training else x.clamp(self.low, self.high)

    def extra_repr(self):
        return f"low={self.low}, high={self.high}"


class SeededDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` that draws its masks from ``generator`` when one is set.

    torch's dropout draws from the process-wide generator, which threads
    share; skae's nets set a generator of the fit's own while training, so
    that fits with the same seed drop the same units in any thread. Without
    one (a module trained by hand) it is torch's dropout.
    """

    generator = None

    def forward(self, x):
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
        return x * mask.div_(keep)

    def __getstate__(self):
        # Generators belong to one fit, so they are neither copied nor pickled.
        state = dict(vars(self))
        state.pop("generator", None)
        return state


OUTPUT_ACTIVATIONS = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "clip": Clip}


def make_mlp(layer_sizes, activation, dropout=0.0, batch_norm=False):
    """Stack of ``Linear -> [BatchNorm] -> activation -> [Dropout]`` blocks.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from the input to the last hidden layer; one block is built
        for each consecutive pair, so a sequence of length 1 gives an empty
        (identity) stack.
    activation : str
        A key of ``ACTIVATIONS``.
    dropout : float, default=0.0
        Dropout probability after each activation; 0 adds no layer.
    batch_norm : bool, default=False
        Whether to normalise each block's pre-activations.

    Returns
    -------
    torch.nn.Sequential
    """
    layers = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        layers.append(nn.Linear(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(SeededDropout(dropout))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flatten, a hidden MLP stack, then a linear head of ``n_outputs``."""

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, activation,
                 dropout=0.0, batch_norm=False):
        super().__init__()
        sizes = (n_features, *hidden_layer_sizes)
        self.hidden = make_mlp(sizes, activation, dropout, batch_norm)
        self.head = nn.Linear(sizes[-1], n_outputs)

    @property
    def output_layer(self):
        return self.head

    def forward(self, x):
        return self.head(self.hidden(x.flatten(1)))


class MLPDecoder(nn.Module):
    """Mirror of :class:`MLPEncoder`: codes to ``n_features`` raw outputs."""

    def __init__(self, n_components, hidden_layer_sizes, n_features, activation,
                 dropout=0.0, batch_norm=False):
        super().__init__()
        sizes = (n_components, *reversed(tuple(hidden_layer_sizes)))
        self.hidden = make_mlp(sizes, activation, dropout, batch_norm)
        self.head = nn.Linear(sizes[-1], n_features)

    @property
    def output_layer(self):
        return self.head

    def forward(self, z):
        return self.head(self.hidden(z))


def conv_spatial_sizes(height, width, n_stages):
    """Spatial sizes after each stride-2, padding-1, kernel-3 convolution."""
    sizes = [(height, width)]
    for _ in range(n_stages):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class ConvEncoder(nn.Module):
    """Stride-2 ``Conv2d -> BatchNorm2d -> activation`` stages, then a linear head.

    Each stage halves the spatial size (rounding up), so any image size works.
    """

    def __init__(self, input_shape, channels, n_outputs, activation, batch_norm=True):
        super().__init__()
        n_channels, height, width = input_shape
        layers = []
        for c_in, c_out in zip((n_channels, *channels[:-1]), channels):
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(ACTIVATIONS[activation]())
        self.features = nn.Sequential(*layers)
        h, w = conv_spatial_sizes(height, width, len(channels))[-1]
        self.head = nn.Linear(channels[-1] * h * w, n_outputs)

    @property
    def output_layer(self):
        return self.head

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder` with ``ConvTranspose2d`` upsampling.

    Each transposed convolution's ``output_padding`` is chosen so that the
    stage restores the exact size the matching encoder stage received: the
    output has the input's height and width with no cropping.
    """

    def __init__(self, n_components, channels, output_shape, activation,
                 batch_norm=True):
        super().__init__()
        n_channels, height, width = output_shape
        sizes = conv_spatial_sizes(height, width, len(channels))
        self._bottleneck = (channels[-1], *sizes[-1])
        self.head = nn.Linear(n_components, math.prod(self._bottleneck))
        layers = []
        reversed_channels = tuple(reversed(channels))
        out_channels = (*reversed_channels[1:], reversed_channels[-1])
        for stage, (c_in, c_out) in enumerate(zip(reversed_channels, out_channels)):
            target_h, target_w = sizes[len(channels) - stage - 1]
            source_h, source_w = sizes[len(channels) - stage]
            output_padding = (target_h - 2 * source_h + 1, target_w - 2 * source_w + 1)
            layers.append(nn.ConvTranspose2d(
                c_in, c_out, kernel_size=3, stride=2, padding=1,
                output_padding=output_padding,
            ))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Conv2d(reversed_channels[-1], n_channels, kernel_size=3, padding=1))
        self.features = nn.Sequential(*layers)

    @property
    def output_layer(self):
        return self.features[-1]

    def forward(self, z):
        return self.features(self.head(z).view(-1, *self._bottleneck))


def zero_output_layer(block):
    """Zero the weights and bias of ``block.output_layer``: the block then outputs 0."""
    with torch.no_grad():
        block.output_layer.weight.zero_()
        block.output_layer.bias.zero_()
    return block


class ResidualEncoder(nn.Module):
    """``linear(x.flatten(1) - center) + branch(x)``: a linear path beside ``branch``.

    Parameters
    ----------
    branch : torch.nn.Module
        Any encoder emitting ``n_outputs`` values per sample.
    n_features : int
        Values in one flattened sample.
    n_outputs : int
        Width of the output.
    """

    def __init__(self, branch, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)
        self.register_buffer("center", torch.zeros(n_features))
        self.branch = branch

    def forward(self, x):
        return self.linear(x.flatten(1) - self.center) + self.branch(x)


class ResidualDecoder(nn.Module):
    """``linear(z) + branch(z / code_scale)``, the linear part in the branch's shape.

    ``code_scale`` (a buffer, one per code) brings codes of very different
    spreads, such as PCA's, to a common one before the branch's first layer;
    it changes what the branch sees, not the code.

    Parameters
    ----------
    branch : torch.nn.Module
        Any decoder from ``n_components`` codes.
    n_components : int
        Width of the code.
    n_features : int
        Values in one flattened output sample.
    """

    def __init__(self, branch, n_components, n_features):
        super().__init__()
        self.linear = nn.Linear(n_components, n_features)
        self.register_buffer("code_scale", torch.ones(n_components))
        self.branch = branch

    def forward(self, z):
        nonlinear = self.branch(z / self.code_scale)
        return self.linear(z).view_as(nonlinear) + nonlinear


def make_output_activation(name, bounds=None):
    """The output activation ``name``; ``bounds`` are the (low, high) of ``"clip"``."""
    if name == "clip":
        return Clip(*(bounds or (0.0, 1.0)))
    return OUTPUT_ACTIVATIONS[name]()


class Autoencoder(nn.Module):
    """Deterministic autoencoder; ``forward`` returns ``(x_hat, z)``.

    ``output_bounds`` are the (low, high) of the ``"clip"`` output activation.
    """

    def __init__(self, encoder, decoder, output_activation="identity", output_bounds=None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.output_activation = make_output_activation(output_activation, output_bounds)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x):
        z = self.encode(x)
        return self.decode(z), z


class VariationalAutoencoder(nn.Module):
    """Gaussian-posterior VAE; ``forward`` returns ``(decoder_output, mu, logvar)``.

    The encoder emits ``2 * n_components`` values split into the posterior
    mean and log-variance. ``decoder_output`` is the raw decoder output
    (logits for a Bernoulli likelihood, the mean for a Gaussian one) so the
    loss can use the numerically stable form; ``decode`` applies the output
    activation.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
    output_activation : {"identity", "sigmoid"}
    n_features : int
        Size of a flattened input row, for the Gaussian scale.
    learn_scale : bool
        Learn one log standard deviation per input feature (Gaussian
        likelihood); otherwise ``log_scale`` is a fixed buffer.
    init_log_scale : float or tensor of shape (n_features,)
        Initial (or fixed) log standard deviation.
    min_log_scale : float, default=-inf
        Floor of the learned log standard deviation: a feature that the
        decoder predicts exactly (a constant pixel) would otherwise drive its
        scale, and the likelihood, without bound.
    output_bounds : (float, float) or None, default=None
        Bounds of the ``"clip"`` output activation.
    n_components : int
        Width of the code, for ``reconstruction_scale``.

    Notes
    -----
    ``decode`` is the reconstruction from a code: the decoder's mean at
    ``z * reconstruction_scale`` (a buffer of ones until the estimator fits
    it), because a posterior mean is shrunk toward the prior's and, decoded
    as it is, reconstructs its row worse than it could. ``generate`` is the
    decoder's mean at ``z`` itself, for draws from the prior.
    """

    def __init__(self, encoder, decoder, output_activation, n_features,
                 learn_scale=False, init_log_scale=0.0, min_log_scale=-math.inf,
                 output_bounds=None, *, n_components):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.output_activation = make_output_activation(output_activation, output_bounds)
        log_scale = torch.zeros(n_features) + torch.as_tensor(init_log_scale,
                                                              dtype=torch.float32)
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        self.min_log_scale = float(min_log_scale)
        self.register_buffer("reconstruction_scale", torch.ones(n_components))

    def gaussian_log_scale(self):
        """Per-feature log standard deviation of the Gaussian likelihood, floored."""
        return self.log_scale.clamp(min=self.min_log_scale)

    def posterior(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return self.output_activation(self.decoder(z * self.reconstruction_scale))

    def generate(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x, generator=None):
        """Draw ``z`` by the reparameterisation trick when ``generator`` is given.

        Without a generator ``z`` is the posterior mean, which makes
        validation and scoring deterministic.
        """
        mu, logvar = self.posterior(x)
        z = mu
        if generator is not None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar
