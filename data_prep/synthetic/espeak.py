"""Speech synthesis with eSpeak NG, loaded through the ``espeakng-loader`` wheel.

The wheel ships the shared library and its voice data, so no system package is
needed. eSpeak NG synthesises at 22.05 kHz; :meth:`ESpeak.synth` resamples to the
rate asked for (16 kHz for every corpus of this project).

Example
-------
>>> tts = ESpeak()
>>> wav = tts.synth("hello world", voice="en+m3")
>>> wav.dtype, wav.ndim, 0.3 < len(wav) / 16000 < 3.0
(dtype('float32'), 1, True)
"""

import ctypes

import numpy as np

# espeak_PARAMETER ids and constants of speak_lib.h
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_AUTO = 0
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_INSTANCE = None  # eSpeak NG keeps global state: one instance per process


class ESpeak:
    """Thin ctypes wrapper around eSpeak NG's synchronous synthesis API."""

    def __new__(cls):
        global _INSTANCE
        if _INSTANCE is None:
            _INSTANCE = super().__new__(cls)
            _INSTANCE._load()
        return _INSTANCE

    def _load(self):
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path().encode()
        self.native_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0
        )
        if self.native_rate <= 0:
            raise RuntimeError("espeak_Initialize failed (espeakng-loader data?)")
        self._chunks = []

        def _collect(wav, n_samples, events):
            if n_samples > 0 and wav:
                self._chunks.append(
                    np.ctypeslib.as_array(wav, shape=(n_samples,)).copy()
                )
            return 0  # 0 = continue synthesis

        # Keep a reference: ctypes does not, and a collected callback crashes.
        self._callback = _SYNTH_CALLBACK(_collect)
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    def synth(self, text, voice="en+m3", rate=175, volume=100, pitch=50,
              pitch_range=50, sample_rate=16000):
        """Synthesise ``text``; returns float32 samples in [-1, 1].

        Arguments
        ---------
        text : str
            What to say; '!' and '?' change the clause intonation.
        voice : str
            eSpeak NG voice and variant, e.g. ``en+f2``.
        rate : float
            Words per minute (80-450).
        volume : float
            Amplitude, 0-200 (100 = default).
        pitch, pitch_range : float
            Base pitch and pitch range, 0-100.
        sample_rate : int
            Output rate; the native 22.05 kHz signal is resampled.
        """
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak NG voice: {voice}")
        for pid, val in ((_RATE, rate), (_VOLUME, volume), (_PITCH, pitch),
                         (_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(pid, int(round(val)), 0)
        self._chunks = []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ret = self.lib.espeak_Synth(buf, len(buf), 0, 0, 0, _ESPEAK_CHARS_AUTO,
                                    None, None)
        if ret != 0:
            raise RuntimeError(f"espeak_Synth returned {ret} for {text!r}")
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        wav = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        if sample_rate != self.native_rate:
            # Imported here (0.9 s): the process that starts the corpus writers never resamples.
            from scipy.signal import resample_poly

            wav = resample_poly(wav, sample_rate, self.native_rate)
        return wav.astype(np.float32)
