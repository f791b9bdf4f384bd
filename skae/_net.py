"""The skorch layer: NeuralNet subclasses that know the autoencoders' losses.

The training loop, history, callbacks and device handling are skorch's. These
nets customise it through skorch's documented hooks (``get_loss``,
``get_iterator``, ``train_step_single``, ``validation_step``, callbacks), and
one method skorch's customization guide does not list as safe,
``run_single_epoch``:

- batches come from :class:`~skae._data.BatchIterator`, the target of every
  batch is its own (clean) input;
- the per-batch work around the model is kept small (see
  ``benchmarks/bench_speed.py``): fused optimizers where torch has them
  (:func:`supports_fused`), the module's mode set only when it changes,
  and, while no callback listens to batches, each batch's loss read once
  per epoch instead of once per batch (``run_single_epoch``). skorch's own
  ``notify``, ``train_step`` and ``infer`` run unchanged: overriding them
  saved too little of an epoch to be worth it
  (``benchmarks/results/overrides/``);
- :class:`DenoisingNet` corrupts the input of training and validation batches
  only, with noise drawn from generators seeded by ``random_seed``;
- :class:`VAENet` draws the latent sample by the reparameterisation trick
  while training and records the KL and reconstruction terms per epoch;
- in a data-parallel fit under torchrun, the hooks hand the batches, the
  training forward pass and the epoch's records to
  :class:`~skae._distributed.DataParallel`.
"""

import copy
import functools
import math
import operator

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import (Callback, EarlyStopping, LRScheduler, PassthroughScoring,
                              ProgressBar)
from skorch.history import History
from skorch.utils import to_tensor

from ._data import BatchIterator, ChunkedDataset, ChunkIterator
from ._modules import SeededDropout
from ._tabular import cell_losses, masked_table_loss

# Bernoulli means are kept this far from 0 and 1 in the loss, where the
# log-likelihood of a pixel at the other end would be infinite.
BERNOULLI_EPS = 1e-4


@functools.lru_cache(maxsize=None)
def _fused_step_works(optimizer_class, device_type):
    param = torch.zeros(1, device=device_type, requires_grad=True)
    param.grad = torch.zeros_like(param)
    try:
        # torch checks the device only at the first step, so take one.
        optimizer_class([param], lr=0.1, fused=True).step()
    except (TypeError, ValueError, RuntimeError):
        return False
    return True


def supports_fused(optimizer_class, device):
    """Whether ``optimizer_class(..., fused=True)`` can train float32 weights on ``device``.

    A fused optimizer updates every parameter in one kernel instead of a
    dozen small ops per parameter tensor, a large share of a small model's
    step (benchmarks/bench_speed.py measures it). The update is
    the same arithmetic, rounded differently: results differ from the
    unfused step only by float rounding. Older torch versions and some
    devices lack the kernels; then this is False and the plain step is used.
    """
    return _fused_step_works(optimizer_class, torch.device(device).type)


# Generators live only during fit: they are rebuilt from ``random_seed`` at
# the start of training and never pickled.
_GENERATOR_ATTRIBUTES = ("_shuffle_generator", "_noise_generator", "_valid_generator",
                         "_dropout_generator")

# Hooks around each batch whose listeners send a pass through skorch's own
# loop; see ``AutoencoderNet.run_single_epoch``.
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end")


@functools.lru_cache(maxsize=None)
def _as_torch_device(device):
    return torch.device(device)


def _on_device(X, device):
    """Whether ``X`` is a tensor that skorch's ``to_tensor(X, device)`` would return unchanged.

    skorch's conversion of each batch costs some Python even when there is
    nothing to do.
    """
    return isinstance(X, torch.Tensor) and (device is None
                                            or X.device == _as_torch_device(device))


def device_tensor(X, device):
    """skorch's ``to_tensor(X, device)``, skipped when it would return ``X`` unchanged."""
    return X if _on_device(X, device) else to_tensor(X, device=device)


def all_finite(tensor):
    """Whether every value of ``tensor`` is finite; cheap when they all are.

    The sum of finite values is finite unless it overflows, so only a
    non-finite sum pays for the elementwise check, which costs several
    times more per batch.
    """
    return math.isfinite(tensor.sum().item()) or bool(torch.isfinite(tensor).all())


def mse(output, X, weight=None):
    """Mean squared error over a batch; with ``weight``, the weighted mean of its rows'."""
    squares = (output.flatten(1) - X.flatten(1)).pow(2)
    return squares.mean() if weight is None else weighted_mean(squares.mean(1), weight)


def weighted_mean(values, weight):
    """Mean of per-row ``values``, weighted by ``weight`` as MLPRegressor weighs a batch.

    A batch whose weights are all zero contributes zero (and no gradient)
    rather than 0 / 0.
    """
    if weight is None:
        return values.mean()
    return (values * weight).sum() / weight.sum().clamp_min(torch.finfo(values.dtype).tiny)


