"""Run reports: one summary per long run (kept in the store), rendered as an offline HTML page
with charts, as JUnit XML for CI, and compared between runs (``ctwa report diff``)."""
