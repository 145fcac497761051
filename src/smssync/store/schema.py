"""The database schema as SQLAlchemy Core tables, the reference the migrations must equal.

Times are integer microseconds since the epoch, UTC: portable between SQLite and PostgreSQL,
cheap to compare and index, and converted to aware datetimes only at the store's edge.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Row ids: 64-bit on PostgreSQL, but INTEGER on SQLite so the column aliases the rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    # Kept apart by the store's verbs (devices.py), not by the index: a database from before
    # may hold a shared secret, which then identifies nobody.
    Column("secret_hash", LargeBinary, nullable=True, index=True),
    Column("basic_user", String(255), nullable=True, unique=True),
    Column("basic_password_hash", LargeBinary, nullable=True),
    Column("settings", Text, nullable=False),
    Column("effective_mode", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=True),
    Column("last_user_agent", Text, nullable=True),
    # The token is HMAC(server key, seed): the database alone does not reveal it (0008).
    Column("token_seed", LargeBinary, nullable=True),
    # When an admin disabled the phone (0013): refused on its Sync URL while set.
    Column("disabled_at", BigInteger, nullable=True),
)


def _trigrams(table: str) -> Index:
    # PostgreSQL only (0014): SQLite searches its FTS5 table instead.
    return Index(
        f"ix_{table}_content_trgm",
        "content",
        postgresql_using="gin",
        postgresql_ops={"content": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


inbound = Table(
    "inbound",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    # SET NULL keeps received SMS when their device is removed.
    Column("device_id", ForeignKey("devices.id", ondelete="SET NULL"), nullable=True),
    Column("dedupe_key", String(300), nullable=False),
    Column("message_id", String(255), nullable=True),
    Column("from_raw", Text, nullable=False),
    Column("from_addr", Text, nullable=False),
    Column("to_addr", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("sent_timestamp_raw", Text, nullable=True),
    Column("sent_at", BigInteger, nullable=False),
    Column("device_label", Text, nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("flags", Text, nullable=False),
    Column("status", String(20), nullable=False),
    # Tags set by rules on incoming SMS (0002); JSON list, NULL when none.
    Column("tags", Text, nullable=True),
    # When retention emptied ``content`` (0007); the index finds what is left to purge.
    Column("purged_at", BigInteger, nullable=True),
    UniqueConstraint("device_id", "dedupe_key"),
    # Activity counts a range of receipt times (0006).
    Index(None, "received_at"),
    Index(None, "purged_at", "received_at"),
    # The dashboard's conversations: one number's SMS, newest first (0010).
    Index(None, "from_addr", "id"),
    # The list pages (0011): one phone's SMS, newest first by id.
    Index(None, "device_id", "id"),
    # Text search (0014): trigrams on PostgreSQL; SQLite has its FTS5 table instead.
    _trigrams("inbound"),
)

outbound = Table(
    "outbound",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    # The assigned device: hard when pinned, a soft routing choice otherwise.
    Column("device_id", ForeignKey("devices.id", ondelete="SET NULL"), nullable=True),
    Column("pinned", Boolean, nullable=False),
    Column("to_addr", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("dispatched_at", BigInteger, nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("left_queue_at", BigInteger, nullable=True),
    Column("result_listings", Integer, nullable=False),
    Column("sent_code", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    Column("sent_at", BigInteger, nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    # From the application API (0002): claim order, earliest hand-out, where to report.
    # The API's priority negated, so that an ascending index scan yields the most urgent first.
    Column("claim_rank", Integer, nullable=False, server_default="0"),
    Column("send_at", BigInteger, nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("api_key_id", Integer, nullable=True),
    # The timestamps of the result reports as the phone wrote them (0003, S-34), and when
    # an alert said the message stays accepted without a result (0003, S-30).
    Column("sent_timestamp_raw", Text, nullable=True),
    Column("delivered_timestamp_raw", Text, nullable=True),
    Column("accepted_alert_at", BigInteger, nullable=True),
    # The uuid the phone is told in E2/E4 and names in E5 and E7 (0005): random and its own,
    # because API readers and webhook receivers see ``uuid``, and on the shared Sync URL
    # knowing the wire id is what authenticates E5 (lease binding, S-26, S-29). Set on every
    # insert by this default; NULL only in rows no migration filled.
    Column("wire_id", String(36), nullable=True, default=lambda: str(uuid.uuid4())),
    Index(None, "wire_id", unique=True),
    # When retention emptied ``content`` of a finished message (0007).
    Column("purged_at", BigInteger, nullable=True),
    Index(None, "purged_at", "updated_at"),
    # Claim walks the queue in id order, globally or for one device.
    Index(None, "status", "id"),
    Index(None, "device_id", "status", "id"),
    # Pacing sums what a device got in the last minute.
    Index(None, "device_id", "dispatched_at"),
    # The sweeps: mostly NULL, so these stay small.
    Index(None, "lease_expires_at"),
    Index(None, "status", "expires_at"),
    # Claim order is priority first: one range scan per source, as for the id order.
    Index(None, "device_id", "status", "claim_rank", "id"),
    # The campaign that queued the message (0011); no foreign key, as for api_key_id:
    # campaigns are never deleted, and SQLite cannot add one to an existing table.
    Column("campaign_id", Integer, nullable=True),
    # A campaign's counts by status (0011).
    Index(None, "campaign_id", "status"),
    # Activity counts a range of send and hand-out times (0006).
    Index(None, "sent_at"),
    Index(None, "dispatched_at"),
    # The dashboard's conversations: one number's SMS, newest first (0010).
    Index(None, "to_addr", "id"),
    # Text search (0014), as for inbound.
    _trigrams("outbound"),
)

outbound_history = Table(
    "outbound_history",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "outbound_id", ForeignKey("outbound.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("at", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", Text, nullable=True),
)

routes = Table(
    "routes",
    metadata,
    Column("to_addr", Text, primary_key=True),
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(50), nullable=False),
    Column("detail", Text, nullable=False),
    Index(None, "device_id", "id"),
)


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    # The first characters of the key, shown in listings; the key itself only as a keyed hash.
    Column("prefix", String(32), nullable=False),
    Column("key_hash", LargeBinary, nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    # Signs status callbacks of the messages this key sends; the owner got it once.
    Column("signing_secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    # JSON list of event types.
    Column("events", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=True),
    # Status callbacks have no endpoint: the URL and the sending key's secret.
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=True),
    Column("url", Text, nullable=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event", String(40), nullable=False),
    # Deliveries of one lane (endpoint and message) go out in id order.
    Column("lane", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(None, "state", "next_attempt_at"),
    Index(None, "lane", "id"),
    # The dashboard's pages: an endpoint's deliveries and the dead letters, newest first.
    Index(None, "endpoint_id", "id"),
    Index(None, "state", "id"),
)

rules = Table(
    "rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("pattern", Text, nullable=False),
    Column("auto_reply", Text, nullable=True),
    Column(
        "forward_endpoint_id",
        ForeignKey("webhook_endpoints.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("tag", String(100), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

device_liveness = Table(
    "device_liveness",
    metadata,
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("online", Boolean, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    # A removed device takes its alerts with it, like its events.
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), nullable=True),
    # The condition while it holds (kind and subject, e.g. ``device.silent:7``); NULL once
    # resolved. Unique, so that processes and servers raising at once store one alert.
    Column("open_key", String(120), nullable=True, unique=True),
    Column("details", Text, nullable=False),
    Column("raised_at", BigInteger, nullable=False),
    # When a sweep wrote its log line: once per fleet, after the raise committed.
    Column("announced_at", BigInteger, nullable=True),
    Column("acknowledged_at", BigInteger, nullable=True),
    Column("acknowledged_by", String(100), nullable=True),
    Column("resolved_at", BigInteger, nullable=True),
    Index(None, "resolved_at", "id"),
    Index(None, "announced_at"),
)

send_streaks = Table(
    "send_streaks",
    metadata,
    # Sends of a device reported failed since its last one reported sent, by reason code.
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # argon2id, in its own encoded form (parameters and salt included).
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # A session made before this is void: a new password signs every browser out.
    Column("password_changed_at", BigInteger, nullable=False),
)

threads = Table(
    "threads",
    metadata,
    # One row per other party's number: a conversation of the dashboard (0010). Kept by the
    # verbs that insert SMS (inbox, queue) in their own transactions, so the list of
    # conversations is one index range, not a GROUP BY over every SMS.
    Column("number", Text, primary_key=True),
    Column("last_at", BigInteger, nullable=False),
    Column("last_inbound_id", BigInteger, nullable=True),
    Column("last_outbound_id", BigInteger, nullable=True),
    Index(None, "last_at", "number"),
    # Incoming SMS not yet read (0014): raised in the upsert that stores them, zeroed when
    # anyone opens the conversation (one inbox for all). The index makes the header's total
    # a range over the unread threads only.
    Column("unread", Integer, nullable=False, server_default="0"),
    Index(None, "unread"),
    # The number backwards, so that its last digits are an index range (0014).
    Column("number_reversed", Text, nullable=False, server_default=""),
    Index(None, "number_reversed"),
    # The phone of the newest SMS: the list's filter by phone is one index range (0014).
    Column("last_device_id", Integer, nullable=True),
    Index(None, "last_device_id", "last_at", "number"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("template", Text, nullable=False),
    # running, paused, cancelled, done (``CampaignStatus``).
    Column("status", String(16), nullable=False),
    # The region national numbers were read in, kept to show how they were read.
    Column("region", String(8), nullable=False),
    # Send through this device only (by name, as ``NewOutbound.device``).
    Column("device", String(100), nullable=True),
    # The daily window in minutes after local midnight; NULL: any time.
    Column("window_start", Integer, nullable=True),
    Column("window_end", Integer, nullable=True),
    # The window's zone; NULL: each recipient's own, from their number.
    Column("window_tz", String(64), nullable=True),
    # JSON list of the recipients' zone keys, so the release loop never scans for them.
    Column("zones", Text, nullable=False),
    Column("total", Integer, nullable=False),
    Column("api_key_id", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "status"),
)

campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("to_raw", Text, nullable=False),
    # NULL when the number could not be normalised (``error`` says why).
    Column("to_addr", Text, nullable=True),
    Column("content", Text, nullable=True),
    Column("segments", Integer, nullable=False),
    # The zones the window is judged in ("A|B" for a number of several zones).
    Column("zone", Text, nullable=True),
    # pending, released, invalid, opted_out, cancelled (``RecipientState``).
    Column("state", String(16), nullable=False),
    Column("error", Text, nullable=True),
    # The outgoing SMS's uuid once released into the queue.
    Column("message_id", String(36), nullable=True),
    # Release takes a campaign's pending recipients of the zones inside their window.
    Index(None, "campaign_id", "state", "zone", "id"),
    # The results export walks a campaign's recipients in order.
    Index(None, "campaign_id", "id"),
)

#: SQLite's full-text tables of the SMS's text (0014), outside ``metadata``: FTS5 virtual
#: tables with their shadow tables (``<name>_data``, ...) and triggers, made by the
#: migration; PostgreSQL indexes ``content`` instead (the ``ddl_if`` indexes above).
SQLITE_SEARCH_TABLES = ("inbound_search", "outbound_search")


def dialect_only(index: Index, dialect: str) -> bool:
    """Tell whether ``index`` exists on ``dialect`` (False for another's own index)."""
    only = index._ddl_if
    return only is None or only.dialect is None or only.dialect == dialect


opt_outs = Table(
    "opt_outs",
    metadata,
    # The normalised number that asked for no more bulk SMS.
    Column("address", Text, primary_key=True),
    Column("source", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
