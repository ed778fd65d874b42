"""The local store: one SQLite database every ctwa process shares, holding what was sent,
what came back (callbacks) and each run's summary, so a message can be followed end to end."""
