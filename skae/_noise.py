"""Corruptions for the denoising autoencoder: pure torch, never in place."""

import torch

NOISE_KINDS = ("gaussian", "masking", "salt_and_pepper")


class Corruption:
    """Corrupt a batch with one of the built-in noise kinds or a user callable.

    Parameters
    ----------
    noise : {"gaussian", "masking", "salt_and_pepper"} or callable
        "gaussian" adds noise of standard deviation ``noise_level``;
        "masking" sets each value to zero with probability ``noise_level``;
        "salt_and_pepper" sets each value to ``low`` or ``high`` (half each)
        with probability ``noise_level``. A callable is called as
        ``noise(X_copy, generator)`` and must return a tensor of X's shape.
    noise_level : float
    low, high : float
        The data's minimum and maximum (salt and pepper values).
    clip : tuple of (float, float) or None
        Clamp corrupted values into these bounds.
    """

    def __init__(self, noise, noise_level, low=0.0, high=1.0, clip=None):
        self.noise = noise
        self.noise_level = noise_level
        self.low = low
        self.high = high
        self.clip = clip

    def __call__(self, X, generator):
        if callable(self.noise):
            corrupted = self._call_user_noise(X, generator)
        elif self.noise == "gaussian":
            corrupted = X + self.noise_level * torch.randn(
                X.shape, generator=generator, device=X.device, dtype=X.dtype)
        else:
            draws = torch.rand(X.shape, generator=generator, device=X.device, dtype=X.dtype)
            if self.noise == "masking":
                corrupted = X * (draws >= self.noise_level)
            else:
                half = self.noise_level / 2
                corrupted = torch.where(
                    draws < half, torch.full_like(X, self.low),
                    torch.where(draws < self.noise_level, torch.full_like(X, self.high), X))
        if self.clip is not None:
            corrupted = corrupted.clamp(*self.clip)
        return corrupted

    def _call_user_noise(self, X, generator):
        # The user's function gets a copy: the clean target must stay intact.
        corrupted = self.noise(X.clone(), generator)
        if not isinstance(corrupted, torch.Tensor) or corrupted.shape != X.shape:
            raise TypeError(
                f"noise={self.noise!r} must return a torch.Tensor of the batch's "
                f"shape {tuple(X.shape)}, got {type(corrupted).__name__}"
                f"{'' if not isinstance(corrupted, torch.Tensor) else ' of shape ' + str(tuple(corrupted.shape))}."
            )
        return corrupted.to(X.dtype)
