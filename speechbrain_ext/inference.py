"""Inference interfaces of the exported models, in SpeechBrain's ``Pretrained`` style.

A finished fold becomes a model folder with ``python -m speechbrain_ext.export``
(``hyperparams.yaml``, checkpoints, ``label_encoder.txt``, model card,
``custom_interface.py``). It loads as any SpeechBrain model does::

    EmotionClassifier.from_hparams(source="models/cornn")            # emotion only
    foreign_class(source="models/joint", pymodule_file="custom_interface.py",
                  classname="JointCTCTextFusion")                     # transcript + emotion

The classes here hold what every recipe shares: reading audio of any rate and
channel count, the checks on it, batching, and the return values SpeechBrain users
know (``EncoderClassifier.classify_batch``: log-posteriors, best score, index,
label). A joint model's forward (how its transcript reaches its SER head) is its
recipe's: the recipe's ``custom_interface.py`` subclasses :class:`JointASRSER` and
writes ``forward_batch``; the shared encoder runs once for both tasks.

Example
-------
>>> import torch
>>> wavs, lens = pad_waveforms([torch.ones(16000), torch.ones(8000)])
>>> wavs.shape, lens.tolist()
(torch.Size([2, 16000]), [1.0, 0.5])
"""

import os

import torch
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.data_utils import batch_pad_right

from speechbrain_ext.audio import SAMPLE_RATE, AudioReadError, read_audio
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths

# Shorter audio has fewer than 10 frames of 10 ms for the log-mel front ends (the
# CRNN stand-in then keeps 3 frames after subsampling): not an utterance.
MIN_DURATION = 0.1


def pad_waveforms(wavs):
    """Zero-pad 1-D waveforms to a batch, with SpeechBrain's relative lengths (its
    ``batch_pad_right``, as the training data loaders pad).

    Arguments
    ---------
    wavs : list of torch.Tensor
        ``(samples,)`` each.

    Returns
    -------
    torch.Tensor, torch.Tensor
        ``(batch, max_samples)`` and ``(batch,)`` lengths relative to the longest.
    """
    return batch_pad_right([wav.float() for wav in wavs])


def label_encoder(labels):
    """A ``CategoricalEncoder`` with ``labels`` at indices 0, 1, ... (exported YAMLs).

    Arguments
    ---------
    labels : list of str
        In index order.

    Returns
    -------
    speechbrain.dataio.encoder.CategoricalEncoder

    Example
    -------
    >>> label_encoder(["ang", "hap"]).decode_ndim([1, 0])
    ['hap', 'ang']
    """
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(labels)  # indices in order of first appearance
    encoder.expect_len(len(labels))
    return encoder


class AudioInterface(Pretrained):
    """Reads files for a model trained on 16 kHz mono: any rate, any channel count.

    Arguments
    ---------
    *args, **kwargs
        Those of ``speechbrain.inference.interfaces.Pretrained``. The hparams may set
        ``min_duration`` (seconds; default :data:`MIN_DURATION`).
    """

    def load_audio(self, path, savedir=None):
        """One file as a mono 16 kHz tensor; :class:`AudioReadError` names what is wrong.

        Arguments
        ---------
        path : str
            Audio file (any format libsndfile reads).
        savedir : None
            Unused; kept for ``Pretrained.load_audio``'s signature.

        Returns
        -------
        torch.Tensor
            ``(samples,)``.
        """
        if not os.path.isfile(path):
            raise AudioReadError(f"audio file not found: {path}")
        wav = read_audio(path, getattr(self.hparams, "sample_rate", SAMPLE_RATE))
        min_duration = getattr(self.hparams, "min_duration", MIN_DURATION)
        duration = len(wav) / getattr(self.hparams, "sample_rate", SAMPLE_RATE)
        if duration < min_duration:
            raise AudioReadError(f"audio file {path} is too short: {duration:.3f} s "
                                 f"(the model needs at least {min_duration} s)")
        return wav

    def load_batch(self, paths):
        """Files -> padded batch on the model's device and relative lengths."""
        wavs, lens = pad_waveforms([self.load_audio(p) for p in paths])
        return wavs.to(self.device), lens.to(self.device)


