"""One pydantic model per wire format in CleverTap's Generic WhatsApp contract.

Models describe the canonical form ctwa emits (ERRATA.md says which); the ``normalize_*``
readers beside them accept every published variant, rewrite it to the canonical form and report
each one as a warning that names the canonical spelling. The sender, the linter and the sandbox
all use these same models.
"""
