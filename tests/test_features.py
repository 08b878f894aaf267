"""Feature modules keep their normalisation statistics in their checkpoints."""

import pytest
import torch

from speechbrain_ext.features import FixedLengthLogMel
from speechbrain_ext.nnet.logmel_crnn import LogMelCRNN


@pytest.mark.parametrize("cls", [FixedLengthLogMel, LogMelCRNN])
def test_normalisation_statistics_survive_a_state_dict_round_trip(cls):
    torch.manual_seed(0)
    trained = cls().train()
    trained(3 * torch.randn(4, 16000) + 1, torch.ones(4))  # running statistics updated
    reloaded = cls()
    reloaded.load_state_dict(trained.state_dict())
    assert reloaded.norm.count == trained.norm.count > 0
    x = torch.randn(1, 16000)

    def out(module):
        y = module.eval()(x, torch.ones(1))
        return y[0] if isinstance(y, tuple) else y

    # Without the statistics in the state_dict, a reloaded module cannot even normalise.
    assert torch.allclose(out(trained), out(reloaded))
