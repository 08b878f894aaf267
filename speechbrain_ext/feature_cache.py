"""Per-utterance features computed once and kept on disk, so an epoch costs the model alone.

The cache folder is keyed by the extractor's settings (``extractor.settings``): other
settings, another folder. Each utterance's file is keyed by its wav's absolute
path, size and modification time, so a regenerated or edited corpus is never
served stale features. The extractor must provide ``utterance_features(wav)``
(e.g. ``speechbrain_ext.features.FixedLengthLogMel``); learned steps (normalisation)
stay in the model.

Example
-------
>>> import tempfile, torch, soundfile as sf
>>> from speechbrain_ext.features import FixedLengthLogMel
>>> folder = tempfile.mkdtemp()
>>> sf.write(f"{folder}/a.wav", 0.1 * torch.randn(16000).numpy(), 16000)
>>> cache = FeatureCache(f"{folder}/cache", FixedLengthLogMel(max_frames=400, deltas=False))
>>> first = cache(f"{folder}/a.wav")
>>> first.shape, cache.misses, torch.equal(cache(f"{folder}/a.wav"), first), cache.hits
(torch.Size([101, 40]), 1, True, 1)
"""

import hashlib
import json
import os

import torch

from speechbrain_ext.audio import read_audio
from speechbrain_ext.files import atomic_open, write_json_atomic


class FeatureCache:
    """Callable ``wav path -> raw features``, computing each utterance once.

    Arguments
    ---------
    folder : str
        Root of the cache; the features live in ``folder/<settings hash>/``.
    extractor : torch.nn.Module
        Has ``settings`` (a JSON-able dict) and ``utterance_features(wav)``.
    """

    def __init__(self, folder, extractor):
        self.extractor = extractor
        settings = dict(extractor.settings, extractor=type(extractor).__name__)
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        self.folder = os.path.join(folder, key)
        os.makedirs(self.folder, exist_ok=True)
        # Folds running at once share the cache: never a half-written file.
        write_json_atomic(os.path.join(self.folder, "settings.json"), settings, indent=2,
                          sort_keys=True)
        self.hits = self.misses = 0

    def path_for(self, wav_path):
        stat = os.stat(wav_path)
        name = hashlib.sha1(f"{os.path.abspath(wav_path)}|{stat.st_size}|{stat.st_mtime_ns}"
                            .encode()).hexdigest()[:24]
        return os.path.join(self.folder, name[:2], name + ".pt")

    def __call__(self, wav_path):
        path = self.path_for(wav_path)
        if os.path.exists(path):
            self.hits += 1
            return torch.load(path)
        self.misses += 1
        with torch.no_grad():
            feats = self.extractor.utterance_features(read_audio(wav_path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_open(path, "wb") as f:  # a killed run leaves no half-written file
            torch.save(feats.clone(), f)
        return feats
