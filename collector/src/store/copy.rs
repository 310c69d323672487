//! What `mau-collector copy` moves: every table that holds data, read in key order in
//! bounded batches and written with an insert that is a no-op for a row already there.
//!
//! Raw rows (`events`, `tokens`, `delivery_keys`) never change once stored: a key already
//! in the target is skipped. Monthly aggregates (`identities`, `sightings`, `erased`) only
//! grow on either side, so a row already in the target is merged with the source's by
//! earliest first time, latest last time and the larger count: copying the same row
//! twice changes nothing, and a target row that also counts activity after a switch keeps
//! it. `billed` keeps the more recently recorded count, `alerts` the more recently updated
//! row. `subject_contexts` merges the same way, its `reason` going with the earlier first
//! connect.

/// A column's type; text columns may be NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Int,
}

/// One value of a copied row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(Option<String>),
    Int(i64),
}

/// What an insert does with a key already in the target.
#[derive(Debug)]
pub enum Merge {
    /// Keep the target's row.
    Ignore,
    /// The earliest of these columns, the largest of those; the `follow` columns take
    /// the value of the row whose first `min` column is the earlier.
    Aggregate {
        min: &'static [&'static str],
        max: &'static [&'static str],
        follow: &'static [&'static str],
    },
    /// The row recorded later (by this column) wins whole.
    Newer(&'static str),
}

/// A table copied: its columns, key columns first.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Ty)],
    /// How many leading columns make the primary key.
    pub key: usize,
    pub merge: Merge,
}

use Ty::{Int, Text};

/// Every table that holds data at schema version 6 (`schema_version` is the target's own).
pub const TABLES: &[Table] = &[
    Table {
        name: "events",
        columns: &[
            ("event_id", Text),
            ("identity", Text),
            ("month", Text),
            ("client_month", Text),
            ("occurred_at", Text),
            ("sent_at", Text),
            ("received_at", Text),
            ("event_at", Text),
            ("attempt", Int),
            ("dedupe", Text),
            ("sdk_name", Text),
            ("sdk_version", Text),
            ("client_version", Text),
            ("kind", Text),
            ("context", Text),
            ("reason", Text),
        ],
        key: 1,
        merge: Merge::Ignore,
    },
    Table {
        name: "identities",
        columns: &[
            ("month", Text),
            ("identity", Text),
            ("first_seen", Text),
            ("last_seen", Text),
            ("connects", Int),
        ],
        key: 2,
        merge: Merge::Aggregate {
            min: &["first_seen"],
            max: &["last_seen", "connects"],
            follow: &[],
        },
    },
    Table {
        name: "tokens",
        columns: &[
            ("token_key", Text),
            ("identity", Text),
            ("month", Text),
            ("issued_at", Text),
            ("expires_at", Text),
            ("received_at", Text),
        ],
        key: 1,
        merge: Merge::Ignore,
    },
    Table {
        name: "sightings",
        columns: &[
            ("month", Text),
            ("subject_kind", Text),
            ("subject", Text),
            ("source", Text),
            ("first_seen", Text),
            ("last_seen", Text),
            ("hits", Int),
        ],
        key: 4,
        merge: Merge::Aggregate {
            min: &["first_seen"],
            max: &["last_seen", "hits"],
            follow: &[],
        },
    },
    Table {
        name: "delivery_keys",
        columns: &[("key", Text), ("seen_at", Text)],
        key: 1,
        merge: Merge::Ignore,
    },
    Table {
        name: "billed",
        columns: &[
            ("month", Text),
            ("count", Int),
            ("source", Text),
            ("recorded_at", Text),
        ],
        key: 1,
        merge: Merge::Newer("recorded_at"),
    },
    Table {
        name: "erased",
        columns: &[("month", Text), ("subjects", Int)],
        key: 1,
        merge: Merge::Aggregate {
            min: &[],
            max: &["subjects"],
            follow: &[],
        },
    },
    Table {
        name: "subject_contexts",
        columns: &[
            ("month", Text),
            ("identity", Text),
            ("context", Text),
            ("first_seen", Text),
            ("reason", Text),
            ("beacons", Int),
        ],
        key: 3,
        merge: Merge::Aggregate {
            min: &["first_seen"],
            max: &["beacons"],
            follow: &["reason"],
        },
    },
    Table {
        name: "alerts",
        columns: &[
            ("month", Text),
            ("kind", Text),
            ("state", Text),
            ("owner", Text),
            ("lease_until", Text),
            ("attempts", Int),
            ("last_status", Text),
            ("updated_at", Text),
            ("sent_at", Text),
        ],
        key: 2,
        merge: Merge::Newer("updated_at"),
    },
];

/// How a backend writes placeholders and picks the smaller or larger of two values.
pub(crate) struct Dialect {
    /// The n-th (from 1) parameter.
    pub param: fn(usize) -> String,
    pub least: &'static str,
    pub greatest: &'static str,
    /// Byte order for text comparisons (PostgreSQL's default collation is not).
    pub binary: &'static str,
}

