"""Album search: a joint album/text space fitted on a tagger's cached frozen-encoder
embeddings (closed-form regularised CCA by default), generated descriptions, a FAISS index,
the search commands and the search protocol (docs/metrics.md).

Modules: ``joint`` (the space), ``data`` (what it is fitted on, from a ``TaggerBundle``: the
album and text sides, the text view's vectors, the tagger's genre scores), ``text_view`` (the
space's own tf-idf view of texts), ``descriptions`` (generated text sources), ``fit`` (fitting,
``JointSettings``), ``cca`` / ``cca_fit`` (the closed form), ``combine`` (search vectors with
the tagger's genre scores), ``hook`` (what ``train`` stores in the checkpoint), ``payload`` (its
stored form and the upgrade of older ones), ``model`` (``SearchModel``, what the commands
load), ``protocol`` (the search metrics), ``evaluate`` (``evaluate-search`` and the baselines),
``index`` / ``query`` (``index`` and ``search``), ``faiss_index``, ``commands`` (argument
parsers), ``demo`` (the demo's section).
"""
