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


def test_crnn_bigru_without_packing_equals_the_packed_bigru():
    """Outputs and gradients of LogMelCRNN's BiGRU equal the packed-sequence BiGRU's."""
    torch.manual_seed(0)
    enc = LogMelCRNN(dropout=0.0)
    x = torch.randn(4, 30, 256, requires_grad=True)
    steps = torch.tensor([30, 22, 9, 1])
    ours = enc._gru_layer(0, x, steps)
    grads = torch.autograd.grad(ours.pow(2).sum(), [x, enc.rnn.rnn.weight_hh_l0_reverse])
    one_layer = torch.nn.GRU(256, 160, bidirectional=True, batch_first=True)
    one_layer.load_state_dict({k: v for k, v in enc.rnn.rnn.state_dict().items() if "_l0" in k})
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, steps, batch_first=True,
                                                     enforce_sorted=False)
    reference, _ = torch.nn.utils.rnn.pad_packed_sequence(one_layer(packed)[0], batch_first=True,
                                                          total_length=30)
    reference_grads = torch.autograd.grad(reference.pow(2).sum(),
                                          [x, one_layer.weight_hh_l0_reverse])
    assert torch.allclose(ours, reference, atol=1e-5)
    assert ours[3, 1:].abs().max() == 0  # padded frames stay zero
    for got, expected in zip(grads, reference_grads):
        assert torch.allclose(got, expected, atol=1e-4)
    # The weights are still SpeechBrain's GRU's: checkpoints of before load as they are.
    names = set(enc.state_dict())
    assert "rnn.rnn.weight_hh_l2_reverse" in names and not any("one_direction" in n for n in names)
