"""Feature modules keep their normalisation statistics in their checkpoints; the CRNN's
BiGRU equals a packed one, in one thread or two."""

import threading
import types

import pytest
import torch

from speechbrain_ext.features import FixedLengthLogMel
from speechbrain_ext.nnet.logmel_crnn import LogMelCRNN, encoder_frame_lengths


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


@pytest.mark.parametrize("threads", [1, 2])
def test_crnn_bigru_without_packing_equals_the_packed_bigru(threads, monkeypatch):
    """Outputs and gradients of LogMelCRNN's BiGRU equal the packed-sequence BiGRU's, with
    the two directions one after the other (one thread) and at once (two threads)."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    torch.manual_seed(0)
    enc = LogMelCRNN(dropout=0.0)
    x = torch.randn(4, 30, 256, requires_grad=True)
    steps = torch.tensor([30, 22, 9, 1])
    ours = enc._gru_layer(0, x, steps)
    layer0 = [name for name, _ in enc.rnn.rnn.named_parameters() if "_l0" in name]
    grads = torch.autograd.grad(ours.pow(2).sum(),
                                [x] + [getattr(enc.rnn.rnn, name) for name in layer0])
    one_layer = torch.nn.GRU(256, 160, bidirectional=True, batch_first=True)
    one_layer.load_state_dict({k: v for k, v in enc.rnn.rnn.state_dict().items() if "_l0" in k})
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, steps, batch_first=True,
                                                     enforce_sorted=False)
    reference, _ = torch.nn.utils.rnn.pad_packed_sequence(one_layer(packed)[0], batch_first=True,
                                                          total_length=30)
    reference_grads = torch.autograd.grad(reference.pow(2).sum(),
                                          [x] + [getattr(one_layer, name) for name in layer0])
    with torch.no_grad():  # inference runs the directions its own way
        assert torch.allclose(enc._gru_layer(0, x, steps), reference, atol=1e-5)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert ours[3, 1:].abs().max() == 0  # padded frames stay zero
    assert len(grads) == 9  # the input and the 8 weights and biases of the two directions
    for got, expected in zip(grads, reference_grads):
        assert torch.allclose(got, expected, atol=1e-4)
    # The weights are still SpeechBrain's GRU's: checkpoints of before load as they are.
    names = set(enc.state_dict())
    assert "rnn.rnn.weight_hh_l2_reverse" in names and not any("one_direction" in n for n in names)


@pytest.mark.parametrize("threads, runs_in", [(1, "MainThread"), (2, "bigru_direction")])
def test_crnn_runs_the_two_directions_in_their_own_threads_when_it_has_two(threads, runs_in,
                                                                           monkeypatch):
    """A CPU process with two or more threads runs the BiGRU's two directions at once,
    in training (forward and backward) and in inference; with one, in its own thread."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    seen = set()
    functional_call = torch.func.functional_call

    def recording_call(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return functional_call(*args, **kwargs)

    monkeypatch.setattr(torch.func, "functional_call", recording_call)
    grad = torch.autograd.grad  # what the two-thread backward differentiates each graph with

    def recording_grad(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", recording_grad)
    enc = LogMelCRNN()
    enc(torch.randn(2, 8000), torch.tensor([1.0, 0.6])).sum().backward()
    assert enc.rnn.rnn.weight_hh_l2_reverse.grad.abs().sum() > 0
    with torch.no_grad():
        enc(torch.randn(2, 8000), torch.tensor([1.0, 0.6]))
    assert seen and all(name.startswith(runs_in) for name in seen), seen


def test_crnn_draws_the_random_numbers_it_drew_with_one_gru_template_per_size():
    """The direction threads' extra GRU templates take no random numbers: a seeded run
    initialises what follows the encoder (the CTC head) and draws its dropout masks as
    before them. The numbers are what commit 493a369 (one template per size) gave."""
    torch.manual_seed(1993)
    LogMelCRNN()
    assert torch.rand(2).tolist() == pytest.approx([0.6027851700782776, 0.23382478952407837],
                                                   abs=1e-7)


@pytest.mark.parametrize("num_samples", [16000, 24000, 32080, 48000])
def test_crnn_frame_lengths_count_the_frames_it_computes(num_samples):
    """``round(length * frames)`` (SpeechBrain's count) of its relative frame lengths is
    the number of frames LogMelCRNN computes for each utterance (it zeroes the rest),
    where the relative wave lengths count one too many or too few for some."""
    torch.manual_seed(0)
    enc = LogMelCRNN(rnn_layers=1, dropout=0.0)
    enc(0.1 * torch.randn(2, 16000), torch.ones(2))  # normalisation statistics
    enc.eval()
    wav_lens = torch.linspace(0.25, 1.0, 13)
    with torch.no_grad():
        frames = enc(0.1 * torch.randn(13, num_samples), wav_lens)
    own = (frames.abs().sum(dim=-1) > 0).sum(dim=1)
    lens = encoder_frame_lengths(enc, wav_lens, num_samples)
    assert torch.equal(torch.round(lens * frames.shape[1]).long(), own)
    assert not torch.equal(torch.round(wav_lens * frames.shape[1]).long(), own)
    # A DistributedDataParallel wrapper keeps the encoder in ``module``; any other
    # encoder (wav2vec2) keeps SpeechBrain's convention, the wave's lengths.
    assert torch.equal(encoder_frame_lengths(types.SimpleNamespace(module=enc), wav_lens,
                                             num_samples), lens)
    assert encoder_frame_lengths(torch.nn.Identity(), wav_lens, num_samples) is wav_lens
