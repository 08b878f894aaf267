"""SpeechBrain's statistics pooling, without its random noise at evaluation.

``speechbrain.nnet.pooling.StatisticsPooling`` adds uniform-like noise between 1e-5
and 9e-5 to every pooled mean, in training and evaluation alike. At evaluation that
makes two passes over the same batch differ (posteriors by about 1e-5), so a model's
predictions could not be reproduced exactly, by its own test stage or by its
exported inference interface (``speechbrain_ext.inference``). This subclass keeps
the noise where gradients are computed (training: the models train as before) and
pools exactly without them (``Brain.evaluate`` and inference run under
``torch.no_grad``). Gradients, not ``eval()``, decide: a YAML may hold the pooling
as a hyperparameter outside ``modules``, where ``Brain.eval()`` never reaches it.
"""

import torch
from speechbrain.nnet.pooling import StatisticsPooling


class DeterministicStatisticsPooling(StatisticsPooling):
    """``StatisticsPooling`` whose mean gets its noise only where gradients are computed.

    Arguments
    ---------
    return_mean : bool
        Return the mean over the valid frames.
    return_std : bool
        Return the standard deviation over the valid frames.

    Example
    -------
    >>> import torch
    >>> pooling = DeterministicStatisticsPooling(return_std=False)
    >>> frames = torch.tensor([[[1.0], [3.0], [0.0]]])
    >>> with torch.no_grad():
    ...     pooling(frames, torch.tensor([2 / 3]))
    tensor([[[2.]]])
    >>> bool(pooling(frames) == 4 / 3)  # with gradients: SpeechBrain's noise, as in training
    False
    """

    def _get_gauss_noise(self, shape_of_tensor, device="cpu"):
        if torch.is_grad_enabled():
            return super()._get_gauss_noise(shape_of_tensor, device=device)
        return torch.zeros(shape_of_tensor, device=device)