impl Table {
    fn names(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_names(&self) -> String {
        self.columns[..self.key]
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The next batch in key order after the key values given as parameters 1..=key
    /// (none for the first batch); the batch size is the last parameter.
    pub(crate) fn select(&self, d: &Dialect, first: bool) -> String {
        let (names, key, table) = (self.names(), self.key_names(), self.name);
        let (after, limit) = if first {
            (String::new(), (d.param)(1))
        } else {
            let params: Vec<String> = (1..=self.key).map(d.param).collect();
            (
                format!("WHERE ({key}) > ({}) ", params.join(", ")),
                (d.param)(self.key + 1),
            )
        };
        format!("SELECT {names} FROM {table} {after}ORDER BY {key} LIMIT {limit}")
    }

    /// The statement and parameters reading the batch after `after` (the first without).
    pub(crate) fn query(
        &self,
        d: &Dialect,
        after: Option<Vec<Cell>>,
        limit: usize,
    ) -> (String, Vec<Cell>) {
        let sql = self.select(d, after.is_none());
        let mut params = after.unwrap_or_default();
        params.push(Cell::Int(limit as i64));
        (sql, params)
    }

    /// A row read back, column by column, with the backend's getters.
    pub(crate) fn decode<E>(
        &self,
        text: impl Fn(usize) -> Result<Option<String>, E>,
        int: impl Fn(usize) -> Result<i64, E>,
    ) -> Result<Vec<Cell>, E> {
        (self.columns.iter().enumerate())
            .map(|(i, (_, ty))| {
                Ok(match ty {
                    Ty::Text => Cell::Text(text(i)?),
                    Ty::Int => Cell::Int(int(i)?),
                })
            })
            .collect()
    }

    /// What follows the inserted values: `ON CONFLICT ...`, updating only when the row
    /// would change, so the rows counted are the rows copied.
    pub(crate) fn on_conflict(&self, d: &Dialect) -> String {
        let (t, key) = (self.name, self.key_names());
        let (set, when): (Vec<String>, Vec<String>) = match &self.merge {
            Merge::Ignore => return format!("ON CONFLICT ({key}) DO NOTHING"),
            Merge::Aggregate { min, max, follow } => {
                let (mut set, when): (Vec<String>, Vec<String>) = min
                    .iter()
                    .map(|c| (d.least, c, '<'))
                    .chain(max.iter().map(|c| (d.greatest, c, '>')))
                    .map(|(f, c, op)| {
                        (
                            format!("{c} = {f}({t}.{c}, excluded.{c})"),
                            format!("excluded.{c} {op} {t}.{c}"),
                        )
                    })
                    .unzip();
                // SET reads the row as it was, so the order of assignments does not matter.
                // A `follow` column goes with the earliest `by`; at equal times the smaller
                // value (NULL last) wins, the order the ingest paths use too.
                let by = min.first().copied().unwrap_or_default();
                let b = d.binary;
                let mut when = when;
                for c in follow.iter() {
                    let earlier = format!(
                        "(excluded.{by}, coalesce(excluded.{c}, '~'){b}) < ({t}.{by}, coalesce({t}.{c}, '~'){b})"
                    );
                    set.push(format!(
                        "{c} = CASE WHEN {earlier} THEN excluded.{c} ELSE {t}.{c} END"
                    ));
                    when.push(earlier);
                }
                (set, when)
            }
            Merge::Newer(by) => (
                self.columns[self.key..]
                    .iter()
                    .map(|(c, _)| format!("{c} = excluded.{c}"))
                    .collect(),
                vec![format!("excluded.{by} > {t}.{by}")],
            ),
        };
        format!(
            "ON CONFLICT ({key}) DO UPDATE SET {} WHERE {}",
            set.join(", "),
            when.join(" OR ")
        )
    }

    /// `INSERT INTO table (columns) ` (the values follow, per backend).
    pub(crate) fn insert_into(&self) -> String {
        format!("INSERT INTO {} ({}) ", self.name, self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let d = Dialect {
            param: |n| format!("${n}"),
            least: "least",
            greatest: "greatest",
            binary: " COLLATE \"C\"",
        };
        let ids = &TABLES[1];
        assert_eq!(
            ids.select(&d, false),
            "SELECT month, identity, first_seen, last_seen, connects FROM identities \
             WHERE (month, identity) > ($1, $2) ORDER BY month, identity LIMIT $3"
        );
        assert_eq!(
            ids.on_conflict(&d),
            "ON CONFLICT (month, identity) DO UPDATE SET \
             first_seen = least(identities.first_seen, excluded.first_seen), \
             last_seen = greatest(identities.last_seen, excluded.last_seen), \
             connects = greatest(identities.connects, excluded.connects) \
             WHERE excluded.first_seen < identities.first_seen \
             OR excluded.last_seen > identities.last_seen \
             OR excluded.connects > identities.connects"
        );
        assert_eq!(
            TABLES[5].on_conflict(&d),
            "ON CONFLICT (month) DO UPDATE SET count = excluded.count, \
             source = excluded.source, recorded_at = excluded.recorded_at \
             WHERE excluded.recorded_at > billed.recorded_at"
        );
        let contexts = TABLES
            .iter()
            .find(|t| t.name == "subject_contexts")
            .unwrap();
        assert_eq!(
            contexts.on_conflict(&d),
            "ON CONFLICT (month, identity, context) DO UPDATE SET \
             first_seen = least(subject_contexts.first_seen, excluded.first_seen), \
             beacons = greatest(subject_contexts.beacons, excluded.beacons), \
             reason = CASE WHEN (excluded.first_seen, coalesce(excluded.reason, '~') COLLATE \"C\") \
             < (subject_contexts.first_seen, coalesce(subject_contexts.reason, '~') COLLATE \"C\") \
             THEN excluded.reason ELSE subject_contexts.reason END \
             WHERE excluded.first_seen < subject_contexts.first_seen \
             OR excluded.beacons > subject_contexts.beacons \
             OR (excluded.first_seen, coalesce(excluded.reason, '~') COLLATE \"C\") \
             < (subject_contexts.first_seen, coalesce(subject_contexts.reason, '~') COLLATE \"C\")"
        );
    }
}