def _defines_hook(callback, hook):
    """Whether ``callback``'s ``hook`` does more than skorch's empty default."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)


class EpochBatchValues:
    """One pass's per-batch values, kept on the device and read in one go.

    Each named scalar goes into its own preallocated column, a 1-D tensor
    with a slot per batch: writing a batch's value is one on-device copy
    into its slot (a view made once a pass), no sync, and no new tensor per
    batch. (Kept as separate tensors, an epoch of small allocations between
    the batches' large ones fragments the heap, so the allocator keeps
    handing memory back to the system and asking for it again (measured in
    benchmarks/results/speed/); and ``mse_loss``'s CPU scalar
    views the batch's whole buffer, so keeping the scalars themselves would
    keep an epoch of batches.) Python values, such as batch sizes, are kept
    in lists.

    Parameters
    ----------
    n_batches : int
        Expected number of batches, the columns' first length; they grow if
        the pass turns out longer.
    """

    def __init__(self, n_batches):
        self.capacity = max(1, n_batches)
        self.n_batches = 0
        # name -> [column, items, positions of the batches that recorded them]:
        # a tensor column with ``items`` its per-batch slots, or None with
        # ``items`` the Python values in order.
        self.columns = {}

    def new_batch(self):
        """Start the next batch's row."""
        self.n_batches += 1
        if self.n_batches > self.capacity:
            self.capacity *= 2
            for entry in self.columns.values():
                if entry[0] is not None:
                    entry[0] = torch.cat([entry[0], torch.empty_like(entry[0])])
                    entry[1] = entry[0].unbind()

    def record(self, name, value):
        """Record ``value`` (a scalar tensor or a Python number) for the current batch."""
        entry = self.columns.get(name)
        if entry is None:
            column = None
            if isinstance(value, torch.Tensor):
                column = torch.empty(self.capacity, dtype=value.dtype, device=value.device)
            entry = self.columns[name] = [column, [] if column is None else column.unbind(),
                                          []]
        column, items, positions = entry
        position = self.n_batches - 1
        if column is None:
            items.append(value)
        else:
            items[position].copy_(value.detach())
        positions.append(position)

    def rows(self):
        """The batches' rows, dicts of name to Python value, in recording order."""
        columns = [column[:self.n_batches] for column, _, _ in self.columns.values()
                   if column is not None]
        # One device sync; stack promotes mixed float types exactly.
        floats = iter(torch.stack(columns).tolist() if columns else ())
        rows = [{} for _ in range(self.n_batches)]
        for name, (column, items, positions) in self.columns.items():
            if column is not None:  # a slot per batch
                slots = next(floats)
                items = [slots[position] for position in positions]
            for position, value in zip(positions, items):
                rows[position][name] = value
        return rows

    def write_to(self, history):
        """Add the rows to ``history``'s current epoch, in the order they were recorded."""
        rows = self.rows()
        if type(history) is History:
            # What ``new_batch`` and ``record_batch`` do row by row, in one call.
            history[-1]["batches"].extend(rows)
            return
        for row in rows:  # e.g. skorch's DistributedHistory, which syncs its records
            history.new_batch()
            for name, value in row.items():
                history.record_batch(name, value)


