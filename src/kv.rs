//! The key-value interface the projection is read and folded through
//! (string keys, byte values, key order), and the in-memory table a replay
//! folds into.
//!
//! Writes fold each event into redb tables inside the write transaction
//! (live, `rebuild_tables`, `audit replay --into`). `audit verify` folds
//! the whole log with the same [`crate::projection::apply`] into
//! [`MemTable`]s, which cost a fraction of a B-tree update per row change,
//! and compares them with the live tables: nothing but `apply` writes a
//! table.

use crate::error::Result;
use redb::ReadableTable;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Read access to one projection table.
pub trait Kv {
    /// `f` of the value under `key`, if any (no copy for redb tables).
    fn get_with<R>(&self, key: &str, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>>;
    /// Visit the rows whose key is `>= start`, in key order, while `f`
    /// returns true.
    fn scan_from(&self, start: &str, f: impl FnMut(&str, &[u8]) -> Result<bool>) -> Result<()>;
    /// The number of rows.
    fn count(&self) -> Result<u64>;
}

/// Write access to one projection table (for [`crate::projection::apply`] only).
pub trait KvMut: Kv {
    /// Insert or replace the row under `key`.
    fn put(&mut self, key: &str, value: &[u8]) -> Result<()>;
    /// Remove the row under `key`, if any.
    fn del(&mut self, key: &str) -> Result<()>;
}

impl<T: ReadableTable<&'static str, &'static [u8]>> Kv for T {
    fn get_with<R>(&self, key: &str, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.get(key)?.map(|v| f(v.value())))
    }

    fn scan_from(&self, start: &str, mut f: impl FnMut(&str, &[u8]) -> Result<bool>) -> Result<()> {
        for item in self.range(start..)? {
            let (k, v) = item?;
            if !f(k.value(), v.value())? {
                break;
            }
        }
        Ok(())
    }

    fn count(&self) -> Result<u64> {
        Ok(self.len()?)
    }
}

impl KvMut for redb::Table<'_, &'static str, &'static [u8]> {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.insert(key, value)?;
        Ok(())
    }

    fn del(&mut self, key: &str) -> Result<()> {
        self.remove(key)?;
        Ok(())
    }
}

/// A projection table held in memory, for folding a whole log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemTable(BTreeMap<String, Vec<u8>>);

impl Kv for MemTable {
    fn get_with<R>(&self, key: &str, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.0.get(key).map(|v| f(v)))
    }

    fn scan_from(&self, start: &str, mut f: impl FnMut(&str, &[u8]) -> Result<bool>) -> Result<()> {
        for (k, v) in self
            .0
            .range::<str, _>((Bound::Included(start), Bound::Unbounded))
        {
            if !f(k, v)? {
                break;
            }
        }
        Ok(())
    }

    fn count(&self) -> Result<u64> {
        Ok(self.0.len() as u64)
    }
}

impl KvMut for MemTable {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        match self.0.get_mut(key) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(value);
            }
            None => {
                self.0.insert(key.to_string(), value.to_vec());
            }
        }
        Ok(())
    }

    fn del(&mut self, key: &str) -> Result<()> {
        self.0.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_table_scans_from_a_key_in_order() {
        let mut t = MemTable::default();
        for k in ["b\0x", "a\0y", "b\0a", "c"] {
            t.put(k, k.as_bytes()).unwrap();
        }
        t.del("c").unwrap();
        let mut seen = Vec::new();
        t.scan_from("b\0", |k, _| {
            seen.push(k.to_string());
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, ["b\0a", "b\0x"]);
        assert_eq!(
            t.get_with("a\0y", |v| v.to_vec()).unwrap(),
            Some(b"a\0y".to_vec())
        );
        assert_eq!(t.count().unwrap(), 3);
    }
}
