"""Run plumbing every job imports: which process speaks (rank 0), run folders, the
embedding-cache folder, device choice, and Lightning Trainers with best weights.

Modules: ``ranks`` (``is_global_zero``, ``say``), ``folders`` (run and cache folders),
``devices`` (``pick_device``, ``lightning_accelerator``), ``trainers`` (``TrainerFactory``,
``BestWeights``, ``fit``, ``quiet_lightning``).
"""

from genre_tagger.runs.devices import lightning_accelerator, pick_device
from genre_tagger.runs.folders import RUN_ENV, default_cache_dir, prepare_run_dir, release_run_dir
from genre_tagger.runs.ranks import is_global_zero, say

__all__ = ["RUN_ENV", "default_cache_dir", "is_global_zero", "lightning_accelerator", "pick_device",
           "prepare_run_dir", "release_run_dir", "say"]
