"""Next-album recommendation from listening histories (docs/metrics.md).

``interactions`` (a manifest's albums and its events, split leave-last-out by ``splits``),
``metrics`` (hit rate, NDCG, MRR over a full ranking), ``baselines`` (popularity,
item-kNN), ``model`` (plain nn.Modules: album encoder over the tagger's genre scores and/or
frozen modality embeddings + id, SASRec-style history encoder, genre taste),
``lit_module`` (the LightningModule), ``catalog`` (album content through the loaded
tagger, ``genre_tagger.bundle.TaggerBundle``), ``store`` (``recommender.ckpt``),
``fitting`` (one model trained with the core's Trainers), ``training`` / ``evaluation``
/ ``serving`` / ``ablation`` (the commands' work), ``commands`` (the CLI's parsers).
"""
