"""Every SQL statement of the gateway's local store, by name (SQLite dialect).

Times are epoch seconds (REAL). States:

- ``forwards.state``: ``pending`` (to upload; ``attempts`` failed so far), ``forwarded``
  (the server confirmed; never uploaded again), ``filtered`` (keywords/regex said no),
  ``dropped`` (white- or blacklist said no).
- ``tasks.state``: ``offered`` (seen in ``task=send``, waiting on ``task=sent``, or on a
  ``task=result`` listing after the lease when that reply was lost), ``listed`` (to send),
  ``unlisted`` (not confirmed by ``task=sent``: never sent), ``sending`` (handed to the
  backend), ``sent`` / ``failed`` (radio result known), ``submitted`` (handed over, outcome
  unknowable), ``unknown`` (the gateway stopped while sending; never sent again).
- ``tasks.inbound_id``: 0 for a task (E4), deduplicated by uuid (G-13); for an E2 reply the
  incoming SMS whose reply carried it, so each incoming SMS gets its reply once.
- ``tasks.reported``: the result last reported in an E7 the server answered 200 to (the
  ``FINGERPRINT`` of it); a task whose result differs is reported unasked.
- ``local_sends.state``: ``pending``, ``sending``, ``sent``, ``failed``, ``unknown``.
"""

from __future__ import annotations

TASKS_TABLE = """CREATE TABLE IF NOT EXISTS tasks (
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
        inbound_id INTEGER NOT NULL DEFAULT 0,
        reported TEXT,
        PRIMARY KEY (sync_url, message_id, inbound_id)
    )"""

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
    TASKS_TABLE,
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

#: ``PRAGMA user_version`` of a file made by SCHEMA; 0 is the first schema (no version).
SCHEMA_VERSION = 1
#: Version 0 to 1: tasks gain ``inbound_id`` (in the key) and ``reported``. SQLite cannot
#: change a primary key in place, so the table is copied.
UPGRADE_1 = [
    """ALTER TABLE tasks RENAME TO tasks_0""",
    TASKS_TABLE,
    """INSERT INTO tasks (sync_url, message_id, source, to_addr, content, state, first_seen_at,
        sent_code, reference, sent_at, delivered_code, delivered_at)
    SELECT sync_url, message_id, source, to_addr, content, state, first_seen_at,
        sent_code, reference, sent_at, delivered_code, delivered_at FROM tasks_0""",
    "DROP TABLE tasks_0",
    "CREATE INDEX IF NOT EXISTS tasks_reference ON tasks (reference, state)",
    "CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state)",
]
TASKS_COLUMNS = "SELECT name FROM pragma_table_info('tasks')"

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
#: one that reached the radio never is (G-13). A new offer is a new lease: its wait restarts.
INSERT_TASK = """
INSERT INTO tasks
    (sync_url, message_id, inbound_id, source, to_addr, content, state, first_seen_at)
VALUES (:sync_url, :message_id, :inbound_id, :source, :to_addr, :content, :state, :now)
ON CONFLICT (sync_url, message_id, inbound_id) DO UPDATE
SET state = excluded.state, first_seen_at = excluded.first_seen_at
WHERE tasks.state IN ('offered', 'unlisted')
RETURNING message_id
"""
#: E5 outcomes concern tasks (E4) only; E2 replies never go through E5.
SET_TASK_STATE = """
UPDATE tasks SET state = :state
WHERE sync_url = :sync_url AND message_id = :message_id AND inbound_id = 0
    AND state = :from_state
"""
#: A ``task=result`` listing of an offered uuid, once its lease is over, proves that the
#: server accepted it (see Outbound.poll for why the lease matters).
ACCEPT_OFFERED = """
UPDATE tasks SET state = 'listed'
WHERE sync_url = :sync_url AND message_id = :message_id AND inbound_id = 0
    AND state = 'offered' AND first_seen_at <= :offered_before
"""
TASKS_TO_SEND = """
SELECT rowid, sync_url, message_id, to_addr, content FROM tasks WHERE state = 'listed'
ORDER BY first_seen_at, rowid
"""
CLAIM_TASK = "UPDATE tasks SET state = 'sending' WHERE rowid = :row AND state = 'listed'"
RECORD_SEND = """
UPDATE tasks SET state = :state, sent_code = :sent_code, reference = :reference, sent_at = :sent_at
WHERE rowid = :row
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
#: What an E7 entry says of a task; a change means a new report is owed.
FINGERPRINT = "state || ':' || coalesce(sent_code, '') || ':' || coalesce(delivered_code, '')"
_RECORD = f"""
SELECT rowid, message_id, state, sent_code, sent_at, delivered_code, delivered_at,
       {FINGERPRINT}
FROM tasks
"""
#: The PHP sample gives a task and its replies one uuid: the task speaks for it, else the
#: latest reply.
TASK_RESULT = f"""{_RECORD}
WHERE sync_url = :sync_url AND message_id = :message_id
ORDER BY inbound_id = 0 DESC, first_seen_at DESC LIMIT 1
"""
#: Task results not yet reported as they are now, oldest first (delivered later than the
#: server asked, or finished after its listing).
UNASKED_RESULTS = f"""{_RECORD}
WHERE sync_url = :sync_url AND inbound_id = 0 AND state IN ('sent', 'failed', 'submitted')
    AND message_id NOT LIKE 'local-%' AND first_seen_at >= :since
    AND reported IS NOT ({FINGERPRINT})
ORDER BY first_seen_at, rowid
LIMIT :limit
"""
MARK_REPORTED = "UPDATE tasks SET reported = :fingerprint WHERE rowid = :row"
#: Sent uuids are kept at least 7 days (G-13); older ones may go.
PRUNE_TASKS = "DELETE FROM tasks WHERE first_seen_at < :before AND state != 'listed'"

LOCAL_SENDS_DUE = """
SELECT id, kind, to_addr, content FROM local_sends WHERE state = 'pending' ORDER BY id
"""
SET_LOCAL_SEND = """
UPDATE local_sends SET state = :state, sent_code = :sent_code WHERE id = :id
"""
