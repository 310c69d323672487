//! The versioned schema: numbered migrations for both backends, and the version rules.
//!
//! Each backend applies the missing migrations at start-up inside one transaction that
//! first takes a lock (PostgreSQL: `pg_advisory_xact_lock`; SQLite: `BEGIN IMMEDIATE`),
//! so instances starting at once apply each migration exactly once. Applied versions are
//! rows of `schema_version`. A database with a version this build does not know is refused.

use super::StoreError;

/// One step of the schema, written for each backend.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// All migrations, oldest first; versions are 1, 2, 3... with no gaps.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "beacon events and monthly identities",
        // `IF NOT EXISTS` adopts a database made by mau-collector 0.1 (same tables, no version).
        sqlite: "
CREATE TABLE IF NOT EXISTS events (
    event_id       TEXT PRIMARY KEY,
    identity       TEXT NOT NULL,
    month          TEXT NOT NULL,  -- UTC month of event_at (what counts)
    client_month   TEXT NOT NULL,  -- the device's month field, kept for audit
    occurred_at    TEXT NOT NULL,  -- device clock
    sent_at        TEXT NOT NULL,  -- device clock, of the attempt that got stored
    received_at    TEXT NOT NULL,  -- collector clock
    event_at       TEXT NOT NULL,  -- received_at - (sent_at - occurred_at)
    attempt        INTEGER NOT NULL,
    dedupe         TEXT NOT NULL,
    sdk_name       TEXT NOT NULL,
    sdk_version    TEXT NOT NULL,
    client_version TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identities (
    month      TEXT NOT NULL,
    identity   TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    connects   INTEGER NOT NULL,
    PRIMARY KEY (month, identity)
) WITHOUT ROWID;
",
        // Times are the same fixed-width UTC strings as on SQLite (they sort as time and cast
        // with ::timestamptz); COLLATE "C" gives SQLite's byte order, so exports are identical.
        postgres: r#"
CREATE TABLE events (
    event_id       TEXT COLLATE "C" PRIMARY KEY,
    identity       TEXT COLLATE "C" NOT NULL,
    month          TEXT COLLATE "C" NOT NULL,
    client_month   TEXT NOT NULL,
    occurred_at    TEXT NOT NULL,
    sent_at        TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    event_at       TEXT COLLATE "C" NOT NULL,
    attempt        BIGINT NOT NULL,
    dedupe         TEXT NOT NULL,
    sdk_name       TEXT NOT NULL,
    sdk_version    TEXT NOT NULL,
    client_version TEXT
);
CREATE TABLE identities (
    month      TEXT COLLATE "C" NOT NULL,
    identity   TEXT COLLATE "C" NOT NULL,
    first_seen TEXT COLLATE "C" NOT NULL,
    last_seen  TEXT COLLATE "C" NOT NULL,
    connects   BIGINT NOT NULL,
    PRIMARY KEY (month, identity)
);
"#,
    },
    Migration {
        version: 2,
        name: "token log, server-side sightings, delivery keys",
        sqlite: "
CREATE TABLE tokens (
    token_key   TEXT PRIMARY KEY,  -- 'id:' + token_id, else 'at:' + identity + issued_at
    identity    TEXT NOT NULL,
    month       TEXT NOT NULL,     -- UTC month of issued_at
    issued_at   TEXT NOT NULL,
    expires_at  TEXT,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_month ON tokens (month, identity);
CREATE TABLE sightings (
    month        TEXT NOT NULL,
    subject_kind TEXT NOT NULL,    -- identity | address
    subject      TEXT NOT NULL,
    source       TEXT NOT NULL,    -- webhook:<EventType> | event_stream:<type> | rest_sync
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (month, subject_kind, subject, source)
) WITHOUT ROWID;
CREATE TABLE delivery_keys (
    key     TEXT PRIMARY KEY,      -- Event Streams id, REST sid: each counted once
    seen_at TEXT NOT NULL
) WITHOUT ROWID;
",
        postgres: r#"
CREATE TABLE tokens (
    token_key   TEXT COLLATE "C" PRIMARY KEY,
    identity    TEXT COLLATE "C" NOT NULL,
    month       TEXT COLLATE "C" NOT NULL,
    issued_at   TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX tokens_month ON tokens (month, identity);
CREATE TABLE sightings (
    month        TEXT COLLATE "C" NOT NULL,
    subject_kind TEXT COLLATE "C" NOT NULL,
    subject      TEXT COLLATE "C" NOT NULL,
    source       TEXT COLLATE "C" NOT NULL,
    first_seen   TEXT COLLATE "C" NOT NULL,
    last_seen    TEXT COLLATE "C" NOT NULL,
    hits         BIGINT NOT NULL,
    PRIMARY KEY (month, subject_kind, subject, source)
);
CREATE TABLE delivery_keys (
    key     TEXT COLLATE "C" PRIMARY KEY,
    seen_at TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "beacon kind (still_connected)",
        // A `still_connected` beacon is an event like any other (stored once per event_id);
        // its identity goes to `sightings` as source `sdk_still_connected`, not to
        // `identities`, so reports can count it apart.
        sqlite: "ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'connected';",
        postgres: "ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'connected';",
    },
    Migration {
        version: 4,
        name: "billed count per month",
        // Twilio's count is known once the invoice (or Usage Records) is: kept per month so
        // the report, `GET /v1/months` and the dashboard need it typed only once. A new
        // table: the rows of versions 1 to 3 are not touched.
        sqlite: "
CREATE TABLE billed (
    month       TEXT PRIMARY KEY,  -- YYYY-MM (UTC)
    count       INTEGER NOT NULL,
    source      TEXT NOT NULL,     -- typed | usage_records:<category>
    recorded_at TEXT NOT NULL
) WITHOUT ROWID;
",
        postgres: r#"
CREATE TABLE billed (
    month       TEXT COLLATE "C" PRIMARY KEY,
    count       BIGINT NOT NULL,
    source      TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 5,
        name: "erasures counted per month; subject indexes",
        // Erasing a subject removes its rows from every table; what stays is, per month,
        // how many subjects were erased (a number, no names), so the report can set it
        // beside Twilio's billed count. The indexes find one subject's rows in every
        // month without scanning the tables. Additive: no row of versions 1 to 4 changes.
        sqlite: "
CREATE TABLE erased (
    month    TEXT PRIMARY KEY,  -- YYYY-MM (UTC)
    subjects INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_identity ON events (identity);
CREATE INDEX identities_identity ON identities (identity);
CREATE INDEX tokens_identity ON tokens (identity);
CREATE INDEX sightings_subject ON sightings (subject, subject_kind);
",
        postgres: r#"
CREATE TABLE erased (
    month    TEXT COLLATE "C" PRIMARY KEY,
    subjects BIGINT NOT NULL
);
CREATE INDEX events_identity ON events (identity);
CREATE INDEX identities_identity ON identities (identity);
CREATE INDEX tokens_identity ON tokens (identity);
CREATE INDEX sightings_subject ON sightings (subject, subject_kind);
"#,
    },
    Migration {
        version: 6,
        name: "where clients were made: beacon context and reason, contexts per subject-month",
        // The raw event keeps the beacon's `context` and `reason` (NULL from older SDKs).
        // `subject_contexts` has one row per month, identity and context the identity's
        // SDK clients connected from (`connected` or `still_connected`), with the first
        // connect's time and reason from that context: the earliest row of a subject-month
        // is its first connect. `context` '' stands for a beacon without one (a key column
        // cannot be NULL). Rows of version 5 are backfilled from `identities` and the
        // `sdk_still_connected` sightings with context '' and no reason, so a month
        // recorded before stays in the savings table (under no context).
        sqlite: "
ALTER TABLE events ADD COLUMN context TEXT;
ALTER TABLE events ADD COLUMN reason TEXT;
CREATE TABLE subject_contexts (
    month      TEXT NOT NULL,
    identity   TEXT NOT NULL,
    context    TEXT NOT NULL,   -- '' = the beacon had none
    first_seen TEXT NOT NULL,   -- earliest event_at of a connect from this context
    reason     TEXT,            -- the reason of that earliest connect
    beacons    INTEGER NOT NULL,
    PRIMARY KEY (month, identity, context)
) WITHOUT ROWID;
CREATE INDEX subject_contexts_identity ON subject_contexts (identity);
INSERT INTO subject_contexts (month, identity, context, first_seen, reason, beacons)
    SELECT month, identity, '', min(f), NULL, sum(n) FROM (
        SELECT month, identity, first_seen AS f, connects AS n FROM identities
        UNION ALL
        SELECT month, subject, first_seen, hits FROM sightings
            WHERE source = 'sdk_still_connected' AND subject_kind = 'identity')
    GROUP BY month, identity;
",
        postgres: r#"
ALTER TABLE events ADD COLUMN context TEXT;
ALTER TABLE events ADD COLUMN reason TEXT;
CREATE TABLE subject_contexts (
    month      TEXT COLLATE "C" NOT NULL,
    identity   TEXT COLLATE "C" NOT NULL,
    context    TEXT COLLATE "C" NOT NULL,
    first_seen TEXT COLLATE "C" NOT NULL,
    reason     TEXT,
    beacons    BIGINT NOT NULL,
    PRIMARY KEY (month, identity, context)
);
CREATE INDEX subject_contexts_identity ON subject_contexts (identity);
INSERT INTO subject_contexts (month, identity, context, first_seen, reason, beacons)
    SELECT month, identity, '', min(f), NULL, sum(n)::int8 FROM (
        SELECT month, identity, first_seen AS f, connects AS n FROM identities
        UNION ALL
        SELECT month, subject, first_seen, hits FROM sightings
            WHERE source = 'sdk_still_connected' AND subject_kind = 'identity') AS s
    GROUP BY month, identity;
"#,
    },
    // The budget alerts' delivery state. Written as its own entry so that merging after
    // another migration only renumbers `version`.
    Migration {
        version: 7,
        name: "budget alerts sent per month and kind",
        // One row per (month, kind) once an instance claims the alert: `sending` with the
        // claiming instance and a lease, then `sent`. Figures only, no subject.
        sqlite: "
CREATE TABLE alerts (
    month       TEXT NOT NULL,     -- YYYY-MM (UTC)
    kind        TEXT NOT NULL,     -- forecast | actual
    state       TEXT NOT NULL,     -- sending | sent
    owner       TEXT NOT NULL,     -- the instance sending (or that sent) it
    lease_until TEXT NOT NULL,     -- another instance may take a `sending` row after this
    attempts    INTEGER NOT NULL,
    last_status TEXT,              -- the receiver's last answer: 200, 500, timeout...
    updated_at  TEXT NOT NULL,
    sent_at     TEXT,
    PRIMARY KEY (month, kind)
) WITHOUT ROWID;
",
        postgres: r#"
CREATE TABLE alerts (
    month       TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    state       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    lease_until TEXT COLLATE "C" NOT NULL,
    attempts    BIGINT NOT NULL,
    last_status TEXT,
    updated_at  TEXT COLLATE "C" NOT NULL,
    sent_at     TEXT,
    PRIMARY KEY (month, kind)
);
"#,
    },
];

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The migrations to apply on a database at `current`; a newer database is refused.
pub fn pending(current: i64) -> Result<&'static [Migration], StoreError> {
    if current > latest() {
        return Err(StoreError::NewerSchema {
            found: current,
            known: latest(),
        });
    }
    let applied = MIGRATIONS
        .iter()
        .take_while(|m| m.version <= current)
        .count();
    Ok(&MIGRATIONS[applied..])
}

/// For readers that must not migrate (the CLI): the database must be exactly current.
pub fn check_current(current: i64, what: &str) -> Result<(), StoreError> {
    if !pending(current)?.is_empty() {
        return Err(StoreError::OlderSchema {
            found: current,
            known: latest(),
            what: what.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }

    #[test]
    fn pending_and_refusal() {
        assert_eq!(pending(0).unwrap().len(), MIGRATIONS.len());
        assert!(pending(latest()).unwrap().is_empty());
        let err = pending(latest() + 1).unwrap_err();
        assert!(
            err.to_string()
                .contains("newer than this mau-collector knows"),
            "{err}"
        );
        assert!(check_current(latest(), "x").is_ok());
        assert!(matches!(
            check_current(0, "x"),
            Err(StoreError::OlderSchema { .. })
        ));
    }
}
