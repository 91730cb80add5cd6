"""Album search (issue 12): a joint album/text space trained contrastively on cached
frozen-encoder embeddings, generated descriptions, a FAISS index, the search commands and
the evaluation protocol of CONTRACT §7.

Modules: ``joint`` (the space and its loss), ``descriptions`` (text sources), ``fit``
(training on embeddings), ``hook`` (what ``train`` stores in the checkpoint), ``features``
(embeddings of records with a tagger bundle), ``protocol`` (the §7 metrics), ``evaluate``
(``evaluate-search`` and the baselines), ``index`` / ``query`` (``index`` and ``search``),
``commands`` (argument parsers), ``demo`` (the demo's section).
"""
