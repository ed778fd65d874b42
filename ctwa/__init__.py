"""ctwa: the operations tool for CleverTap's Generic WhatsApp integration.

The package is a library first, a package per capability: sending (:mod:`ctwa.send`), the
template library (:mod:`ctwa.templates`), uploads, callbacks, load and the sandbox; beside them
the payload models (:mod:`ctwa.wire`), the one HTTP module (:mod:`ctwa.http`) and what they all
lean on (:mod:`ctwa.infra`: errors, profiles, secrets, masking). The Typer command line in
:mod:`ctwa.cli` is a thin layer on top and nothing imports it.
"""

__version__ = "0.1.0"
