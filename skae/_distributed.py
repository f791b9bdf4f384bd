"""Data-parallel training under ``torchrun``, on torch.distributed's own machinery.

Under torchrun's environment (``WORLD_SIZE`` > 1, ``RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) every process runs the user's unchanged script and calls
``fit`` with the same X; :func:`data_parallel` then joins (or creates) the
process group, and :class:`DataParallel` gives the skorch net
(:class:`~skae._net.AutoencoderNet`) what one rank of a data-parallel fit
needs, through the hooks the net calls:

- each training pass, a permutation of the rows that is the same on every
  rank (drawn from the shared shuffling generator), of which each rank takes
  every ``world_size``-th row, padded by repeating its first rows to equal
  shards, as :class:`torch.utils.data.distributed.DistributedSampler` does;
- the training forward pass through
  :class:`torch.nn.parallel.DistributedDataParallel`, which broadcasts the
  weights from rank 0 when it wraps the module and averages the gradients
  across ranks in the backward pass; the net keeps the plain module as
  ``module_`` (its ``encode``, ``decode`` and ``state_dict`` are used
  outside ``forward``, which the wrapper does not forward);
- every rank's per-batch records gathered into every rank's history at the
  end of each epoch, so that the epoch's losses (and early stopping, which
  reads them) are over all the rows and the same on every rank;
- the held-out rows split among the ranks, each scoring its part, and
  BatchNorm's statistics broadcast from rank 0 after each training pass;
- noise and dropout generators seeded per rank.
"""

import datetime
import itertools
import math
import os
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ._data import ChunkedDataset
from ._runtime import in_parallel_worker

#: Environment variable holding the seconds a rank waits for the others
#: (to join the process group, or at any collective) before it fails.
TIMEOUT_VARIABLE = "SKAE_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT = 600.0

# What torchrun sets besides WORLD_SIZE, and env:// initialisation reads.
_LAUNCH_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")


def _int_variable(name, default):
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} must be an integer, "
                         "as torchrun sets it.") from None


def distributed_timeout():
    """The process group's timeout: ``SKAE_DISTRIBUTED_TIMEOUT`` seconds, else 600."""
    value = os.environ.get(TIMEOUT_VARIABLE)
    try:
        seconds = DEFAULT_TIMEOUT if value is None else float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_VARIABLE}={value!r} must be a positive number of "
                         "seconds.")
    return datetime.timedelta(seconds=seconds)


def is_data_parallel(distributed):
    """Whether a fit with parameter ``distributed`` trains data-parallel here.

    "auto": when a process group of more than one process exists, or
    torchrun's environment says ``WORLD_SIZE`` > 1, except in a parallel
    worker (a joblib or Dask worker inherits the launch's environment, but
    is not a rank). True: also with one process, but a launch (or a process
    group) is required. False: never.
    A launch whose environment lacks what env:// initialisation needs is an
    error, not a silent fit in one process.
    """
    auto = isinstance(distributed, str)
    required = not auto and bool(distributed)
    if not required and (not auto or in_parallel_worker()):
        return False
    if dist.is_available() and dist.is_initialized():
        return required or dist.get_world_size() > 1
    world_size = _int_variable("WORLD_SIZE", 1)
    if world_size <= 1 and not required:
        return False
    missing = [name for name in _LAUNCH_VARIABLES if not os.environ.get(name)]
    if missing or not dist.is_available():
        what = ("distributed=True needs" if world_size <= 1 else
                f"WORLD_SIZE={world_size} asks for data-parallel training, which needs")
        raise ValueError(
            f"{what} torchrun's environment (WORLD_SIZE, {', '.join(_LAUNCH_VARIABLES)}; "
            f"missing: {', '.join(missing) or 'torch.distributed'}) or a process group "
            "from torch.distributed.init_process_group. Launch the script with "
            "`torchrun --nproc_per_node=2 script.py`, or set distributed=False to fit "
            "in this process alone."
        )
    return True


def training_ranks(distributed):
    """How many ranks share the training rows of a fit with ``distributed`` (1 alone)."""
    return dist.get_world_size() if is_data_parallel(distributed) and dist.is_initialized() else 1


def check_single_process(distributed, what):
    """Refuse ``what`` (partial_fit, a warm start) under a data-parallel launch."""
    if is_data_parallel(distributed):
        raise ValueError(
            f"{what} is not data-parallel: under torchrun each rank would train alone "
            "and the ranks' models would drift apart. Call fit instead, or set "
            "distributed=False to train each process on its own."
        )


