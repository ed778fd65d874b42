"""Sending like CleverTap: Meta template + parameters -> payload (build, params), the spec's
samples, freeform payloads, msgIds, where and how to reach the endpoint (endpoint), one send
and its verdict (messaging, judge)."""
