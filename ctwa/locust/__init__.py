"""ctwa's load scenario on Locust's distributed master and workers.

``scenario.py`` (the exported file's format) never imports Locust; ``user.py`` is imported
only by a generated locustfile, inside Locust (which monkey-patches the standard library with
gevent the moment it is imported: no ctwa command may import it)."""
