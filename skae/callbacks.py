"""Callbacks for the ``callbacks=`` parameter of skae's estimators.

Any skorch callback works there (``skorch.callbacks.Checkpoint``,
``TrainEndCheckpoint``, ``EarlyStopping``...); the ones here know the
estimator around the net.
"""

import copy
import os
import pickle
import tempfile

from skorch.callbacks import Callback

__all__ = ["EstimatorCheckpoint"]


class EstimatorCheckpoint(Callback):
    """Pickle the whole estimator at the end of every epoch, to resume a fit that died.

    The file holds the estimator as it stands after the epoch: its
    parameters, its network with the optimizer's state, the history, the
    states of the shuffling, noise and dropout generators and of the
    convergence monitor and the learning-rate schedule. Unpickled in any
    process, ``set_params(warm_start=True).fit(X)`` runs the epochs the
    interrupted fit had left, with the same batches, noise and rates, and
    ends as that fit would have ended (on the CPU with ``n_threads`` fixed,
    bit-identical to a fit that was never interrupted). A fit killed in
    the middle of an epoch loses that epoch only.

    Until it is resumed, the unpickled estimator transforms with the weights
    of its last finished epoch (not the best ones of early stopping, which
    the end of the fit restores).

    Read more in the :ref:`User Guide <resuming>`.

    Parameters
    ----------
    path : str or os.PathLike
        File to write, replaced atomically at the end of each epoch.

    See Also
    --------
    skorch.callbacks.Checkpoint : Saves the module's parameters, the
        optimizer and the history of the best epochs, for skorch's own
        ``load_params``.

    Notes
    -----
    The file is a pickle: load only files you trust. Anything in the
    estimator's parameters (other callbacks included) must pickle.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer
    >>> from skae.callbacks import EstimatorCheckpoint
    >>> X = np.random.default_rng(0).random((64, 5), dtype=np.float32)
    >>> path = os.path.join(tempfile.mkdtemp(), "ae.pkl")
    >>> ae = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
    ...                             early_stopping=False, tol=0.0, random_state=0,
    ...                             callbacks=[EstimatorCheckpoint(path)]).fit(X)
    >>> with open(path, "rb") as file:  # what a new process finds after a crash
    ...     resumed = pickle.load(file)
    >>> resumed.n_iter_
    3
    >>> resumed = resumed.set_params(warm_start=True).fit(X)  # the epochs left: none
    >>> np.array_equal(resumed.transform(X), ae.transform(X))
    True
    """

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, net, **kwargs):
        call = getattr(self, "fit_call_", None)
        if call is None:
            raise TypeError(
                "EstimatorCheckpoint saves a skae estimator: pass it in the callbacks= "
                "of AutoencoderTransformer, DenoisingAutoencoder or VAETransformer, or "
                "use skorch.callbacks.Checkpoint with a plain skorch net."
            )
        estimator, start, stop = call
        snapshot = copy.copy(estimator)
        snapshot._set_training_results(net, warn=False)
        snapshot._structure = estimator._continued_settings()
        vars(snapshot).setdefault("_code_range", None)
        # What ``fit`` with warm_start reads to run the epochs left.
        snapshot._interrupted_fit = (start, stop)
        path = os.fspath(self.path)
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(os.path.abspath(path)),
                                         prefix=".checkpoint-", delete=False) as file:
            try:
                pickle.dump(snapshot, file, protocol=pickle.HIGHEST_PROTOCOL)
                file.flush()
                os.fsync(file.fileno())
            except BaseException:
                file.close()
                os.unlink(file.name)
                raise
        os.replace(file.name, path)

    def on_train_end(self, net, **kwargs):
        self.fit_call_ = None

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("fit_call_", None)
        return state