class EmotionClassifier(AudioInterface):
    """Utterance emotion: (features) -> encoder -> pooling -> classifier -> log-softmax.

    The interface of the SER recipes whose forward is this chain (the YAML names the
    modules): ``features(wavs, lens) -> (feats, feat_lens)`` when the model has a
    ``features`` module, then ``encoder(feats)``; without one ``encoder(wavs, lens)``
    (a waveform encoder: wav2vec2, the CRNN stand-in). Returns what
    ``speechbrain.inference.classifiers.EncoderClassifier`` returns.

    Arguments
    ---------
    *args, **kwargs
        Those of ``Pretrained``: modules ``encoder``, ``pooling``, ``classifier``
        (and optionally ``features``); hparams ``log_softmax`` and ``label_encoder``.

    Example
    -------
    >>> import torch
    >>> from speechbrain.nnet.linear import Linear
    >>> from speechbrain.nnet.activations import Softmax
    >>> from speechbrain.nnet.pooling import StatisticsPooling
    >>> class Frames(torch.nn.Module):  # a stand-in waveform encoder: 160-sample frames
    ...     def forward(self, wavs, lens):
    ...         return wavs[:, : wavs.shape[1] // 160 * 160].reshape(len(wavs), -1, 160)
    >>> labels = label_encoder(["ang", "hap", "neu", "sad"])
    >>> model = EmotionClassifier(
    ...     modules={"encoder": Frames(), "pooling": StatisticsPooling(return_std=False),
    ...              "classifier": Linear(input_size=160, n_neurons=4)},
    ...     hparams={"log_softmax": Softmax(apply_log=True), "label_encoder": labels})
    >>> log_probs, score, index, label = model.classify_batch(torch.randn(2, 16000))
    >>> log_probs.shape, len(label)
    (torch.Size([2, 4]), 2)
    """

    MODULES_NEEDED = ["encoder", "pooling", "classifier"]
    HPARAMS_NEEDED = ["log_softmax", "label_encoder"]

    def emotion_log_probs(self, wavs, wav_lens):
        """``(batch, n_emotions)`` log-posteriors of a padded batch."""
        if "features" in self.mods:
            feats, feat_lens = self.mods.features(wavs, wav_lens)
            frames = self.mods.encoder(feats)
        else:
            frames = self.mods.encoder(wavs, wav_lens)
            feat_lens = encoder_frame_lengths(self.mods.encoder, wav_lens, wavs.shape[1])
        pooled = self.mods.pooling(frames, feat_lens).squeeze(1)
        scores = self.mods.classifier(pooled).flatten(1)  # ECAPA's: (batch, 1, n)
        return self.hparams.log_softmax(scores)

    def classify_batch(self, wavs, wav_lens=None):
        """Emotion of each waveform of a batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``(batch, samples)`` at 16 kHz.
        wav_lens : torch.Tensor, optional
            Relative lengths (1.0 for the longest); all 1.0 when omitted.

        Returns
        -------
        out_prob : torch.Tensor
            Log-posteriors ``(batch, n_emotions)``, label-encoder order.
        score : torch.Tensor
            The best log-posterior ``(batch,)``.
        index : torch.Tensor
            Its class index ``(batch,)``.
        text_lab : list of str
            Its label.
        """
        wavs, wav_lens = self._prepared(wavs, wav_lens)
        with torch.no_grad():
            out_prob = self.emotion_log_probs(wavs, wav_lens)
        return self._decision(out_prob)

    def classify_file(self, path):
        """:meth:`classify_batch` of one audio file (any rate and channel count)."""
        return self.classify_batch(*self.load_batch([path]))

    def posteriors(self, log_probs):
        """``{label: probability}`` of one utterance's log-posteriors."""
        encoder = self.hparams.label_encoder
        return {encoder.ind2lab[i]: float(p) for i, p in enumerate(log_probs.exp())}

    def _prepared(self, wavs, wav_lens):
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        return wavs.float().to(self.device), wav_lens.float().to(self.device)

    def _decision(self, out_prob):
        score, index = torch.max(out_prob, dim=-1)
        return out_prob, score, index, self.hparams.label_encoder.decode_torch(index)


