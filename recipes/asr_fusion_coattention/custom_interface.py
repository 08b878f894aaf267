"""Inference interfaces of this recipe's models, for their exported folders.

``python -m speechbrain_ext.export <fold output_folder> <model folder>`` copies this
file into the model folder; load it as upstream SpeechBrain's emotion model is:

>>> from speechbrain.inference.interfaces import foreign_class  # doctest: +SKIP
>>> model = foreign_class(source="models/full_hierarchical", pymodule_file="custom_interface.py",
...                       classname="FusionASRSER")  # doctest: +SKIP
>>> transcript, emotion, posteriors = model.transcribe_and_classify_file("turn.wav")  # doctest: +SKIP

The rows with an ASR encoder (the ASR-SER models) export to :class:`FusionASRSER`:
one pass of the encoder gives its CTC transcript, its hidden states and, fused with
the MFCC stream, the emotion. The acoustic-only row exports to :class:`FusionSER`.
The ground-truth rows (``text_source: reference``) read a reference transcript,
which a wav does not carry: they do not export.
"""

from speechbrain_ext.inference import EmotionClassifier, JointASRSER
from speechbrain_ext.nnet.hidden_layers import select_hidden_layer
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths

__all__ = ["FusionASRSER", "FusionSER"]


def fused_emotion(model, wavs, wav_lens):
    """``train.py``'s forward without the losses: (emotion log-probs, transcripts or None)."""
    hiddens, transcripts, frame_lens = None, None, wav_lens
    if "asr_encoder" in model.mods:
        hiddens = model.mods.asr_encoder(wavs, wav_lens)  # every layer's output
        frame_lens = encoder_frame_lengths(model.mods.asr_encoder, wav_lens, wavs.shape[1])
        ctc_log_probs = model.hparams.log_softmax(model.mods.ctc_head(hiddens[-1]))
        transcripts = model.hparams.ctc_decoder(ctc_log_probs, frame_lens,
                                                model.hparams.token_encoder)
    states, state_lens = [], []
    for stream in model.hparams.streams:
        if stream == "acoustic":
            x, x_lens = model.mods.acoustic_features(wavs, wav_lens)
        elif stream == "hidden":
            x, x_lens = select_hidden_layer(hiddens, model.hparams.hidden_layer), frame_lens
        else:
            tokens, x = model.mods.text_encoder(transcripts, return_tokens=True)
            mask = tokens["attention_mask"]
            x_lens = mask.sum(dim=1).float() / mask.shape[1]
        states.append(model.mods[f"{stream}_stream"](x, x_lens))
        state_lens.append(x_lens)
    fused = model.mods.fusion(states, state_lens)
    return model.hparams.log_softmax(model.mods.emotion_classifier(fused)), transcripts


class FusionASRSER(JointASRSER):
    """An ASR-SER row: transcript and emotion from one pass of the ASR encoder."""

    HPARAMS_NEEDED = ["streams", "hidden_layer", "log_softmax", "ctc_decoder", "token_encoder",
                      "label_encoder"]

    def forward_batch(self, wavs, wav_lens):
        return fused_emotion(self, wavs, wav_lens)


class FusionSER(EmotionClassifier):
    """The acoustic-only row: MFCC stream -> fusion -> classifier."""

    MODULES_NEEDED = ["acoustic_features", "acoustic_stream", "fusion", "emotion_classifier"]
    HPARAMS_NEEDED = ["streams", "log_softmax", "label_encoder"]

    def emotion_log_probs(self, wavs, wav_lens):
        return fused_emotion(self, wavs, wav_lens)[0]


def export_spec(train):
    """What ``speechbrain_ext.export`` keeps of a row's training YAML."""
    if train["text_source"] == "reference" and "text" in train["streams"]:
        raise SystemExit("error: a ground-truth row (text_source: reference) reads the "
                         "reference transcript: it cannot run on audio alone, so it does not "
                         "export. Export an ASR-SER row (text_source: asr) instead.")
    spec = {"modules": {name: name for name in train["modules"]},
            "hparams": [k for k in ("streams", "hidden_layer", "log_softmax") if k in train]}
    if "asr_encoder" in train["modules"]:
        return dict(spec, interface="FusionASRSER", hparams=spec["hparams"] + ["ctc_decoder"],
                    extra={"token_encoder": "!apply:speechbrain_ext.ctc.character_encoder []"})
    return dict(spec, interface="FusionSER")


EXPORTS = {"train.py": export_spec}
