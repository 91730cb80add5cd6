"""The catalog audit (`genre-tagger audit`): where a catalog's labels and inputs need a person.

From a trained tagger and a manifest, on the tagger's cached embeddings (no encoder is
retrained): a queue of (album, label) pairs whose recorded state the evidence contradicts,
scored by heads that never saw those albums' labels; the albums whose missing or broken
modality would help most if added; how reliable each genre's tags are and which modality
carries it; a report in Markdown and self-contained HTML (docs/audit.md).

Modules: ``catalog`` (what the audit reads: tagger, albums, embeddings, targets), ``folds``
(out-of-fold heads), ``review`` (the label review queue), ``fill`` (fill priorities),
``genres`` (per-genre reliability), ``result`` / ``report`` / ``html`` / ``charts`` (the
reports), ``run`` (``audit_catalog``: the command), ``commands`` (its parser).
"""

import importlib

_EXPORTS = {"audit_catalog": "run"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so that the CLI's parser (which imports ``audit.commands``) does not import torch.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
