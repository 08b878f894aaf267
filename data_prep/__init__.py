"""Data preparation: IEMOCAP, MUSAN and LibriSpeech manifests, and synthetic stand-ins."""
