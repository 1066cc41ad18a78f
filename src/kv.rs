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
use std::borrow::{Borrow, Cow};
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
///
/// Rows are kept in key order under a `MemKey`: the key's first 16
/// bytes as an integer, then the whole key. A B-tree search compares the
/// integers held in its nodes and reads a key's text only on a tie, where
/// comparing `String`s would follow a pointer and call `memcmp` at every
/// step (a third of a replay's fold, measured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemTable(BTreeMap<MemKey, Vec<u8>>);

/// An owned [`MemTable`] key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MemKey(KeyView<'static>);

/// A key as the B-tree compares it: `head` orders like the text's first 16
/// bytes (zero-padded, big-endian), and `text` settles ties. Because the
/// head is a prefix of the text, (head, text) orders exactly like the text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct KeyView<'a> {
    head: u128,
    text: Cow<'a, str>,
}

impl<'a> KeyView<'a> {
    fn new(text: &'a str) -> KeyView<'a> {
        let mut head = [0u8; 16];
        let n = text.len().min(16);
        head[..n].copy_from_slice(&text.as_bytes()[..n]);
        KeyView {
            head: u128::from_be_bytes(head),
            text: Cow::Borrowed(text),
        }
    }
}

impl MemKey {
    fn new(text: &str) -> MemKey {
        let head = KeyView::new(text).head;
        MemKey(KeyView {
            head,
            text: Cow::Owned(text.to_string()),
        })
    }

    fn as_str(&self) -> &str {
        &self.0.text
    }
}

impl<'a> Borrow<KeyView<'a>> for MemKey {
    fn borrow(&self) -> &KeyView<'a> {
        &self.0
    }
}

impl Kv for MemTable {
    fn get_with<R>(&self, key: &str, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.0.get(&KeyView::new(key)).map(|v| f(v)))
    }

    fn scan_from(&self, start: &str, mut f: impl FnMut(&str, &[u8]) -> Result<bool>) -> Result<()> {
        let start = KeyView::new(start);
        for (k, v) in self
            .0
            .range::<KeyView, _>((Bound::Included(&start), Bound::Unbounded))
        {
            if !f(k.as_str(), v)? {
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
        match self.0.get_mut(&KeyView::new(key)) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(value);
            }
            None => {
                self.0.insert(MemKey::new(key), value.to_vec());
            }
        }
        Ok(())
    }

    fn del(&mut self, key: &str) -> Result<()> {
        self.0.remove(&KeyView::new(key));
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

    proptest::proptest! {
        /// Keys are kept, found and scanned exactly as strings order:
        /// short keys, shared 16-byte heads, NULs and multi-byte text.
        #[test]
        fn mem_table_orders_like_strings(
            keys in proptest::collection::vec("(sha256:[0-9a]{0,12}|docker.io/libr|a\\x00{0,3}|é{0,9})(\\x00[a-c]{0,3})?", 0..40),
            start in "(sha256:[0-9a]{0,12}|docker.io/libr|a\\x00{0,3}|é{0,9})(\\x00[a-c]{0,2})?",
        ) {
            let mut t = MemTable::default();
            let mut model = BTreeMap::new();
            for (i, k) in keys.iter().enumerate() {
                if i % 5 == 4 {
                    t.del(k).unwrap();
                    model.remove(k);
                } else {
                    t.put(k, &[i as u8]).unwrap();
                    model.insert(k.clone(), vec![i as u8]);
                }
            }
            let mut seen = Vec::new();
            t.scan_from(&start, |k, v| {
                seen.push((k.to_string(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
            let want: Vec<_> = model
                .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            proptest::prop_assert_eq!(seen, want);
            for k in &keys {
                proptest::prop_assert_eq!(t.get_with(k, <[u8]>::to_vec).unwrap(), model.get(k).cloned());
            }
            proptest::prop_assert_eq!(t.count().unwrap(), model.len() as u64);
        }
    }
}
