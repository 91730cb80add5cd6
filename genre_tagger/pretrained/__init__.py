"""Pretrained models whose weights install from PyPI: musicnn (TensorFlow checkpoints read
without TensorFlow), for zero-shot tagging and as the audio encoder."""