class JointASRSER(EmotionClassifier):
    """Transcript and emotion from one pass of a shared encoder.

    A recipe subclasses it (its ``custom_interface.py``) and writes
    :meth:`forward_batch`, its training forward without the losses; the transcript
    its SER head reads is always the model's own hypothesis, as in the recipes'
    evaluation.

    Arguments
    ---------
    *args, **kwargs
        Those of ``Pretrained``: the recipe's modules; hparams ``label_encoder``
        and what the subclass reads.
    """

    MODULES_NEEDED = []
    HPARAMS_NEEDED = ["label_encoder"]

    def forward_batch(self, wavs, wav_lens):
        """``(emotion log-posteriors (batch, n_emotions), transcripts)``: one pass."""
        raise NotImplementedError

    def transcribe_batch(self, wavs, wav_lens=None):
        """Transcripts of a batch (a joint model computes its SER head too: one pass)."""
        return self.transcribe_and_classify_batch(wavs, wav_lens)[0]

    def transcribe_file(self, path):
        """Transcript of one audio file."""
        return self.transcribe_batch(*self.load_batch([path]))[0]

    def emotion_log_probs(self, wavs, wav_lens):
        return self.forward_batch(wavs, wav_lens)[0]

    def transcribe_and_classify_batch(self, wavs, wav_lens=None):
        """Transcripts and emotions of a batch from one forward pass.

        Arguments
        ---------
        wavs : torch.Tensor
            ``(batch, samples)`` at 16 kHz.
        wav_lens : torch.Tensor, optional
            Relative lengths; all 1.0 when omitted.

        Returns
        -------
        transcripts : list of str
        emotion : tuple
            ``(out_prob, score, index, text_lab)`` as :meth:`classify_batch`.
        """
        wavs, wav_lens = self._prepared(wavs, wav_lens)
        with torch.no_grad():
            out_prob, transcripts = self.forward_batch(wavs, wav_lens)
        return transcripts, self._decision(out_prob)

    def transcribe_and_classify_file(self, path):
        """Transcript and emotion of one audio file: ``(transcript, emotion label,
        {label: posterior})``."""
        transcripts, (out_prob, _, _, labels) = self.transcribe_and_classify_batch(
            *self.load_batch([path]))
        return transcripts[0], labels[0], self.posteriors(out_prob[0])


class CTCTranscriber(AudioInterface):
    """A CTC ASR model: encoder -> CTC head -> log-softmax -> decoder.

    Arguments
    ---------
    *args, **kwargs
        Those of ``Pretrained``: modules ``encoder`` (called with wavs and lengths)
        and ``ctc_head``; hparams ``log_softmax``, ``ctc_decoder`` (log-probs,
        lengths, token encoder -> list of str) and ``token_encoder``.
    """

    MODULES_NEEDED = ["encoder", "ctc_head"]
    HPARAMS_NEEDED = ["log_softmax", "ctc_decoder", "token_encoder"]

    def transcribe_batch(self, wavs, wav_lens=None):
        """Transcripts (list of str) of a ``(batch, samples)`` 16 kHz batch."""
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wavs, wav_lens = wavs.float().to(self.device), wav_lens.float().to(self.device)
        with torch.no_grad():
            frames = self.mods.encoder(wavs, wav_lens)
            log_probs = self.hparams.log_softmax(self.mods.ctc_head(frames))
        frame_lens = encoder_frame_lengths(self.mods.encoder, wav_lens, wavs.shape[1])
        return self.hparams.ctc_decoder(log_probs, frame_lens, self.hparams.token_encoder)

    def transcribe_file(self, path):
        """Transcript of one audio file."""
        return self.transcribe_batch(*self.load_batch([path]))[0]
