"""Process-level settings that fit and transform apply and then restore.

torch's thread count and the CPU's handling of subnormal floats are global
to the process (or to its threads). skae sets them only for the duration of
a call, so fitting an estimator never changes what the rest of the user's
program sees, from any thread. Its random numbers come from generators of
its own (:func:`seeded_torch`), never from torch's process-wide one.
"""

import contextvars
import ctypes
import functools
import multiprocessing
import os
import sys
import threading
from contextlib import contextmanager

import joblib
import torch
from torch.overrides import TorchFunctionMode

# True inside one chunk of :func:`skae.transform_dask`: one task among many
# running at once, which must not claim every core.
_IN_PARALLEL_TASK = contextvars.ContextVar("skae_in_parallel_task", default=False)


def _parse_threads(value):
    """Threads from an OMP_NUM_THREADS value ("4", or "4,2" for nested levels), or None."""
    first = (value or "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def _initial_environ():
    """The environment this process was started with (Linux), else an empty dict."""
    try:
        with open("/proc/self/environ", "rb") as file:
            entries = file.read().split(b"\0")
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}


def _startup_omp_num_threads():
    """OMP_NUM_THREADS of the main process, read once when skae is imported.

    Dask's nanny writes ``OMP_NUM_THREADS=1`` into the environment of the
    process that starts a ``LocalCluster`` (for its workers to inherit) and
    never removes it; read later, it would throttle the client's own fits,
    such as GridSearchCV's refit, to one thread. When a nanny already ran
    before skae was imported, the variable is taken from the environment the
    process started with instead.
    """
    value = os.environ.get("OMP_NUM_THREADS")
    nanny_module = sys.modules.get("distributed.nanny")
    nannies = getattr(getattr(nanny_module, "Nanny", None), "_instances", ())
    if value is not None and len(nannies) > 0:
        value = _initial_environ().get("OMP_NUM_THREADS")
    return _parse_threads(value)


_STARTUP_OMP_NUM_THREADS = _startup_omp_num_threads()


