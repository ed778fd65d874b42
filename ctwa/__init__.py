"""ctwa: the operations tool for CleverTap's Generic WhatsApp integration.

The package is a library first: the payload models live in :mod:`ctwa.wire`, the one HTTP
module in :mod:`ctwa.http`, profiles and secrets in :mod:`ctwa.config` and :mod:`ctwa.secrets`.
The Typer command line in :mod:`ctwa.cli` is a thin layer on top and nothing imports it.
"""

__version__ = "0.1.0"
