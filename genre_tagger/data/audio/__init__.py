"""Audio: tracks -> mono, resampled, log-mel crops, without ever decoding a whole long file.

Item of one album: float32 ``[K, n_mels, F]``, K <= ``max_tracks * crops_per_track`` crops
of ``crop_seconds`` each (F = ``crop_samples // hop_length + 1`` frames, fixed). Batch:
``{"mels": [B, Kmax, n_mels, F], "crop_mask": [B, Kmax] bool, "present": [B] bool}``.

Crop policy (bounds time and memory per album, whatever the track lengths):

- At most ``max_tracks`` tracks per album are used; longer albums are a documented cap,
  not a silent loss: in evaluation the tracks are spread evenly over the album's list
  (deterministic), in training a random subset is drawn. A track that cannot be decoded
  is reported and the next unused track takes its place.
- Per track, ``min(crops_per_track, length // crop)`` crops (at least one). Evaluation:
  evenly spaced, deterministic, keeping ``EDGE_SECONDS`` away from both ends when the track
  is long enough (intros and fade-outs say little about genre). Training: uniform random
  starts (``torch`` RNG, so seeded DataLoader workers are reproducible and distinct).
- Only those segments are read: seek + read of ``crop`` frames each. Clips shorter than
  a crop are zero-padded at the end. Non-finite samples become 0 (with a warning; a crop
  of nothing but NaN/inf makes the track unusable); silence is fine.
- Truncated files (a cut-off download) are used as far as they decode, with a warning:
  when libsndfile's data ends (or breaks) clearly before the frame count its header
  announces, the crops are placed again within the part that decodes (at least
  ``_MIN_TRUNCATED_SECONDS``); an Ogg file whose last page is torn or not flagged
  end-of-stream is reported too (libsndfile would otherwise read it as a valid, shorter file).
- File problems are named before any decoder runs (``file_problem``): no such file, a
  folder, a pipe or device (never opened: it could block), an empty file, no permission.
- Downmix = mean over channels; resampling with ``torchaudio``'s windowed-sinc kernel, cached
  per source rate and applied without its zero taps (``resample``); ``MelSpectrogram``
  (power 2) built lazily, then ``log(mel + 1e-6)`` (natural log; digital silence is
  log(1e-6) ~ -13.8).

Modules: ``files`` (problems named before decoding), ``ogg`` (cut-off Ogg files),
``decoders`` (libsndfile and PyAV readers, with the measurements behind them),
``resample``, ``checks`` (``validate --deep``), ``crops`` (the crop policy), ``loader``
(``AudioLoader``).
"""

from genre_tagger.data.audio.checks import check_audio_file
from genre_tagger.data.audio.crops import EDGE_SECONDS, crop_starts, spread_indices, training_generator
from genre_tagger.data.audio.decoders import AudioDecodeError, decode_full, read_segment
from genre_tagger.data.audio.files import file_problem
from genre_tagger.data.audio.loader import LOG_EPS, AudioLoader

__all__ = ["AudioDecodeError", "AudioLoader", "EDGE_SECONDS", "LOG_EPS", "check_audio_file", "crop_starts",
           "decode_full", "file_problem", "read_segment", "spread_indices", "training_generator"]
