"""Inference interfaces of this recipe's three models, for their exported folders.

``python -m speechbrain_ext.export <fold output_folder> <model folder>`` copies this
file into the model folder; load it as upstream SpeechBrain's emotion model is:

>>> from speechbrain.inference.interfaces import foreign_class  # doctest: +SKIP
>>> model = foreign_class(source="models/joint", pymodule_file="custom_interface.py",
...                       classname="JointCTCTextFusion")  # doctest: +SKIP
>>> transcript, emotion, posteriors = model.transcribe_and_classify_file("turn.wav")  # doctest: +SKIP

``EXPORTS`` tells the exporter, for each training script, the interface class, the
inference name of each module with its key in the training YAML, and the
hyperparameters the class reads.
"""

import torch

from speechbrain_ext.inference import CTCTranscriber, EmotionClassifier, JointASRSER
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths

__all__ = ["JointCTCTextFusion", "EmotionClassifier", "CTCTranscriber"]


class JointCTCTextFusion(JointASRSER):
    """``train_joint.py``'s forward without the losses: one encoder pass gives the CTC
    transcript and, through the text encoder, the emotion (Bansal et al. 2023)."""

    MODULES_NEEDED = ["encoder", "ctc_head", "text_encoder", "acoustic_mlp",
                      "linguistic_mlp", "emotion_classifier"]
    HPARAMS_NEEDED = ["log_softmax", "ctc_decoder", "token_encoder", "token_pooling",
                      "mean_pooling", "label_encoder"]

    def forward_batch(self, wavs, wav_lens):
        frames = self.mods.encoder(wavs, wav_lens)
        frame_lens = encoder_frame_lengths(self.mods.encoder, wav_lens, wavs.shape[1])
        ctc_log_probs = self.hparams.log_softmax(self.mods.ctc_head(frames))
        transcripts = self.hparams.ctc_decoder(ctc_log_probs, frame_lens,
                                               self.hparams.token_encoder)
        tokens, token_states = self.mods.text_encoder(transcripts, return_tokens=True)
        linguistic = self.hparams.token_pooling(token_states, tokens["attention_mask"])
        acoustic = self.hparams.mean_pooling(frames, frame_lens).squeeze(1)
        fused = torch.cat([self.mods.acoustic_mlp(acoustic),
                           self.mods.linguistic_mlp(linguistic)], dim=-1)
        return self.hparams.log_softmax(self.mods.emotion_classifier(fused)), transcripts


CHARACTERS = {"token_encoder": "!apply:speechbrain_ext.ctc.character_encoder []"}

EXPORTS = {
    "train_joint.py": {
        "interface": "JointCTCTextFusion",
        "modules": {name: name for name in JointCTCTextFusion.MODULES_NEEDED},
        "hparams": ["log_softmax", "ctc_decoder", "token_pooling", "mean_pooling"],
        "extra": CHARACTERS,
    },
    "train_ser.py": {
        "interface": "EmotionClassifier",
        "modules": {"encoder": "encoder", "pooling": "mean_pooling", "classifier": "classifier"},
        "hparams": ["log_softmax"],
    },
    "train_asr.py": {
        "interface": "CTCTranscriber",
        "modules": {"encoder": "encoder", "ctc_head": "ctc_head"},
        "hparams": ["log_softmax", "ctc_decoder"],
        "extra": CHARACTERS,
    },
}
