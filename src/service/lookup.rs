//! Turning user strings into images (`GetImage`), and the reference-store
//! rules for adding references (`AddTag`, `AddDigest`).

use crate::error::{Error, Result};
use crate::event::EventBody;
use crate::projection::{ImageRow, Tables};
use crate::reference::{AnyReference, Reference, id_search_term, parse_any_reference};
use crate::store::Writer;
use redb::ReadableTable;

/// A resolved image: its ID and summary row.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub id: String,
    pub row: ImageRow,
}

/// The canonical key under which `r` is stored or looked up (references.md §7.5).
pub(crate) fn store_key(r: &Reference) -> Reference {
    if r.digest().is_some() {
        r.favor_digest()
    } else {
        r.tag_name_only()
    }
}

/// `GetImage(refOrID)`: references.md §5.3.
pub(crate) fn get_image<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &Tables<T>,
    input: &str,
) -> Result<Found> {
    let parsed = parse_any_reference(input).map_err(|e| Error::invalid(e.message()))?;
    match parsed {
        AnyReference::Digest(d) => match t.image(&d)? {
            Some(row) => Ok(Found { id: d, row }),
            None => Err(Error::not_found(format!("No such image: {d}"))),
        },
        AnyReference::Named(r) => {
            if let Some(id) = t.resolve(&store_key(&r).canonical_string())?
                && let Some(row) = t.image(&id)?
            {
                return Ok(Found { id, row });
            }
            if let Some(id) = search_id_prefix(t, input)?
                && let Some(row) = t.image(&id)?
            {
                return Ok(Found { id, row });
            }
            Err(Error::not_found(format!(
                "No such image: {}",
                r.tag_name_only().familiar_string()
            )))
        }
    }
}

/// The digestset prefix search (references.md §5.2): the one ID `term` is an
/// unambiguous prefix of, if any.
pub(crate) fn search_id_prefix<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &Tables<T>,
    term: &str,
) -> Result<Option<String>> {
    let prefix = match id_search_term(term) {
        (Some("sha256"), hex) => format!("sha256:{hex}"),
        (Some(_), _) => return Ok(None),
        (None, hex) => format!("sha256:{hex}"),
    };
    let found = t.image_ids_with_prefix(&prefix, 2)?;
    Ok(match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

/// Why a reference is being added: decides Docker's checks and LastTagTime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TagPath {
    /// The tag route, import and commit: AddTag(force), sets LastTagTime, always recorded.
    UserTag,
    /// `docker load`: AddTag(force) without LastTagTime; unchanged tags are not re-recorded.
    Load,
}

/// `AddTag(ref, id, force=true)`: references.md §7.3.
pub(crate) fn add_tag(w: &mut Writer<'_>, r: &Reference, id: &str, path: TagPath) -> Result<()> {
    if r.digest().is_some() {
        return Err(Error::invalid(
            "refusing to create a tag with a digest reference",
        ));
    }
    add_reference(w, &r.tag_name_only(), id, path)
}

/// `addReference(ref, id, force=true)`.
pub(crate) fn add_reference(
    w: &mut Writer<'_>,
    r: &Reference,
    id: &str,
    path: TagPath,
) -> Result<()> {
    let r = r.favor_digest();
    if r.familiar_name() == "sha256" {
        return Err(Error::invalid(
            "refusing to create an ambiguous tag using digest algorithm as name",
        ));
    }
    let key = r.canonical_string();
    let existing = w.tables().resolve(&key)?;
    if let Some(old) = &existing {
        if old != id && r.digest().is_some() {
            return Err(Error::conflict(format!(
                "Cannot overwrite digest {}",
                r.digest().unwrap_or_default()
            )));
        }
        if old == id && path == TagPath::Load {
            return Ok(());
        }
    }
    w.emit(EventBody::ReferenceAdded {
        reference: key,
        image: id.to_string(),
        tag_time: path == TagPath::UserTag,
    })
}

/// Parse a stored canonical reference string back into a [`Reference`].
pub(crate) fn parse_stored(canonical: &str) -> Result<Reference> {
    let full = || {
        Reference::parse(canonical)
            .map_err(|e| Error::corrupt(format!("stored reference {canonical:?}: {e}")))
    };
    match Reference::from_stored_canonical(canonical) {
        Some(fast) => {
            // Every test run cross-checks the fast path against the grammar.
            debug_assert_eq!(Some(&fast), full().ok().as_ref(), "{canonical}");
            Ok(fast)
        }
        None => full(),
    }
}
