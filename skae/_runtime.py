"""Process-level settings that fit and transform apply and then restore.

torch's thread count and random state are global to the process. skae sets
them only for the duration of a call, so fitting an estimator never changes
what the rest of the user's program sees.
"""

import multiprocessing
import os
from contextlib import contextmanager

import joblib
import torch


def default_n_threads():
    """Threads for torch when the user did not choose.

    ``OMP_NUM_THREADS`` wins when set (joblib's loky and Dask's nanny set it in
    their workers). Otherwise a child process (a joblib or Dask worker) gets
    one thread, so parallel workers never oversubscribe the cores, and the
    main process gets every core it may use.
    """
    env_threads = os.environ.get("OMP_NUM_THREADS", "")
    if env_threads.isdigit() and int(env_threads) > 0:
        return int(env_threads)
    if multiprocessing.parent_process() is not None:
        return 1
    return max(1, joblib.cpu_count())


@contextmanager
def torch_threads(n_threads=None):
    """Run the block with ``n_threads`` torch threads (None: :func:`default_n_threads`)."""
    wanted = default_n_threads() if n_threads is None else int(n_threads)
    previous = torch.get_num_threads()
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if wanted != previous:
            torch.set_num_threads(previous)


@contextmanager
def seeded_torch(seed, device):
    """Seed torch's global generators inside the block, restoring them after.

    Weight initialisation and dropout draw from the global generators; forking
    them keeps fits reproducible without touching the caller's random state.
    """
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def resolve_device(device):
    """Turn the ``device`` parameter into a torch device string, or raise."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' "
            "or 'cuda:N'."
        ) from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available on this "
            "machine; use device='auto' or device='cpu'."
        )
    return str(parsed)
