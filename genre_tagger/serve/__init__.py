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

from genre_tagger.serve.app import Served, create_app
from genre_tagger.serve.catalog import AlbumFilter, Catalog
from genre_tagger.serve.server import open_served

__all__ = ["AlbumFilter", "Catalog", "Served", "create_app", "open_served"]