@contextmanager
def data_parallel(distributed, device):
    """Inside the block, a :class:`DataParallel` for this rank, or None when not distributed.

    Creates the process group when none exists (gloo on the CPU, NCCL on
    CUDA, with :func:`distributed_timeout`) and destroys it at the end of the
    block; a group the user created is used and left alone. A collective that
    fails (a rank died, or stayed silent past the timeout) becomes a
    ``RuntimeError`` that says so.
    """
    if not is_data_parallel(distributed):
        yield None
        return
    device = torch.device(device)
    created = not dist.is_initialized()
    if device.type == "cuda" and device.index is None:  # one GPU per rank
        device = torch.device("cuda", _int_variable("LOCAL_RANK", 0) if created
                              else torch.cuda.current_device())
    if created:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        timeout = distributed_timeout()
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=timeout)
        except RuntimeError as error:  # torch's DistStoreError, DistNetworkError...
            raise RuntimeError(
                f"Rank {os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')} could not "
                f"join the process group at {os.environ.get('MASTER_ADDR')}:"
                f"{os.environ.get('MASTER_PORT')} within {TIMEOUT_VARIABLE}="
                f"{timeout.total_seconds():g} s: are all ranks started, with the same "
                f"MASTER_ADDR and MASTER_PORT? torch.distributed said: {error}"
            ) from error
    rank, world_size = dist.get_rank(), dist.get_world_size()
    waited = (f"{TIMEOUT_VARIABLE}={distributed_timeout().total_seconds():g} s" if created
              else "the timeout of the script's process group")
    try:
        yield DataParallel(rank, world_size, str(device))
    except RuntimeError as error:
        if not _is_collective_failure(error):
            raise
        raise RuntimeError(
            f"Data-parallel fit failed on rank {rank} of {world_size}: another rank "
            f"died or stopped answering (waiting at most {waited}); see that rank's "
            f"output. torch.distributed said: {error}"
        ) from error
    finally:
        if created:
            dist.destroy_process_group()


def _is_collective_failure(error):
    """Whether ``error`` comes from a collective whose peers are gone or silent.

    torch raises ``DistError`` for some and a plain ``RuntimeError`` from gloo's
    or NCCL's transport for others (e.g. gloo's "Connection reset by peer").
    """
    return isinstance(error, dist.DistError) or any(
        word in str(error) for word in ("gloo", "NCCL", "Connection", "timed out",
                                        "Timed out"))


def _units(dataset):
    """What is dealt out to the ranks: rows, or the chunks of an array on disk."""
    return len(dataset.chunks) if isinstance(dataset, ChunkedDataset) else len(dataset)


