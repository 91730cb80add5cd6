"""Next-album recommendation from listening histories (CONTRACT §8).

``splits`` (leave-last-out), ``metrics`` (hit rate, NDCG, MRR over a full ranking),
``baselines`` (popularity, item-kNN), ``model`` (plain nn.Modules: album encoder over
frozen modality embeddings + id, SASRec-style history encoder), ``lit_module`` (the
LightningModule), ``catalog`` (album content from a tagger checkpoint's encoders),
``training`` / ``evaluation`` / ``ablation`` / ``commands`` (the CLI's commands).
"""
