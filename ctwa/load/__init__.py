"""Load mode: campaign-like concurrency against a messaging endpoint, measured honestly."""
