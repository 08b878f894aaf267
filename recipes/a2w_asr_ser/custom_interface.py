"""Inference interfaces of this recipe's models, for their exported folders.

``python -m speechbrain_ext.export <fold output_folder> <model folder>`` copies this
file (and the A2W word model) into the model folder; load it as upstream
SpeechBrain's emotion model is:

>>> from speechbrain.inference.interfaces import foreign_class  # doctest: +SKIP
>>> model = foreign_class(source="models/asr_ser", pymodule_file="custom_interface.py",
...                       classname="A2WASRSER")  # doctest: +SKIP
>>> transcript, emotion, posteriors = model.transcribe_and_classify_file("turn.wav")  # doctest: +SKIP

The rows with the A2W model (ASR-SER, and the pipelines on ASR transcripts) export
to :class:`A2WASRSER`: the decoder runs on its own beam-search hypotheses
(``test_search``), as in the test stage; the audio row exports to :class:`A2WAudioSER`.
The rows on the reference transcript read words a wav does not carry: they do not
export.
"""

import torch

from speechbrain_ext.inference import EmotionClassifier, JointASRSER
from speechbrain_ext.nnet.a2w import bos_sequences

__all__ = ["A2WASRSER", "A2WAudioSER"]


def stream_emotion(model, wavs, wav_lens):
    """``train.py``'s test forward without the losses: (emotion log-probs, transcripts
    or None)."""
    transcripts, vectors = None, []
    if "asr_encoder" in model.mods:
        feats, enc_lens = model.mods.asr_features(wavs, wav_lens)
        enc = model.mods.asr_encoder(feats, enc_lens)
        hyps, _, _, _ = model.hparams.test_search(enc, enc_lens)
        transcripts = [model.hparams.vocabulary.decode(h) for h in hyps]
    for stream in model.hparams.streams:
        if stream == "acoustic":
            x, x_lens = model.mods.ser_features(wavs, wav_lens)
        elif stream == "text":  # the frozen ASR's hypotheses, as words
            vocabulary = model.hparams.vocabulary
            ids = [torch.LongTensor(vocabulary.encode(text) or [vocabulary.unk_index])
                   for text in transcripts]  # an empty hypothesis reads as one <unk>
            tokens = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True).to(wavs.device)
            x_lens = torch.tensor([len(t) for t in ids], device=wavs.device) / tokens.shape[1]
            x = model.mods.word_embedding(tokens)
        else:  # decoder states s_l, driven by its own hypotheses
            hyp_bos, x_lens = bos_sequences(hyps, model.hparams.vocabulary.bos_index,
                                            device=enc.device)
            _, x = model.mods.asr_decoder(hyp_bos, enc, enc_lens)
        vectors.append(model.mods[f"{stream}_stream"](x, x_lens))
    logits = model.mods.emotion_classifier(torch.cat(vectors, dim=-1))
    return model.hparams.log_softmax(logits), transcripts


class A2WASRSER(JointASRSER):
    """ASR-SER (or a pipeline row): transcript and emotion from one A2W encoder pass."""

    HPARAMS_NEEDED = ["streams", "test_search", "vocabulary", "log_softmax", "label_encoder"]

    def forward_batch(self, wavs, wav_lens):
        return stream_emotion(self, wavs, wav_lens)


class A2WAudioSER(EmotionClassifier):
    """The audio row: log-mel -> attentive BiLSTM -> FC 2048 -> softmax."""

    MODULES_NEEDED = ["ser_features", "acoustic_stream", "emotion_classifier"]
    HPARAMS_NEEDED = ["streams", "log_softmax", "label_encoder"]

    def emotion_log_probs(self, wavs, wav_lens):
        return stream_emotion(self, wavs, wav_lens)[0]


def export_spec(train):
    """What ``speechbrain_ext.export`` keeps of a row's training YAML."""
    if "text" in train["streams"] and train["text_source"] == "reference":
        raise SystemExit("error: a row on the reference transcript (text_source: reference) "
                         "reads words a wav does not carry, so it does not export. Export "
                         "its pipeline row (text_source: asr) or asr_ser instead.")
    spec = {"modules": {name: name for name in train["modules"]},
            "hparams": ["streams", "log_softmax"]}
    if "asr_encoder" not in train["modules"]:
        return dict(spec, interface="A2WAudioSER")
    return dict(spec, interface="A2WASRSER", hparams=spec["hparams"] + ["test_search"],
                extra={"vocabulary": "!new:speechbrain_ext.words.WordVocabulary"},
                files={"vocabulary": "{pretrained_a2w_folder}/words.model"})


EXPORTS = {"train.py": export_spec}
