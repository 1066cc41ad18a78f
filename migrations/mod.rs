//! Store-format migrations, one per version step.
//!
//! The store records its schema version in the `meta` table. On open, every
//! step from the stored version up to `store::SCHEMA_VERSION` runs in order
//! inside the same redb write transaction that records the new version, so a
//! failing step leaves the store exactly as it was (the transaction is the
//! savepoint).
//!
//! To change the format: bump `SCHEMA_VERSION` in `src/store.rs`, add a
//! `vN_to_vN+1.rs` here with a `Migration` in [`STEPS`], check in a fixture
//! store written by the previous version under `tests/fixtures/stores/vN/`,
//! and add a test that opens it. Event bodies are never reinterpreted: a
//! changed shape is a new `EventBody` variant, or a new envelope format
//! version that a step upcasts.
//!
//! Version 1 is the first format; there are no steps yet.

use crate::error::{Error, Result};

/// One step from version `from` to `from + 1`.
pub(crate) struct Migration {
    /// The version this step starts from.
    pub from: u64,
    /// What it changes, for logs and errors.
    pub name: &'static str,
    /// The change, inside the opening write transaction.
    pub run: fn(&redb::WriteTransaction) -> Result<()>,
}

/// Every step, in order.
pub(crate) const STEPS: &[Migration] = &[];

/// Run the steps that take `current` to `target`, in order. Returns the new version.
pub(crate) fn migrate(
    txn: &redb::WriteTransaction,
    current: u64,
    target: u64,
    steps: &[Migration],
) -> Result<u64> {
    let mut version = current;
    while version < target {
        let step = steps.iter().find(|s| s.from == version).ok_or_else(|| {
            Error::corrupt(format!(
                "no migration from store schema version {version} to {}",
                version + 1
            ))
        })?;
        (step.run)(txn).map_err(|e| {
            e.context(format!(
                "migration {} ({} to {})",
                step.name,
                version,
                version + 1
            ))
        })?;
        version += 1;
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn add(txn: &redb::WriteTransaction, key: &str) -> Result<()> {
        txn.open_table(T)?.insert(key, 1)?;
        Ok(())
    }
    fn step_a(txn: &redb::WriteTransaction) -> Result<()> {
        add(txn, "a")
    }
    fn step_b(txn: &redb::WriteTransaction) -> Result<()> {
        add(txn, "b")
    }
    fn failing(_: &redb::WriteTransaction) -> Result<()> {
        Err(Error::internal("boom"))
    }

    fn memory_db() -> redb::Database {
        redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap()
    }

    #[test]
    fn steps_run_in_order_and_a_failure_changes_nothing() {
        let steps = [
            Migration {
                from: 2,
                name: "b",
                run: step_b,
            },
            Migration {
                from: 1,
                name: "a",
                run: step_a,
            },
        ];
        let db = memory_db();
        let txn = db.begin_write().unwrap();
        assert_eq!(migrate(&txn, 1, 3, &steps).unwrap(), 3);
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        assert!(t.get("a").unwrap().is_some() && t.get("b").unwrap().is_some());

        let broken = [
            Migration {
                from: 1,
                name: "a",
                run: step_a,
            },
            Migration {
                from: 2,
                name: "boom",
                run: failing,
            },
        ];
        let db = memory_db();
        let txn = db.begin_write().unwrap();
        let err = migrate(&txn, 1, 3, &broken).unwrap_err();
        assert_eq!(err.message(), "migration boom (2 to 3): boom");
        drop(txn); // aborted: step a's change is gone with it
        let read = db.begin_read().unwrap();
        assert!(read.open_table(T).is_err(), "nothing was written");
    }

    #[test]
    fn a_missing_step_is_reported() {
        let db = memory_db();
        let txn = db.begin_write().unwrap();
        let err = migrate(&txn, 1, 2, &[]).unwrap_err();
        assert_eq!(
            err.message(),
            "no migration from store schema version 1 to 2"
        );
    }
}