def _chunk_slices(chunks, world_size):
    """Each rank's slice of every chunk: rank ``r`` reads the ``r``-th of ``world_size`` parts."""
    return [[(start + (stop - start) * rank // world_size,
              start + (stop - start) * (rank + 1) // world_size)
             for start, stop in chunks if (stop - start) * (rank + 1) // world_size
             > (stop - start) * rank // world_size]
            for rank in range(world_size)]


def _checked(shards, what):
    if not all(len(shard) for shard in shards):
        raise ValueError(
            f"the {what} cannot be shared among WORLD_SIZE={len(shards)} ranks (a rank "
            "would get none); pass more rows, use larger chunks or launch fewer processes."
        )
    return shards


def training_shards(dataset, order, world_size):
    """Every rank's part of ``dataset`` for one pass, dealt out in ``order``.

    ``order`` is a permutation of the rows, or of the chunks of an array on
    disk. Rows: padded by repeating the first ones to a multiple of
    ``world_size``, then every ``world_size``-th from the rank's position on,
    as ``DistributedSampler`` does. Chunks: every ``world_size``-th chunk, or,
    with fewer chunks than ranks, each rank's slice of every chunk.
    """
    if not isinstance(dataset, ChunkedDataset):
        order = np.resize(order, math.ceil(len(order) / world_size) * world_size)
        return _checked([dataset.subset(order[rank::world_size])
                         for rank in range(world_size)], "training rows")
    chunks = [dataset.chunks[i] for i in order]
    parts = ([chunks[rank::world_size] for rank in range(world_size)]
             if len(chunks) >= world_size else _chunk_slices(chunks, world_size))
    return _checked([ChunkedDataset(dataset.X, dataset.sample_shape, part, dataset.extras)
                     for part in parts],
                    "training rows")


def validation_shard(dataset, rank, world_size):
    """Rank ``rank``'s fixed, unpadded part of the held-out ``dataset``.

    Every ``world_size``-th row; of an array on disk, the rank's slice of
    every held-out chunk (they are few).
    """
    if not isinstance(dataset, ChunkedDataset):
        shards = [dataset.subset(np.arange(r, len(dataset), world_size))
                  for r in range(world_size)]
    else:
        shards = [ChunkedDataset(dataset.X, dataset.sample_shape, part, dataset.extras)
                  for part in _chunk_slices(dataset.chunks, world_size)]
    return _checked(shards, "validation rows")[rank]


class ShardIterator:
    """Training batches of this rank's shard, a new shard each pass, as DistributedSampler.

    Each pass draws a permutation from ``generator`` (the same draw on every
    rank) and deals the rows out with :func:`training_shards`: the shards
    are disjoint but for the padding. Each rank yields as many batches as
    the smallest shard gives (all of them for rows, whose shards are of
    equal size). The shard's batches come from ``make_iterator(shard)``;
    ``after_pass()`` runs when a pass has yielded its last batch.
    """

    def __init__(self, dataset, rank, world_size, generator, make_iterator, after_pass):
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.generator = generator
        self.make_iterator = make_iterator
        self.after_pass = after_pass

    def _n_batches(self, shards):
        # Every rank must take the same number of steps: each step all-reduces.
        return min(len(self.make_iterator(shard)) for shard in shards)

    def __len__(self):
        # Exact for rows; for chunks, whose shards vary from pass to pass, an estimate.
        order = np.arange(_units(self.dataset))
        return self._n_batches(training_shards(self.dataset, order, self.world_size))

    def __iter__(self):
        order = torch.randperm(_units(self.dataset), generator=self.generator).numpy()
        shards = training_shards(self.dataset, order, self.world_size)
        batches = self.make_iterator(shards[self.rank])
        yield from itertools.islice(batches, self._n_batches(shards))
        self.after_pass()


class DataParallel:
    """One rank's part in a data-parallel fit: the hooks :class:`~skae._net.AutoencoderNet` calls.

    The net holds it as ``_data_parallel`` during ``fit`` only (see
    :meth:`attach`); nothing of it is pickled with the net.

    Parameters
    ----------
    rank, world_size : int
    device : str
        This rank's torch device (``cuda:LOCAL_RANK`` on GPUs).
    """

    def __init__(self, rank, world_size, device):
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.module = None

    @contextmanager
    def attach(self, net):
        """Make ``net`` train data-parallel inside the block."""
        net._data_parallel = self
        try:
            yield net
        finally:
            vars(net).pop("_data_parallel", None)
            self.module = None

    # -- hooks of AutoencoderNet ------------------------------------------
    def on_train_begin(self, net):
        """Per-rank noise and dropout; the module wrapped, its weights broadcast from rank 0."""
        noise_seed, dropout_seed, shard_seed = np.random.SeedSequence(
            [net.random_seed, self.rank]).generate_state(3)
        net._noise_generator.manual_seed(int(noise_seed))
        net._dropout_generator.manual_seed(int(dropout_seed))
        # Shuffles the rows within this rank's shard; the shared shuffling
        # generator draws the permutation that deals them out.
        self.shard_generator = torch.Generator().manual_seed(int(shard_seed))
        index = torch.device(self.device).index
        self.module = DistributedDataParallel(
            net.module_, device_ids=None if index is None else [index])

    def iterator(self, net, dataset, training):
        """This rank's batches of ``dataset``: a new shard each training pass, a fixed one else."""
        if not training:
            return net.batch_iterator(validation_shard(dataset, self.rank, self.world_size))
        return ShardIterator(
            dataset, self.rank, self.world_size, net._shuffle_generator,
            lambda shard: net.batch_iterator(shard, True, self.shard_generator),
            self.end_of_training_pass)

    def end_of_training_pass(self):
        """Rank 0's buffers (BatchNorm's statistics) on every rank, before validation.

        DistributedDataParallel broadcasts them before each forward pass, so
        after the last batch each rank holds its own update.
        """
        with torch.no_grad():
            for buffer in self.module.module.buffers():
                dist.broadcast(buffer, src=0)

    def on_epoch_end(self, net):
        """Every rank's batch records of the epoch, in rank order, in every rank's history."""
        epoch = net.history[-1]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, epoch["batches"])
        epoch["batches"] = [row for rows in gathered for row in rows]

    def sum_over_ranks(self, totals, count):
        """``totals`` (name -> sum) and ``count`` summed over the ranks, in rank order."""
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, (totals, count))
        return ({name: sum(part[0][name] for part in gathered) for name in totals},
                sum(part[1] for part in gathered))
