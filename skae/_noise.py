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
    cells : dict or None
        For encoded rows of a mixed table (values, then the observed mask):
        ``n_slots``, ``n_numeric`` and ``slot_index`` (the column of each
        value slot, in the mask's order). "masking" then hides whole cells
        (the values of a cell and its indicator), and "gaussian" perturbs
        the observed numeric values only.
    """

    def __init__(self, noise, noise_level, low=0.0, high=1.0, clip=None, cells=None):
        self.noise = noise
        self.noise_level = noise_level
        self.low = low
        self.high = high
        self.clip = clip
        self.cells = cells
        self._slot_index = None if cells is None else torch.as_tensor(cells["slot_index"])

    def __call__(self, X, generator):
        if self.cells is not None and not callable(self.noise):
            return self._corrupt_cells(X, generator)
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

    def _corrupt_cells(self, X, generator):
        n_slots, n_numeric = self.cells["n_slots"], self.cells["n_numeric"]
        values, observed = X[:, :n_slots], X[:, n_slots:]
        if self.noise == "masking":
            draws = torch.rand(observed.shape, generator=generator, device=X.device,
                               dtype=X.dtype)
            observed = observed * (draws >= self.noise_level)
            values = values * observed[:, self._slot_index.to(X.device)]
        else:  # "gaussian"
            noise = self.noise_level * torch.randn(
                (len(X), n_numeric), generator=generator, device=X.device, dtype=X.dtype)
            values = torch.cat([values[:, :n_numeric] + noise * observed[:, :n_numeric],
                                values[:, n_numeric:]], dim=1)
        return torch.cat([values, observed], dim=1)

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
