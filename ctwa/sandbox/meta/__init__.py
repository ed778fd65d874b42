"""A strict mock of Meta's WhatsApp Cloud API, mounted at ``/meta`` in ``ctwa sandbox``.

Routes (``{v}`` is any Graph version, ``v21.0`` by default):

    POST /meta/{v}/{phone-number-id}/messages         send (Bearer token)
    GET  /meta/{v}/{waba-id}/message_templates        the mock's templates, Meta's paging
    GET  /meta/{v}/{media-id}                         a media object's url, mime_type, ...
    GET  /meta/media-download/{media-id}              its bytes (Bearer token)
    GET  /meta/{v}/{phone-number-id}                  the number (a cheap health check)
    GET  /meta/stats                                  the counters below, as JSON

What it does, and the Meta page each behaviour follows (developers.facebook.com/docs/whatsapp):

- Sends (cloud-api/reference/messages, cloud-api/guides/send-message-templates): the token is
  checked (``190``, HTTP 401); the body is validated with :mod:`ctwa.wire.cloudapi`'s model, as
  strictly as the Graph API (``100`` unexpected key / bad value, ``131008`` missing parameter,
  ``131009`` bad value); templates are checked against the mock's own (the sandbox's
  Meta-format templates): ``132001`` unknown name+language or not approved, ``132015`` paused,
  ``132016`` disabled, ``132000`` parameter counts, ``132012`` parameter kinds or names;
  throughput above ``mps`` -> ``130429`` (token bucket, cloud-api/overview "Throughput"); an
  optional pair limit -> ``131056``. Accepted sends answer ``{"messaging_product", "contacts",
  "messages": [{"id": "wamid...", "message_status": "accepted"}]}``.
- Which errors come in the answer and which later as a ``failed`` status webhook
  (cloud-api/support/error-codes, "Synchronous and Asynchronous"): the ones above come in
  the answer; ``131026`` (not on WhatsApp: numbers ending ``0026`` and numbers no country has)
  ``131050`` (``0050``: the user stopped marketing messages) and ``131047`` (a non-template
  message outside the 24-hour window: numbers ending ``0047``, or every number that has not
  written with ``window="strict"``) are accepted with a wamid and then failed by webhook, as
  Meta does.
- Status webhooks (cloud-api/webhooks/components, "statuses"; webhooks/reference/messages/
  status): ``sent``, ``delivered``, ``read`` for every accepted message (or one ``failed`` with
  ``errors[]``), with ``pricing`` (PMP, the template's category or ``service``; ``type`` from
  webhook version v24.0), ``conversation`` (id, origin type, expiration on ``sent``; before
  v24.0 only) and the request's ``biz_opaque_callback_data``; signed with
  ``X-Hub-Signature-256`` (and the legacy sha1 ``X-Hub-Signature``; graph-api/webhooks/
  getting-started, "Validating Payloads") and retried with backoff while the webhook URL does
  not answer 2xx; updates that queue up share one POST (``webhook_batch``). With a
  ``verify_token`` the URL is first verified ("Verification Requests", ``hub.challenge``) and a
  URL that fails gets nothing. ``out_of_order=True`` posts each message's statuses newest
  first (Meta does not promise their order).
- Bad weather (``faults``, name -> share of sends): ``html`` (a 502 HTML page), ``500``
  (``131000``), ``slow``, ``hang`` (sent, but answered only after ``hang_seconds``); and
  ``fail_rates`` (Meta code -> share) fails sends with any code of
  :data:`ctwa.wire.cloudapi.ERRORS`, in the answer or by webhook as the code comes on Meta.
- The simulated user (``simulated_user=True``): after a template's ``read``, once per number
  and template, taps each URL button whose URL starts with one of ``tap_prefixes`` (a GET with
  a phone's User-Agent) and replies with every kind: text, image, document, audio, video
  (media by id, served by ``GET /{media-id}``), location, contacts, a quick-reply ``button``,
  ``interactive`` button_reply and list_reply (with ``context.id`` = the wamid answered), and a
  ``reaction`` (``reaction.message_id``: reactions have no context on Meta).
- Media (cloud-api/reference/media, "Retrieve Media URL", "Download Media"): ``GET
  /{media-id}`` -> ``{"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}``;
  the url answers the bytes only with the same bearer token.
- Marking a user's message read (cloud-api/guides/mark-message-as-read): ``{"messaging_product",
  "status": "read", "message_id"}`` to ``/messages`` -> ``{"success": true}`` for a message the
  number received; other Graph paths answer Graph's ``100`` "Unsupported ... request".
- Templates (whatsapp-business-management-api/message-templates): ``data`` and
  ``paging.cursors.before/after``, ``paging.next`` while more remain; ``limit`` (1-500),
  ``after``, ``before``, and the ``name``, ``status``, ``language`` filters.

Python API (tests, the demo, the bridge's tests)::

    from ctwa.sandbox.meta import MetaSettings
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings

    meta = MetaSettings(webhook_url="http://127.0.0.1:8780/webhook", mps=80,
                        simulated_user=True, tap_prefixes=("http://127.0.0.1:8780/c/",))
    with RunningSandbox(SandboxSettings(meta=meta)) as box:
        graph = box.urls()["meta_graph"]          # http://127.0.0.1:PORT/meta/v21.0
        # token box.settings.meta.token, app secret box.settings.meta.app_secret,
        # phone number id / WABA id: box.settings.meta.phone_number_id / .waba_id
        ...                                        # POST f"{graph}/{phone_number_id}/messages"
        box.meta.wait_idle(10)                     # every status and reply posted
        box.meta.state.accepted                    # sends accepted
        box.meta.state.sends_by_key                # per biz_opaque_callback_data (msgId)
        box.meta.state.requests_per_wamid()        # times the message behind each was sent
        box.meta.state.duplicates()                # keys sent more than once
        box.meta.state.max_in_window(1.0)          # the most sends within any second
        box.meta.state.per_second()                # sends in each second
        box.meta.state.statuses_queued             # statuses by kind
        box.meta.sender.stats                      # webhooks posted / retried / given up
        box.meta.inject("919000000001", "image")   # the user writes now
        box.meta.state.taps                        # URL buttons the user opened

Secrets of the sandbox (token, app secret) are not secret; set them with ``MetaSettings`` or
the ``ctwa sandbox`` options whose names begin ``meta-`` when a test needs its own.
"""

from ctwa.sandbox.meta.mock import MetaSettings, MetaState, MockMeta, SentRecord
from ctwa.sandbox.meta.user import REPLY_KINDS
from ctwa.sandbox.meta.webhooks import signature

__all__ = ["REPLY_KINDS", "MetaSettings", "MetaState", "MockMeta", "SentRecord", "signature"]
