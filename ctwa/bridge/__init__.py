"""``ctwa bridge``: CleverTap's Generic WhatsApp endpoint in front of Meta's WhatsApp Cloud API."""
