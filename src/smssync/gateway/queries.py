"""Every SQL statement of the gateway's local store, by name (SQLite dialect).

Times are epoch seconds (REAL). States:

- ``forwards.state``: ``pending`` (to upload; ``attempts`` failed so far), ``forwarded``
  (the server confirmed; never uploaded again), ``filtered`` (keywords/regex said no),
  ``dropped`` (white- or blacklist said no).
- ``tasks.state``: ``offered`` (seen in ``task=send``, waiting on ``task=sent``), ``listed``
  (to send), ``unlisted`` (not confirmed by ``task=sent``: never sent), ``sending`` (handed to
  the backend), ``sent`` / ``failed`` (radio result known), ``unknown`` (the gateway stopped
  while sending; never sent again).
- ``local_sends.state``: ``pending``, ``sending``, ``sent``, ``failed``, ``unknown``.
"""

from __future__ import annotations

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS inbound (
        id INTEGER PRIMARY KEY,
        natural_key TEXT NOT NULL UNIQUE,
        message_id TEXT NOT NULL UNIQUE,
        from_addr TEXT NOT NULL,
        content TEXT NOT NULL,
        sent_timestamp TEXT NOT NULL,
        received_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS forwards (
        inbound_id INTEGER NOT NULL REFERENCES inbound(id),
        sync_url TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        forwarded_at REAL,
        PRIMARY KEY (inbound_id, sync_url)
    )""",
    "CREATE INDEX IF NOT EXISTS forwards_due ON forwards (state, next_attempt_at)",
    """CREATE TABLE IF NOT EXISTS tasks (
        sync_url TEXT NOT NULL,
        message_id TEXT NOT NULL,
        source TEXT NOT NULL,
        to_addr TEXT NOT NULL,
        content TEXT NOT NULL,
        state TEXT NOT NULL,
        first_seen_at REAL NOT NULL,
        sent_code INTEGER,
        reference TEXT,
        sent_at REAL,
        delivered_code INTEGER,
        delivered_at REAL,
        PRIMARY KEY (sync_url, message_id)
    )""",
    "CREATE INDEX IF NOT EXISTS tasks_reference ON tasks (reference, state)",
    "CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state)",
    """CREATE TABLE IF NOT EXISTS local_sends (
        id INTEGER PRIMARY KEY,
        inbound_id INTEGER,
        kind TEXT NOT NULL,
        to_addr TEXT NOT NULL,
        content TEXT NOT NULL,
        state TEXT NOT NULL,
        sent_code INTEGER,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS local_sends_state ON local_sends (state)",
    # Delivery reports that came before their send was recorded (the radio can be that quick).
    """CREATE TABLE IF NOT EXISTS early_reports (
        reference TEXT NOT NULL,
        code INTEGER NOT NULL,
        at REAL NOT NULL,
        received_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS contacts (
        sync_url TEXT PRIMARY KEY,
        last_contact_at REAL,
        last_ok_at REAL,
        last_error TEXT
    )""",
]

#: A crash while sending leaves the outcome unknown: never send those again (G-13).
RECOVER_TASKS = "UPDATE tasks SET state = 'unknown' WHERE state = 'sending'"
RECOVER_LOCAL_SENDS = "UPDATE local_sends SET state = 'unknown' WHERE state = 'sending'"

INSERT_INBOUND = """
INSERT OR IGNORE INTO inbound
    (natural_key, message_id, from_addr, content, sent_timestamp, received_at)
VALUES (:natural_key, :message_id, :from_addr, :content, :sent_timestamp, :received_at)
RETURNING id
"""
INSERT_FORWARD = """
INSERT INTO forwards (inbound_id, sync_url, state, next_attempt_at)
VALUES (:inbound_id, :sync_url, :state, :now)
"""
INSERT_LOCAL_SEND = """
INSERT INTO local_sends (inbound_id, kind, to_addr, content, state, created_at)
VALUES (:inbound_id, :kind, :to_addr, :content, 'pending', :now)
"""

DUE_FORWARDS = """
SELECT f.inbound_id, f.sync_url, f.attempts, i.message_id, i.from_addr, i.content,
       i.sent_timestamp
FROM forwards f JOIN inbound i ON i.id = f.inbound_id
WHERE f.state = 'pending' AND f.next_attempt_at <= :now AND f.sync_url IN :urls
ORDER BY f.next_attempt_at, f.inbound_id
LIMIT :limit
"""
NEXT_DUE = """
SELECT min(next_attempt_at) FROM forwards WHERE state = 'pending' AND sync_url IN :urls
"""
PENDING_COUNT = "SELECT count(*) FROM forwards WHERE state = 'pending'"
MARK_FORWARDED = """
UPDATE forwards SET state = 'forwarded', forwarded_at = :now, last_error = NULL
WHERE inbound_id = :inbound_id AND sync_url = :sync_url AND state = 'pending'
"""
MARK_ATTEMPT_FAILED = """
UPDATE forwards SET attempts = attempts + 1, next_attempt_at = :next_at, last_error = :error
WHERE inbound_id = :inbound_id AND sync_url = :sync_url AND state = 'pending'
"""
#: Connectivity is back: every waiting upload is due now (G-8: backoff resets).
RESET_BACKOFF = """
UPDATE forwards SET next_attempt_at = :now
WHERE sync_url = :sync_url AND state = 'pending' AND next_attempt_at > :now
"""

FORWARD_COUNTS = """
SELECT sync_url,
       sum(state = 'pending' AND attempts = 0), sum(state = 'pending' AND attempts > 0),
       sum(state = 'forwarded'), sum(state = 'filtered'), sum(state = 'dropped')
FROM forwards GROUP BY sync_url
"""
CONTACTS = "SELECT sync_url, last_contact_at, last_ok_at, last_error FROM contacts"
TOUCH_CONTACT = """
INSERT INTO contacts (sync_url, last_contact_at, last_ok_at, last_error)
VALUES (:sync_url, :contact_at, :ok_at, :error)
ON CONFLICT (sync_url) DO UPDATE SET
    last_contact_at = coalesce(excluded.last_contact_at, last_contact_at),
    last_ok_at = coalesce(excluded.last_ok_at, last_ok_at),
    last_error = excluded.last_error
"""

#: A uuid offered again after an E5 that did not list it (or never finished) may be sent;
#: one that reached the radio never is (G-13).
INSERT_TASK = """
INSERT INTO tasks (sync_url, message_id, source, to_addr, content, state, first_seen_at)
VALUES (:sync_url, :message_id, :source, :to_addr, :content, :state, :now)
ON CONFLICT (sync_url, message_id) DO UPDATE SET state = excluded.state
WHERE tasks.state IN ('offered', 'unlisted')
RETURNING message_id
"""
SET_TASK_STATE = """
UPDATE tasks SET state = :state
WHERE sync_url = :sync_url AND message_id = :message_id AND state = :from_state
"""
TASKS_TO_SEND = """
SELECT sync_url, message_id, to_addr, content FROM tasks WHERE state = 'listed'
ORDER BY first_seen_at, rowid
"""
RECORD_SEND = """
UPDATE tasks SET state = :state, sent_code = :sent_code, reference = :reference, sent_at = :sent_at
WHERE sync_url = :sync_url AND message_id = :message_id
"""
RECORD_REPORT = """
UPDATE tasks SET delivered_code = :code, delivered_at = :at
WHERE rowid = (
    SELECT rowid FROM tasks
    WHERE reference = :reference AND state = 'sent' AND delivered_code IS NULL
    ORDER BY sent_at DESC LIMIT 1
)
"""
INSERT_EARLY_REPORT = """
INSERT INTO early_reports (reference, code, at, received_at)
VALUES (:reference, :code, :at, :received_at)
"""
#: An early report belongs to the send recorded just after it, not to an older one.
TAKE_EARLY_REPORT = """
DELETE FROM early_reports
WHERE rowid = (
    SELECT rowid FROM early_reports WHERE reference = :reference AND received_at >= :since
    ORDER BY received_at LIMIT 1
)
RETURNING code, at
"""
TASK_RESULT = """
SELECT message_id, state, sent_code, sent_at, delivered_code, delivered_at
FROM tasks WHERE sync_url = :sync_url AND message_id = :message_id
"""
#: Sent uuids are kept at least 7 days (G-13); older ones may go.
PRUNE_TASKS = "DELETE FROM tasks WHERE first_seen_at < :before AND state != 'listed'"

LOCAL_SENDS_DUE = """
SELECT id, kind, to_addr, content FROM local_sends WHERE state = 'pending' ORDER BY id
"""
SET_LOCAL_SEND = """
UPDATE local_sends SET state = :state, sent_code = :sent_code WHERE id = :id
"""
