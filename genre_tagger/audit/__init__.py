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

from genre_tagger.lazy import lazy_exports

# Lazy: the CLI's parser imports ``audit.commands``, and torch has no business there.
__all__ = ["audit_catalog"]
__getattr__ = lazy_exports(__name__, {"audit_catalog": "run"})
