"""`genre-tagger serve`: one process that serves a catalog as a web page and a JSON API.

A composition root, like ``cli.py`` and ``demo.py``: it reads what the other commands
wrote and uses the search and recommend jobs' public functions; no job imports it.

How a request flows::

    uvicorn -> SecurityHeaders -> TokenGate (--token) -> BodyLimit (uploads) -> FastAPI routes (app.py)
      routes are thin:  Catalog (catalog.py: DuckDB over the manifest + tag output)
                        Vectors (vectors.py: the search index, FAISS; the music map)
                        Tagger / Recommendations (models.py: the checkpoint, the recommender)
                        media files by album id and index (media.py), uploads (uploads.py)

Modules: ``server`` (open every input, bind, run uvicorn), ``commands`` (the CLI),
``synthetic`` (catalogs of any size for tests and the load benchmark); the page is
``templates/index.html`` + ``static/`` (plain HTML/JS/CSS, no build step, no CDN).
"""

from genre_tagger.lazy import lazy_exports

# Imported on first use: the CLI imports ``serve.commands`` for every command, and FastAPI,
# DuckDB and torch have no business slowing down `genre-tagger --help`.
_PUBLIC = {"AlbumFilter": "catalog", "Catalog": "catalog", "Served": "served", "create_app": "app",
           "open_served": "server"}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