class AutoencoderNet(NeuralNet):
    """NeuralNet whose loss compares a module's reconstruction with its input.

    The module's ``forward`` returns a tuple whose first element is the
    reconstruction. Everything else (callbacks, history, devices) is plain
    skorch.

    Parameters
    ----------
    module : torch.nn.Module
    criterion : torch loss class, default=torch.nn.MSELoss
    random_seed : int, default=0
        Seeds the shuffling, the noise and the dropout masks of training
        (generators the net owns, never torch's process-wide one), so that
        two fits with the same seed and device are bit-identical, in any thread.
    drop_single_batch : bool, default=False
        Skip a last training batch of one row (BatchNorm cannot train on it).
    table_layout : dict or None, default=None
        For a mixed table: ``n_slots`` (width of the encoded values),
        ``n_numeric`` and ``block_sizes`` (the one-hot blocks). Each row is
        then its encoded values followed by its observed mask (slot order),
        and the loss is :func:`skae._tabular.masked_table_loss` over the
        observed cells.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, *args, criterion=torch.nn.MSELoss, random_seed=0,
                 drop_single_batch=False, table_layout=None, **kwargs):
        super().__init__(module, *args, criterion=criterion, **kwargs)
        self.random_seed = random_seed
        self.drop_single_batch = drop_single_batch
        self.table_layout = table_layout

    # -- generators -------------------------------------------------------
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # Word 3 of the sequence seeds the VAE's scoring draws (see _vae.py).
        shuffle_seed, noise_seed, valid_seed, _, dropout_seed = np.random.SeedSequence(
            self.random_seed).generate_state(5)
        self._shuffle_generator = torch.Generator().manual_seed(int(shuffle_seed))
        self._noise_generator = torch.Generator(device=self.device).manual_seed(int(noise_seed))
        self._valid_seed = int(valid_seed)
        self._valid_generator = torch.Generator(device=self.device)
        self._dropout_generator = torch.Generator(device=self.device).manual_seed(
            int(dropout_seed))
        resumed = vars(self).pop("_resume_states", None)
        for name, state in (resumed or {}).items():
            getattr(self, name).set_state(state)
        self._set_dropout_generator(self._dropout_generator)
        if self._parallel is not None:
            self._parallel.on_train_begin(self)

    @property
    def _parallel(self):
        """The data-parallel fit's :class:`~skae._distributed.DataParallel`, or None."""
        return vars(self).get("_data_parallel")

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train,
                               dataset_valid=dataset_valid, **kwargs)
        # The same validation noise every epoch, so validation losses compare.
        self._valid_generator.manual_seed(self._valid_seed)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                             **kwargs)
        if self._parallel is not None:  # before the callbacks average the epoch's batches
            self._parallel.on_epoch_end(self)

    def _set_dropout_generator(self, generator):
        """Make the module's dropout layers draw from ``generator`` (None: torch's own)."""
        for layer in self.module_.modules():
            if isinstance(layer, SeededDropout):
                layer.generator = generator

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        self._set_dropout_generator(None)
        # Their states (plain tensors, pickled with the net) let a later
        # ``continue_training`` draw what the same longer fit would draw.
        self._generator_states = self.generator_states()
        for name in _GENERATOR_ATTRIBUTES:
            vars(self).pop(name, None)

    def generator_states(self):
        """States of the live shuffling, noise and dropout generators; empty outside training."""
        return {name: vars(self)[name].get_state()
                for name in ("_shuffle_generator", "_noise_generator", "_dropout_generator")
                if name in vars(self)}

    def continue_training(self, dataset, epochs, resume=False):
        """skorch's ``partial_fit`` for ``epochs`` epochs, the generators continuing.

        The shuffling and noise generators resume from their states at the
        end of the last training, so that fits of 3 and then 3 epochs draw
        the same batches and noise as one fit of 6. With ``resume``, the net
        was pickled in the middle of a training (a checkpoint): the
        convergence monitor also keeps its state, so that the training
        carries on as if it had never stopped.
        """
        self._resume_states = vars(self).get("_generator_states")
        self._resuming = resume
        try:
            return self.partial_fit(dataset, epochs=epochs)
        finally:
            vars(self).pop("_resuming", None)

    def __getstate__(self):
        state = super().__getstate__()
        # Pickled in the middle of a training (a checkpoint's epoch end): the
        # generators' states there let ``continue_training`` resume it.
        live = self.generator_states()
        if live:
            state["_generator_states"] = live
        for name in (*_GENERATOR_ATTRIBUTES, "_batch_listeners", "_batch_values",
                     "_resuming", "_data_parallel"):
            state.pop(name, None)
        return state

    # -- callbacks ----------------------------------------------------------
    def get_default_callbacks(self):
        """skorch's default callbacks, with :class:`BatchAverage` for its batch averages."""
        return [
            (name, BatchAverage(name=callback.name, lower_is_better=callback.lower_is_better,
                                on_train=callback.on_train)
             if type(callback) is PassthroughScoring else callback)
            for name, callback in super().get_default_callbacks()
        ]

    # -- the loop -----------------------------------------------------------
    def _callbacks_defining(self, hook):
        # skorch builds a new ``callbacks_`` list whenever the callbacks
        # change (initialize, set_params, "disable"), so the list's identity
        # says when to look again.
        cached = vars(self).get("_batch_listeners")
        if cached is None or cached[0] is not self.callbacks_:
            listeners = {
                name: [cb for _, cb in self.callbacks_ if _defines_hook(cb, name)]
                for name in _BATCH_HOOKS
            }
            cached = self._batch_listeners = (self.callbacks_, listeners)
        return cached[1][hook]

    def _listens_to(self, hook):
        """Whether a callback, or an override of the net's own method, handles ``hook``."""
        return (bool(self._callbacks_defining(hook))
                or getattr(type(self), hook) is not getattr(NeuralNet, hook))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's pass over one epoch's batches, reading their losses once.

        skorch reads each batch's loss with ``loss.item()`` (which waits for
        a GPU to finish the step), calls two hooks of every callback and
        writes the history row by row. While no callback listens to
        ``on_batch_begin`` or ``on_batch_end``, the values of each batch are
        copied into preallocated tensors (:class:`EpochBatchValues`) and
        written to the history at the end of the pass, read in one go: the
        same rows, the same floats, less Python per batch, and no allocation
        that outlives its batch (so an epoch asks the system for no new
        memory, as a hand-written loop does not). A callback that listens
        (e.g. :class:`skorch.callbacks.ProgressBar`) gets skorch's loop
        unchanged. Of skorch's methods that its guide calls unsafe to
        override, this is the one skae keeps: the only such override that
        saved more than a couple of percent of a small model's epoch
        (``benchmarks/results/overrides/``).
        """
        if iterator is None or self._listens_to("on_batch_begin") or self._listens_to(
                "on_batch_end"):
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        values = self._batch_values = EpochBatchValues(operator.length_hint(iterator, 64))
        new_batch, record = values.new_batch, values.record
        loss_name, size_name = f"{prefix}_loss", f"{prefix}_batch_size"
        try:
            for batch in iterator:
                new_batch()
                step = step_fn(batch, **fit_params)
                record(loss_name, step["loss"])
                record(size_name, len(batch[0]))
                # Free the batch and its outputs before the next one is built:
                # the same memory then serves every batch.
                del step, batch
        finally:
            vars(self).pop("_batch_values", None)
        values.write_to(self.history)
        self.history.record(f"{prefix}_batch_count", values.n_batches)
        return None

    def record_batch_value(self, name, value):
        """Record the scalar tensor ``value`` under ``name`` for the current batch."""
        values = vars(self).get("_batch_values")
        if values is None:
            self.history.record_batch(name, value.item())
        else:
            values.record(name, value)

    # -- batches ----------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        if self._parallel is not None:  # this rank's shard
            return self._parallel.iterator(self, dataset, training)
        return self.batch_iterator(dataset, training)

    def batch_iterator(self, dataset, training=False, generator=None):
        """Batches of ``dataset``; training shuffles them with ``generator`` (or the net's)."""
        # Arrays on disk are read a group of chunks at a time (see ChunkIterator).
        iterator_class = ChunkIterator if isinstance(dataset, ChunkedDataset) else BatchIterator
        if training:
            return iterator_class(
                dataset, self.batch_size, shuffle=True,
                generator=self._shuffle_generator if generator is None else generator,
                drop_single=self.drop_single_batch,
            )
        return iterator_class(dataset, self.batch_size)

    def corrupt(self, X, training):
        """Input the module sees for clean batch ``X``; unchanged here."""
        return X

    def module_kwargs(self, training):
        """Extra keyword arguments for the module's ``forward``."""
        return {}

    def evaluate(self, dataset):
        """Validation scores of the current weights over ``dataset``, recording nothing.

        A dict of history key to value: ``valid_loss`` and what
        :meth:`validation_terms` adds, each the batch-size-weighted mean over
        the batches of a validation pass with the validation noise of every
        epoch: the values the weights would get at the end of an epoch.
        """
        self._set_mode(False)
        self._valid_generator.manual_seed(self._valid_seed)
        totals, count = {}, 0
        with torch.no_grad():
            for batch in self.get_iterator(dataset, training=False):
                X = device_tensor(batch[0], self.device)
                weight = self._batch_weight(batch)
                y_pred = self.infer(self.corrupt(X, False), **self.module_kwargs(False))
                terms = {"valid_loss": self.batch_loss(y_pred, X, weight),
                         **self.validation_terms(y_pred, X, weight)}
                size = len(X) if weight is None else weight.sum().item()
                for name, value in terms.items():
                    totals[name] = totals.get(name, 0.0) + value.item() * size
                count += size
        if self._parallel is not None:  # each rank scored its shard of the rows
            totals, count = self._parallel.sum_over_ranks(totals, count)
        self._valid_generator.manual_seed(self._valid_seed)
        return {name: total / max(count, 1) for name, total in totals.items()}

    def validation_terms(self, y_pred, X, weight=None):
        """Scalar tensors a validation batch records beside its loss; none here."""
        return {}

    def _batch_weight(self, batch):
        """The batch's sample weights on the device, or None when the fit has none."""
        extras = batch[1]
        if not extras or "sample_weight" not in extras:
            return None
        return device_tensor(extras["sample_weight"], self.device)

    def _step(self, batch, training):
        X = device_tensor(batch[0], self.device)
        weight = self._batch_weight(batch)
        if weight is not None:
            # The epoch's mean of a weighted loss weighs its batches by their
            # total weight (see BatchAverage), so it is the weighted mean over rows.
            self.record_batch_value(f"{'train' if training else 'valid'}_batch_weight",
                                    weight.sum())
        X_input = self.corrupt(X, training)
        parallel = self._parallel
        if training and parallel is not None:  # gradients averaged over the ranks
            y_pred = parallel.module(X_input, **self.module_kwargs(training))
        else:
            y_pred = self.infer(X_input, **self.module_kwargs(training))
        loss = self.get_loss(y_pred, X, X=X_input, training=training, sample_weight=weight)
        return loss, y_pred

    def _set_mode(self, training):
        # skorch sets the mode before every batch; module.train() visits every
        # submodule, a visible share of a small model's step. Switch only
        # when the mode differs: the first batch of each
        # training and validation pass, or after a callback changed it.
        if self.module_.training != training:
            self._set_training(training)

    def train_step_single(self, batch, **fit_params):
        self._set_mode(True)
        loss, y_pred = self._step(batch, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        self._set_mode(False)
        with torch.no_grad():
            loss, y_pred = self._step(batch, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        """Criterion between the reconstruction ``y_pred[0]`` and the clean input.

        A validation batch also records its :meth:`validation_terms`.
        ``sample_weight``: per-row weights of the batch, or None.
        """
        if not training:
            self.record_validation_terms(y_pred, y_true, sample_weight)
        return self.batch_loss(y_pred, y_true, sample_weight)

    def record_validation_terms(self, y_pred, X, weight=None):
        """Record a validation batch's :meth:`validation_terms`."""
        for name, value in self.validation_terms(y_pred, X, weight).items():
            self.record_batch_value(name, value)

    def batch_loss(self, y_pred, X, weight=None):
        """Loss of a batch's outputs against its clean input X, recording nothing.

        With ``weight``, the weighted mean of the rows' mean squared errors.
        """
        if self.table_layout is not None:
            return weighted_mean(self.table_row_loss(y_pred[0], X), weight)
        if weight is None:
            return self.criterion_(y_pred[0], X)
        return mse(y_pred[0], X, weight)

    def table_row_loss(self, output, X):
        """Each mixed-table row's mean loss over its observed cells (see ``table_layout``)."""
        layout = self.table_layout
        n_slots = layout["n_slots"]
        return masked_table_loss(output[:, :n_slots], X[:, :n_slots], X[:, n_slots:],
                                 layout["n_numeric"], layout["block_sizes"], per_row=True)


class DenoisingNet(AutoencoderNet):
    """AutoencoderNet that feeds corrupted batches and targets the clean ones.

    Parameters
    ----------
    corruption : callable
        ``corruption(X, generator) -> X_corrupted``; must not modify ``X``.
    **kwargs
        Passed to :class:`AutoencoderNet`.
    """

    def __init__(self, module, *args, corruption=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.corruption = corruption

    def corrupt(self, X, training):
        generator = self._noise_generator if training else self._valid_generator
        return self.corruption(X, generator)

    def get_default_callbacks(self):
        clean = ("valid_clean_mse", BatchAverage(name="valid_clean_mse", on_train=False))
        return [*super().get_default_callbacks(), clean]

    def validation_terms(self, y_pred, X, weight=None):
        """The mean squared error of the reconstruction of the clean (uncorrupted) batch."""
        module = self.module_
        reconstruction = module.decode(module.encode(X))
        return {"valid_clean_mse": mse(reconstruction, X, weight)}


class VAENet(AutoencoderNet):
    """Net of a variational autoencoder: loss is the negative ELBO per row.

    Parameters
    ----------
    likelihood : {"bernoulli", "gaussian"}
        Decoder distribution of the reconstruction term.
    bernoulli_logits : bool, default=True
        Whether a Bernoulli decoder outputs logits; if False it outputs the
        means themselves (a linear path started from PCA), clamped into
        ``[BERNOULLI_EPS, 1 - BERNOULLI_EPS]`` in the loss.
    beta : float, default=1.0
        Weight of the KL term (beta-VAE).
    kl_warmup : int, default=0
        Number of epochs over which the KL weight ramps linearly from 0 to
        ``beta``; validation always uses ``beta``.
    **kwargs
        Passed to :class:`AutoencoderNet`.

    Notes
    -----
    Validation draws its latent samples from a generator re-seeded at every
    epoch, so that ``valid_loss`` is a Monte Carlo negative ELBO whose noise
    is the same from epoch to epoch (epochs compare) and, at an exact
    posterior such as probabilistic PCA's start, equal to ``-log p(x)``.
    """

    def __init__(self, module, *args, likelihood="gaussian", bernoulli_logits=True,
                 beta=1.0, kl_warmup=0, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.likelihood = likelihood
        self.bernoulli_logits = bernoulli_logits
        self.beta = beta
        self.kl_warmup = kl_warmup

    def get_default_callbacks(self):
        terms = [
            (f"{prefix}_{term}", BatchAverage(name=f"{prefix}_{term}",
                                              on_train=prefix == "train"))
            for prefix in ("train", "valid") for term in ("recon", "kl")
        ]
        mse = ("valid_mse", BatchAverage(name="valid_mse", on_train=False))
        return [*super().get_default_callbacks(), *terms, mse]

    def validation_terms(self, y_pred, X, weight=None):
        """The mean squared error of the reconstruction at the posterior mean."""
        mu = y_pred[1]
        reconstruction = self.module_.decode(mu)
        return {"valid_mse": mse(reconstruction, X, weight)}

    def module_kwargs(self, training):
        return {"generator": self._noise_generator if training else self._valid_generator}

    def kl_weight(self, training):
        """KL weight of the current epoch: ramped while warming up, else ``beta``."""
        if not training or self.kl_warmup == 0:
            return self.beta
        epoch = len(self.history) - 1
        return self.beta * min(1.0, epoch / self.kl_warmup)

    def reconstruction_nll(self, decoder_output, X, module=None):
        """Per-row negative log-likelihood of X given the decoder's output, in nats."""
        decoder_output = decoder_output.flatten(1)
        X = X.flatten(1)
        if self.table_layout is not None:
            return self.table_nll(decoder_output, X, module)
        if self.likelihood == "bernoulli":
            if self.bernoulli_logits:
                return F.binary_cross_entropy_with_logits(
                    decoder_output, X, reduction="none").sum(1)
            means = decoder_output.clamp(BERNOULLI_EPS, 1.0 - BERNOULLI_EPS)
            return F.binary_cross_entropy(means, X, reduction="none").sum(1)
        log_scale = (module or self.module_).gaussian_log_scale()
        return (0.5 * ((X - decoder_output) * torch.exp(-log_scale)).pow(2)
                + log_scale + 0.5 * math.log(2 * math.pi)).sum(1)

    def table_nll(self, decoder_output, X, module=None):
        """Per-row negative log-likelihood of a mixed-table row's observed cells, in nats.

        Gaussian (the learned per-slot scale) for a numeric cell, categorical
        (softmax of its block) for a categorical one; missing cells and the
        observed mask itself are not modelled.
        """
        layout = self.table_layout
        n_slots, n_numeric = layout["n_slots"], layout["n_numeric"]
        log_scale = (module or self.module_).gaussian_log_scale()[:n_numeric]

        def gaussian_nll(output, target):
            return (0.5 * ((target - output) * torch.exp(-log_scale)).pow(2) + log_scale
                    + 0.5 * math.log(2 * math.pi))

        cells = cell_losses(decoder_output, X, n_numeric, layout["block_sizes"], gaussian_nll)
        return (cells * X[:, n_slots:]).sum(1)

    def negative_elbo_terms(self, y_pred, X):
        """Per-row reconstruction negative log-likelihood and KL, in nats."""
        decoder_output, mu, logvar = y_pred
        recon = self.reconstruction_nll(decoder_output, X)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return recon, kl

    def log_likelihood_bound(self, module, X, draws):
        """Importance-weighted lower bound on ``log p(x)`` per row (Burda et al. 2016).

        ``log mean_k p(x, z_k) / q(z_k | x)`` over the posterior draws made
        from ``draws``, standard normal values of shape (n_draws,
        n_components); one draw gives a Monte Carlo ELBO, more draws a
        tighter bound. At an exact posterior every term equals ``p(x)``.
        Every row uses the same draws, so that a row's bound does not depend
        on the rows around it.
        """
        mu, logvar = module.posterior(X)
        std = torch.exp(0.5 * logvar)
        log_weights = []
        for eps in draws.to(mu.device, mu.dtype):
            eps = eps.expand_as(mu)
            z = mu + eps * std
            log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_posterior = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(1)
            nll = self.reconstruction_nll(module.decoder(z), X, module)
            log_weights.append(log_prior - log_posterior - nll)
        return torch.logsumexp(torch.stack(log_weights), dim=0) - math.log(len(draws))

    def fit_reconstruction_scale(self, codes, X, weight=None, chunk_rows=1024):
        """Set ``module_.reconstruction_scale`` to reconstruct X best from its codes.

        The per-code factor ``s`` that minimises the (``weight``-ed) mean
        squared error between X and ``decode(s * codes)``, by L-BFGS on
        ``log s`` with the network's weights fixed, from the current scale;
        kept only where it lowers the error. The posterior mean of
        probabilistic PCA is its least-squares code shrunk by ``(L - s2) / L``
        per component, so at the PCA start the least-squares factor is
        ``L / (L - s2)`` and decodes as PCA reconstructs (Tipping and Bishop
        1999, section 3.3). ``codes`` and X are tensors on the net's device;
        rows go through the decoder ``chunk_rows`` at a time.
        """
        module = self.module_
        module.eval()
        scale = module.reconstruction_scale
        weight = (torch.ones(len(X), device=X.device) if weight is None
                  else torch.as_tensor(weight, dtype=torch.float32, device=X.device))
        total = float(weight.sum())
        if total <= 0:
            return
        log_scale = torch.log(scale.clamp(min=1e-6)).requires_grad_(True)
        bounds = range(0, len(X), chunk_rows)

        def error(grad):
            """The weighted mean squared error at ``exp(log_scale)`` (and its gradient)."""
            loss, gradient = 0.0, torch.zeros_like(log_scale)
            for start in bounds:
                rows = slice(start, start + chunk_rows)
                with torch.enable_grad() if grad else torch.no_grad():
                    output = module.output_activation(module.decoder(
                        codes[rows] * torch.exp(log_scale)))
                    part = (weight[rows] * (output.flatten(1) - X[rows].flatten(1))
                            .pow(2).mean(1)).sum() / total
                    if grad:
                        gradient += torch.autograd.grad(part, log_scale)[0]
                loss += float(part.detach())
            return loss, gradient

        def closure():
            loss, log_scale.grad = error(grad=True)
            return torch.tensor(loss)

        unscaled = error(grad=False)[0]
        optimizer = torch.optim.LBFGS([log_scale], max_iter=100, tolerance_grad=1e-9,
                                      tolerance_change=1e-12, line_search_fn="strong_wolfe")
        optimizer.step(closure)
        fitted = error(grad=False)[0]
        if math.isfinite(fitted) and fitted < unscaled:
            with torch.no_grad():
                scale.copy_(torch.exp(log_scale))

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        recon, kl = self.negative_elbo_terms(y_pred, y_true)
        prefix = "train" if training else "valid"
        self.record_batch_value(f"{prefix}_recon", weighted_mean(recon, sample_weight))
        self.record_batch_value(f"{prefix}_kl", weighted_mean(kl, sample_weight))
        if not training:
            self.record_validation_terms(y_pred, y_true, sample_weight)
        return weighted_mean(recon + self.kl_weight(training) * kl, sample_weight)

    def batch_loss(self, y_pred, X, weight=None):
        """Validation's loss of a batch (KL weight ``beta``), recording nothing."""
        recon, kl = self.negative_elbo_terms(y_pred, X)
        return weighted_mean(recon + self.kl_weight(training=False) * kl, weight)


# -- callbacks the estimators add ------------------------------------------
class BatchAverage(PassthroughScoring):
    """skorch's :class:`~skorch.callbacks.PassthroughScoring`, reading the batch rows directly.

    Records the epoch's mean of a batch value, weighted by batch size, as
    skorch's callback does (the same value, computed with the same
    arithmetic as its ``np.average``, and the same ``<name>_best`` flag).
    skorch's version looks the rows up twice through the history's general
    indexing and averages with ``np.average``, a cost small tables feel
    every epoch. A history
    other than skorch's :class:`~skorch.history.History` (e.g. its
    ``DistributedHistory``), or rows that lack the batch size, take
    skorch's own path.
    """

    def on_epoch_end(self, net, **kwargs):
        history = net.history
        if type(history) is not History:
            return super().on_epoch_end(net, **kwargs)
        prefix = "train" if self.on_train else "valid"
        rows = [row for row in history[-1]["batches"] if self.name in row]
        if not rows:  # e.g. valid_loss without a validation split: skorch records nothing
            return None
        # Weighted fits record each batch's total weight: a weighted mean over rows.
        size_name = (f"{prefix}_batch_weight" if f"{prefix}_batch_weight" in rows[0]
                     else f"{prefix}_batch_size")
        if any(size_name not in row for row in rows):
            return super().on_epoch_end(net, **kwargs)
        # np.average's arithmetic (float64 products, numpy's sums, one
        # division), without its argument handling.
        scores = np.array([row[self.name] for row in rows], dtype=np.float64)
        weights = np.array([row[size_name] for row in rows], dtype=np.float64)
        score_avg = np.multiply(scores, weights).sum() / weights.sum()
        is_best = self._is_best_score(score_avg)
        if is_best:
            self.best_score_ = score_avg
        history.record(self.name, score_avg)
        if is_best is not None:
            history.record(self.name + "_best", bool(is_best))
        return None


class StopOnNonFiniteLoss(Callback):
    """Stop training with a clear error as soon as an epoch's loss is NaN or inf.

    An epoch's loss is measured before its last optimizer step; a step that
    breaks the weights shows in the next epoch's loss, and after the last
    epoch in the checks of ``on_train_end``.
    """

    def on_epoch_end(self, net, **kwargs):
        last_epoch = net.history[-1]
        for name in ("train_loss", "valid_loss"):
            loss = last_epoch.get(name)
            if loss is not None and not np.isfinite(loss):
                self._raise(net, last_epoch["epoch"], f"the {name.replace('_', ' ')} is {loss}")

    def on_train_end(self, net, X=None, **kwargs):
        if not len(net.history):
            return
        epoch = net.history[-1, "epoch"]
        # The weights after the last step, all in one tensor (one read of
        # the result), then the first broken one by name.
        with torch.no_grad():
            weights = [parameter.reshape(-1) for parameter in net.module_.parameters()]
            broken = len(weights) > 0 and not all_finite(torch.cat(weights))
        if broken:
            for name, parameter in net.module_.named_parameters():
                if not torch.isfinite(parameter).all():
                    self._raise(net, epoch, f"after its last step the weights {name!r} "
                                "hold NaN or inf")
        # Without a validation split nothing measured the last step's weights:
        # run them once on the first training batch, outputs and loss (a VAE's
        # outputs can be finite while its KL term overflows).
        if "valid_loss" in net.history[-1] or X is None:
            return
        batch = next(iter(net.get_iterator(X, training=False)))
        net.module_.eval()
        X_batch = device_tensor(batch[0], net.device)
        with torch.no_grad():
            outputs = net.infer(X_batch)
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            if not all(torch.isfinite(output).all() for output in outputs):
                self._raise(net, epoch, "after its last step the model outputs NaN or inf")
            loss = net.batch_loss(outputs, X_batch)
        if not torch.isfinite(loss):
            self._raise(net, epoch,
                        f"after its last step the loss on the training data is {loss.item()}")

    @staticmethod
    def _raise(net, epoch, what):
        raise ValueError(
            f"Training diverged at epoch {epoch}: {what}. Lower learning_rate_init "
            f"(now {net.lr!r}) or scale the data first (e.g. StandardScaler or "
            "MinMaxScaler)."
        )


class LastEpochWeights(Callback):
    """Keep the weights of the last finished epoch; restore them after an interrupt.

    skorch stops training quietly on ``KeyboardInterrupt``. If that happens in
    the middle of an epoch, this callback puts back the weights of the last
    finished epoch, drops the unfinished epoch from the history and sets
    ``interrupted_`` so the estimator can warn.
    """

    def on_train_begin(self, net, **kwargs):
        self.interrupted_ = False
        # Interrupted in the first epoch: go back to the weights training began with.
        self._watch(net.module_)
        self.state_ = {name: tensor.detach().clone() for name, tensor in self._live.items()}

    def _watch(self, module):
        # The module's parameters and buffers themselves, looked up once:
        # ``state_dict()`` walks every submodule each epoch. Training updates
        # them in place
        # (optimizer steps, BatchNorm's statistics, ``load_state_dict``; a
        # parameter's ``.data`` swapped by ``module.to()`` is seen through the
        # parameter); a new module (skorch's ``initialize_module``) is looked
        # up again.
        self._module = module
        self._live = module.state_dict(keep_vars=True)

    def on_epoch_end(self, net, **kwargs):
        if net.module_ is not self._module:
            self._watch(net.module_)
        # Into the same copies instead of a new tensor per weight each epoch.
        with torch.no_grad():
            for saved, tensor in zip(self.state_.values(), self._live.values()):
                saved.copy_(tensor)

    def on_train_end(self, net, **kwargs):
        if net.history and "train_loss" not in net.history[-1]:
            self.interrupted_ = True
            del net.history[-1]
            if self.state_ is not None:
                net.module_.load_state_dict(self.state_)
        self.state_ = self._module = self._live = None


def improvement_bar(best, threshold, relative):
    """The loss a new one must be below to improve on ``best`` by ``threshold``.

    A relative threshold is a fraction of ``|best|``, so that the bar is
    raised for a negative loss too; every finite loss beats an infinite
    ``best`` (the first epoch's).
    """
    if not math.isfinite(best):
        return best
    return best - threshold * (abs(best) if relative else 1.0)


class ConvergenceMonitor(EarlyStopping):
    """skorch's :class:`~skorch.callbacks.EarlyStopping`, with the start among the candidates.

    When it monitors the validation loss, the weights training starts from
    (epoch 0) are scored on the validation rows before the first step and
    enter the competition: with ``load_best`` the best trained epoch's
    weights replace them at the end only if that epoch beats the start's
    validation loss by ``threshold``, so the weights returned never have a
    higher validation loss than the start. ``start_score_`` holds the start's
    validation loss (None when not measured) and ``best_epoch_`` is 0 when no
    epoch beat it.

    Patience counts epochs without improvement over the best trained epoch,
    not over the start: from a good start (PCA's solution) the first steps
    usually lose a little before the network's nonlinear part pays off, and
    stopping on the start's score would end such fits before they overtake it.

    ``constraint`` names a second validation value (e.g. a VAE's
    ``valid_mse``) that a candidate epoch must hold at or below the start's:
    an epoch above it counts as no improvement, whatever its loss.
    ``rejected_epochs_`` counts the epochs of the last training that beat
    the start's loss but not its constraint.

    Also safe when no epoch finished: skorch's version reads the last epoch
    of the history at the end of training, which fails when training was
    interrupted in the first epoch. A relative ``threshold`` is a fraction
    of the score's magnitude, so that it also holds for negative scores
    (a VAE's negative ELBO), where skorch's ``score * threshold`` would
    lower the bar instead of raising it.
    """

    def __init__(self, *args, constraint=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.constraint = constraint

    def _calc_new_threshold(self, score):
        if not self.lower_is_better:
            return super()._calc_new_threshold(score)
        return improvement_bar(score, self.threshold, self.threshold_mode == "rel")

    def on_train_begin(self, net, **kwargs):
        if getattr(net, "_resuming", False):
            # An interrupted fit resumed from its checkpoint: keep counting
            # misses against the same best epoch and weights.
            return
        super().on_train_begin(net, **kwargs)
        self.start_score_ = self._start = None
        self._constraint_limit = None
        self._start_pending = True
        self.rejected_epochs_ = 0

    def on_epoch_end(self, net, **kwargs):
        limit = self._constraint_limit
        if limit is not None and not net.history[-1, self.constraint] <= limit:
            if net.history[-1, self.monitor] < self._calc_new_threshold(self.start_score_):
                self.rejected_epochs_ += 1
            self.misses_ += 1
            if self.misses_ == self.patience:
                raise KeyboardInterrupt
            return
        super().on_epoch_end(net, **kwargs)

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        if not self._start_pending:
            return
        self._start_pending = False
        if self.monitor != "valid_loss" or dataset_valid is None or not hasattr(
                net, "evaluate"):
            return
        scores = net.evaluate(dataset_valid)
        score = scores["valid_loss"]
        if not math.isfinite(score):
            return
        self.start_score_ = score
        if self.constraint is not None:
            self._constraint_limit = scores[self.constraint]
        # The epoch training starts from (0, or the last of a continued fit)
        # and its weights, restored at the end unless a trained epoch beats it.
        self._start = (len(net.history) - 1,
                       copy.deepcopy(net.module_.state_dict()) if self.load_best else None)

    def on_train_end(self, net, **kwargs):
        if self._start is not None and not self._trained_epoch_beats_start(net):
            self.best_epoch_, weights = self._start
            if weights is not None:
                net.module_.load_state_dict(weights)
        elif len(net.history):
            super().on_train_end(net, **kwargs)
        # The module holds them now (or the last weights were kept).
        self.best_model_weights_ = self._start = None

    def _trained_epoch_beats_start(self, net):
        # skorch's best_epoch_ is the best trained epoch, or below the start's
        # epoch when none has improved (or passed the constraint) yet.
        if self.best_epoch_ <= self._start[0]:
            return False
        best = net.history[self.best_epoch_ - 1, self.monitor]
        return bool(best < self._calc_new_threshold(self.start_score_))

    def __getstate__(self):
        # skorch drops the best weights from pickles, which the module holds
        # after training; pickled in the middle of one (a checkpoint), they
        # are the ones the end of a resumed training restores.
        return dict(vars(self))


class RelativePlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch's ``ReduceLROnPlateau`` (mode "min") whose relative threshold is of the loss's magnitude.

    torch's relative test, ``a < best * (1 - threshold)``, accepts a worse
    loss as better when the loss is negative (a VAE's negative ELBO).
    """

    def _is_better(self, a, best):
        return a < improvement_bar(best, self.threshold, relative=True)


class ContinuedLRScheduler(LRScheduler):
    """skorch's :class:`~skorch.callbacks.LRScheduler`, continuing its schedule across trainings.

    skorch builds a new torch scheduler at the start of every training and
    places it by the number of epochs in the history: right for a schedule
    stepped once an epoch, but one stepped every batch (``CyclicLR``) goes
    back to the batch numbered by the epochs run, and ``ReduceLROnPlateau``
    forgets its counters. Here the new scheduler takes the state of the
    previous one (its step count, its counters) and the optimizer its
    rates, so that a continued training (``warm_start``, ``partial_fit``, a
    resumed checkpoint) follows the rates of one longer training.
    :meth:`restart` begins the schedule anew instead.
    """

    def restart(self, **kwargs):
        """Begin the schedule anew, from the optimizer's ``lr``, with ``kwargs`` changed."""
        vars(self).update(kwargs)
        self.lr_scheduler_ = self.scheduler_state_ = None
        self.restart_ = True

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        scheduler_kwargs.pop("last_epoch", None)
        previous = getattr(self, "lr_scheduler_", None)
        state = (previous.state_dict() if previous is not None
                 else getattr(self, "scheduler_state_", None))
        groups = net.optimizer_.param_groups
        if vars(self).pop("restart_", False):
            for group in groups:  # torch's schedulers start from "initial_lr" when it is set
                group.pop("initial_lr", None)
                group["lr"] = net.lr
        scheduler = policy(net.optimizer_, **scheduler_kwargs)
        if state is not None:
            scheduler.load_state_dict(state)
            # The settings given now win over the state's: a warm start may change tol.
            for key, value in scheduler_kwargs.items():
                if key in state:
                    setattr(scheduler, key, value)
            for group, lr in zip(groups, scheduler.get_last_lr()):
                group["lr"] = lr
        return scheduler

    def __getstate__(self):
        # The torch scheduler holds the optimizer, which skorch pickles apart
        # from the callbacks: keep only its state.
        state = dict(vars(self))
        scheduler = state.pop("lr_scheduler_", None)
        if scheduler is not None:
            state["scheduler_state_"] = scheduler.state_dict()
        return state


class AutoProgressBar(ProgressBar):
    """skorch's :class:`~skorch.callbacks.ProgressBar`, drawn by tqdm's auto frontend.

    skorch draws with ``tqdm.tqdm_notebook`` inside Jupyter, which raises
    ``ImportError`` where ipywidgets is not installed; ``tqdm.auto`` draws
    a widget where it can and text otherwise. The number of batches of
    each epoch is computed from the datasets ("auto").
    """

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        from tqdm.auto import tqdm

        total = self._get_batches_per_epoch(net, dataset_train, dataset_valid)
        self.pbar_ = tqdm(total=total, leave=False)
