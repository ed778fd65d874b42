"""The store's tables, one migration per schema version.

Version N's migration turns a version N-1 database into a version N one; a database is
stamped with ``PRAGMA user_version``. A release only ever appends migrations."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first release
    """
    CREATE TABLE sends (
        id INTEGER PRIMARY KEY,
        msg_id TEXT NOT NULL,
        at REAL NOT NULL,            -- wall-clock seconds when the request was written
        recipient TEXT,
        kind TEXT,                   -- template, freeform, validation
        template TEXT,
        latency_ms REAL,
        verdict TEXT,                -- accepted, rejected, too-slow, ...
        http_status INTEGER,
        request TEXT,                -- the body sent (never headers: no credentials here)
        answer TEXT,
        url TEXT
    );
    CREATE INDEX sends_msg_id ON sends (msg_id);
    CREATE INDEX sends_at ON sends (at);

    CREATE TABLE load_runs (
        id TEXT PRIMARY KEY,
        at REAL NOT NULL,            -- wall-clock start line
        url TEXT,
        kind TEXT,
        template TEXT,
        prefix TEXT NOT NULL,        -- every msgId of the run starts with it
        messages INTEGER NOT NULL,   -- per-message arrays hold this many entries
        recipients TEXT NOT NULL,    -- JSON list; message i went to recipients[i % len]
        offsets BLOB,                -- uint32 ms from the start line, per message
        latencies BLOB,              -- uint32 us, per message
        verdicts BLOB                -- one byte per message (ctwa.store.records.VERDICTS)
    );
    CREATE INDEX load_runs_prefix ON load_runs (prefix);

    CREATE TABLE callbacks (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,            -- wall-clock seconds when the listener received it
        route TEXT,
        kind TEXT,                   -- status, inbound, meta-webhook, unknown
        msg_id TEXT,                 -- the status's msgId, or an inbound reply's context.id
        status TEXT,                 -- sent, delivered, read, failed, clicked; inbound: type
        code INTEGER,
        valid INTEGER NOT NULL,
        problems TEXT,               -- JSON list of strings
        body TEXT
    );
    CREATE INDEX callbacks_msg_id ON callbacks (msg_id);
    CREATE INDEX callbacks_at ON callbacks (at);

    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        at REAL NOT NULL,
        command TEXT NOT NULL,
        passed INTEGER,
        summary TEXT NOT NULL        -- the run's JSON summary
    );
    CREATE INDEX runs_at ON runs (at);
    """,
    # 2: a run's outcome as its verdict says it (passed, incomplete, failed); ``passed``
    # stays for older readers (1 only for passed)
    """
    ALTER TABLE runs ADD COLUMN outcome TEXT;
    UPDATE runs SET outcome = CASE passed WHEN 1 THEN 'passed' WHEN 0 THEN 'failed' END;
    """,
)

VERSION = len(MIGRATIONS)