def _in_dask_worker_task():
    """Whether this code runs as a task on a dask.distributed worker."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def in_parallel_worker():
    """Whether this code runs as one of several parallel workers.

    True in a child process (joblib's loky workers, Dask workers under a
    nanny), in a task on any dask.distributed worker (also threads of
    ``LocalCluster(processes=False)`` and ``dask worker --no-nanny``), and in
    a chunk of :func:`skae.transform_dask`.
    """
    return (
        _IN_PARALLEL_TASK.get()
        or multiprocessing.parent_process() is not None
        or _in_dask_worker_task()
    )


@contextmanager
def parallel_task():
    """Mark the block as one task among several running at once (see :func:`default_n_threads`)."""
    token = _IN_PARALLEL_TASK.set(True)
    try:
        yield
    finally:
        _IN_PARALLEL_TASK.reset(token)


def default_n_threads():
    """Threads for torch when the user did not choose (``n_threads=None``).

    - In a parallel worker (see :func:`in_parallel_worker`):
      ``OMP_NUM_THREADS`` when set (joblib's loky sets cores // n_jobs in its
      workers, Dask's nanny sets 1), else 1, so that parallel workers never
      oversubscribe the cores.
    - In the main process: ``OMP_NUM_THREADS`` as it was when skae was
      imported, else every core the process may use (``joblib.cpu_count``,
      which respects CPU affinity and container quotas).
    """
    if in_parallel_worker():
        return _parse_threads(os.environ.get("OMP_NUM_THREADS")) or 1
    return _STARTUP_OMP_NUM_THREADS or max(1, joblib.cpu_count())


# torch's thread count is one setting for the whole process (new threads
# start with the last value set), so calls that overlap in several threads
# change it under one lock, and the last one to finish puts back the value
# from before the first one began.
_THREADS_LOCK = threading.Lock()
_threads_state = {"active": 0, "baseline": None}
_thread_calls = threading.local()


@contextmanager
def torch_threads(n_threads=None):
    """Run the block with ``n_threads`` torch threads (None: :func:`default_n_threads`).

    Safe to use from several threads at once: each thread gets back the
    count it had before its call, and once no call is left running, the
    process's count is the one from before the first call.
    """
    wanted = default_n_threads() if n_threads is None else int(n_threads)
    stack = _thread_calls.__dict__.setdefault("stack", [])
    with _THREADS_LOCK:
        if _threads_state["active"] == 0:
            _threads_state["baseline"] = torch.get_num_threads()
        # A thread started while another call ran inherited that call's
        # count: what it had "before" is the baseline.
        previous = stack[-1] if stack else (
            torch.get_num_threads() if _threads_state["active"] == 0
            else _threads_state["baseline"])
        _threads_state["active"] += 1
        stack.append(wanted)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        with _THREADS_LOCK:
            stack.pop()
            _threads_state["active"] -= 1
            restore = previous if _threads_state["active"] else _threads_state["baseline"]
            if torch.get_num_threads() != restore or _threads_state["active"] == 0:
                torch.set_num_threads(restore)


def flushes_denormals():
    """Whether this thread's CPU flushes subnormal floats to zero (FTZ/DAZ)."""
    # The smallest subnormal float32 (bits 0x00000001), made without float
    # arithmetic, doubled: flushed to 0, or the next subnormal.
    smallest = torch.ones((), dtype=torch.int32).view(torch.float32)
    return bool((smallest * 2.0).view(torch.int32) == 0)


# A task for an OpenMP team: ``void task(void *data)``.
_OPENMP_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@functools.lru_cache(maxsize=None)
def _gnu_openmp_parallel():
    """libgomp's ``GOMP_parallel`` from torch's own copy, or None.

    None when torch's intra-op threads are not GNU OpenMP threads (macOS,
    Windows, a TBB or native build) or the library is not loaded.
    """
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        # RTLD_NOLOAD: the libgomp.so.1 torch loaded, never a second copy.
        library = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD)
        parallel = library.GOMP_parallel
    except (AttributeError, OSError):
        return None
    parallel.argtypes = [_OPENMP_TASK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    return parallel


def _set_flush_denormal(on):
    """``torch.set_flush_denormal(on)`` in this thread and in each of its OpenMP workers.

    torch sets the calling thread's control register only; a GNU OpenMP
    worker keeps the mode of the thread that started it. So the setting runs
    as one OpenMP task on the team torch's kernels use (num_threads=0: the
    team of ``torch.get_num_threads()`` threads), once per fit.
    """
    parallel = _gnu_openmp_parallel()
    if parallel is None:
        return torch.set_flush_denormal(on)
    results = []
    task = _OPENMP_TASK(lambda data: results.append(torch.set_flush_denormal(on)))
    parallel(task, None, 0, 0)
    return bool(results) and all(results)


@contextmanager
def flushed_denormals(device):
    """Train with subnormal floats flushed to zero on the CPU; as before afterwards.

    With Adam, the first-moment estimates of weights whose gradients vanish
    most of the time (those of ReLU units that rarely fire) decay by a factor
    of 0.9 a step into the subnormal range, below 1.2e-38, where every
    operation on them costs the CPU many times more, so epochs grow
    markedly longer without flushing (benchmarks/results/speed/ holds the
    measurements).
    Flushing changes values by less than 1.2e-38, far below float32's
    rounding of the weights (see ``tests/test_speed_paths.py``);
    TensorFlow's CPU threads and oneDNN flush by default. Nothing changes on a GPU, or when the calling thread
    already flushes. Use inside :func:`torch_threads`, so that the workers
    set are the ones training uses.
    """
    if torch.device(device).type != "cpu" or flushes_denormals():
        yield
        return
    enabled = _set_flush_denormal(True)
    try:
        yield
    finally:
        if enabled:
            _set_flush_denormal(False)


class _OwnGenerator(TorchFunctionMode):
    """Give every random draw in the block that names no generator this one."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if kwargs.get("generator", 0) is None or (
                func in _RANDOM_FILLS and "generator" not in kwargs):
            kwargs["generator"] = self.generator
        return func(*args, **kwargs)


# Random functions a module's constructor may call without a ``generator``
# argument; torch.nn.init's functions pass ``generator=None`` explicitly.
_RANDOM_FILLS = frozenset({
    torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.bernoulli_,
    torch.Tensor.random_, torch.Tensor.exponential_, torch.Tensor.geometric_,
    torch.Tensor.cauchy_, torch.Tensor.log_normal_, torch.rand, torch.randn,
    torch.randint, torch.randperm, torch.bernoulli, torch.normal, torch.multinomial,
})


@contextmanager
def seeded_torch(seed):
    """Draw the block's random numbers (weight initialisation) from a generator of its own.

    The generator is seeded with ``seed`` and lives only in the block, so a
    fit never reads or changes torch's process-wide generator, which other
    threads share: concurrent fits with the same seed build the same
    weights. torch function modes are per thread, so only the calling
    thread's draws are redirected. Training draws (shuffling, noise,
    dropout, the VAE's samples) take generators owned by the net.
    """
    with _OwnGenerator(torch.Generator().manual_seed(int(seed))):
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
