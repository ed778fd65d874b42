"""The round trip: every message sent matched with the callbacks it caused, from the store."""
