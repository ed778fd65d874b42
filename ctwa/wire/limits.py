"""CleverTap's upload limits (FACTS.md), in a module light enough for worker processes."""

MAX_RECORDS = 1000
MAX_IDENTITY = 120
MAX_KEY_BYTES = 120
MAX_VALUE_BYTES = 512
MAX_CUSTOM_KEYS = 256
IDENTITY_KEYS = ("identity", "objectId", "FBID", "GPID")
