"""Callbacks: YAML fixtures of DLR and inbound callbacks, replaying them, and a strict
listener that checks callbacks against the contract and keeps campaign-like stats."""
