"""``GET /metrics``: the bridge's Prometheus metrics, one registry per running bridge."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("ctwa_bridge_messages_accepted", "payloads CleverTap sent "
                                "that were queued (validation answered, not counted)",
                                ["kind"], registry=r)
        self.refused = Counter("ctwa_bridge_messages_refused", "payloads answered with a "
                               "failure, by CleverTap's messaging code", ["code"], registry=r)
        self.answer_seconds = Histogram(
            "ctwa_bridge_answer_seconds", "time to answer CleverTap's POST /messages",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5), registry=r)
        self.sends = Counter("ctwa_bridge_sends", "requests sent to Meta's /messages "
                             "(rate() of it is sends/s)", registry=r)
        self.meta_answers = Counter("ctwa_bridge_meta_answers", "Meta's answers to sends, by "
                                    "HTTP status and Meta error code (0: none)",
                                    ["http", "code"], registry=r)
        self.send_outcomes = Counter("ctwa_bridge_send_outcomes", "sends finished, by "
                                     "outcome", ["outcome"], registry=r)
        self.outbox = Gauge("ctwa_bridge_outbox_depth", "rows not yet finished, by queue",
                            ["queue"], registry=r)
        self.callbacks = Counter("ctwa_bridge_callbacks_delivered", "callbacks CleverTap "
                                 "took, by route", ["route"], registry=r)
        self.callback_failures = Counter("ctwa_bridge_callback_failures", "callback "
                                         "deliveries CleverTap did not take (retried)",
                                         ["route"], registry=r)
        self.callback_lag = Histogram(
            "ctwa_bridge_callback_lag_seconds", "from the callback's enqueue to CleverTap's "
            "2xx", buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0),
            registry=r)
        self.webhooks = Counter("ctwa_bridge_webhooks_stored", "signed webhooks stored",
                                registry=r)
        self.signature_failures = Counter("ctwa_bridge_webhook_signature_failures",
                                          "webhook POSTs refused for a missing or wrong "
                                          "X-Hub-Signature-256", registry=r)
        self.skipped = Counter("ctwa_bridge_webhook_items_skipped", "webhook statuses and "
                               "messages with no CleverTap callback", registry=r)
        self.in_doubt = Gauge("ctwa_bridge_sends_in_doubt", "sends in flight when a bridge "
                              "died, waiting for a status from Meta (the crash rule)",
                              registry=r)
        self.in_doubt_settled = Counter("ctwa_bridge_in_doubt_settled", "sends in doubt "
                                        "after a crash that a status from Meta showed were "
                                        "sent", registry=r)
        self.late_statuses = Counter("ctwa_bridge_late_statuses", "Meta statuses for a "
                                     "message the bridge had already failed (recorded, not "
                                     "forwarded to CleverTap)", ["status"], registry=r)
        self.clicks = Counter("ctwa_bridge_clicks", "tracked URL button taps", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
