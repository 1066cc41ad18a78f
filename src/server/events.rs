//! `GET /events`: Docker's event stream (engine-api.md §3.4, image-service.md §6).
//!
//! Two sources feed it:
//! * the durable log: each committed [`Envelope`] is mapped to the Docker
//!   events it stands for ([`Mapper`]); history (`since`/`until`) is a replay
//!   of the log, live events come from [`Store::subscribe`];
//! * events the log cannot express (`prune`, `save`, `load` of an image that
//!   was already present) are emitted by the route handlers through
//!   [`Hub::emit`]. They are not stored: a bounded ring (256, like dockerd's
//!   buffer) keeps the recent ones for `since` queries while this server runs.
//!
//! One pump task merges both in commit order and broadcasts to subscribers.
//!
//! Known gaps against dockerd (documented, not hidden):
//! * delete's digest-cleanup step (delete-prune-filters.md §2.6) removes
//!   references without an `untag` event in dockerd; the log cannot tell
//!   those removals apart, so strata emits `untag` for every removed reference;
//! * container `commit` events are not mapped (`import` maps from an
//!   `ImageCreated` of source Import; `pull` from `ImagePulled`, `push`
//!   from `ImagePushed`, one per pushed tag: for a push of all tags dockerd
//!   emits one event whose Actor ID is the bare repository name);
//! * history goes back to the start of the log (dockerd keeps 256 events);
//!   ephemeral events are only in history while this server process runs.

use super::Body;
use super::errors::{ApiError, ApiResult};
use super::json;
use crate::event::{Envelope, EventBody, ImageSource};
use crate::filters::Filters;
use crate::reference::Reference;
use crate::store::Store;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};

/// How many handler-emitted events are kept for history.
const RING: usize = 256;

/// `events.Actor`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EventActor {
    /// Image or container ID ("" for prune).
    #[serde(rename = "ID")]
    pub id: String,
    /// Attributes (labels, `name`, …), sorted by key.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// `events.Message` (engine-api.md §4.11).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EventMessage {
    /// Legacy: = Action.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Legacy: = Actor.ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Legacy: a container's image.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `image` or `container`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The action.
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    /// `local`.
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl EventMessage {
    /// An image event at `time_nano`.
    pub fn image(
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) -> EventMessage {
        EventMessage {
            status: action.to_string(),
            id: id.to_string(),
            from: String::new(),
            kind: "image".into(),
            action: action.to_string(),
            actor: EventActor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }

    /// The `prune` event: no Actor ID, attribute `reclaimed`.
    pub fn prune(reclaimed: u64, time_nano: i64) -> EventMessage {
        let mut m = EventMessage::image(
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
            time_nano,
        );
        m.status = "prune".into();
        m
    }
}

/// The current time, unix nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Labels of an image's runtime config, from its config bytes.
fn config_labels(config: &[u8]) -> Option<BTreeMap<String, String>> {
    crate::config::ImageConfig::from_json(config)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
}

fn familiar(canonical: &str) -> String {
    Reference::parse(canonical)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| canonical.to_string())
}

/// Maps log envelopes to Docker events, folding what it needs (labels of
/// existing images, container names) as it goes.
#[derive(Default)]
pub struct Mapper {
    labels: HashMap<String, Option<BTreeMap<String, String>>>,
    containers: HashMap<String, (String, String)>,
}

impl Mapper {
    /// A mapper primed with the store's current images and containers.
    pub fn from_store(store: &Store) -> crate::Result<Mapper> {
        store.read(|t| {
            let mut m = Mapper::default();
            for (id, row) in t.images()? {
                m.labels.insert(id, row.labels);
            }
            for (id, row) in t.containers()? {
                m.containers.insert(id, (row.name, row.image));
            }
            Ok(m)
        })
    }

    fn image_attrs(&self, id: &str, name: &str, labels: bool) -> BTreeMap<String, String> {
        let mut a = if labels {
            self.labels.get(id).cloned().flatten().unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        a.insert("name".into(), name.to_string());
        a
    }

    /// The Docker events `env` stands for; `next` is the event after it in
    /// the log, if known (a container's `create` names the image as its
    /// config gave it, which the write records right after the container).
    pub fn map(&mut self, env: &Envelope, next: Option<&Envelope>) -> Vec<EventMessage> {
        let t = env.time_unix_nanos;
        match &env.body {
            EventBody::ImageCreated { config, source, .. } => {
                let id = crate::digest::sha256_digest(config);
                self.labels.insert(id.clone(), config_labels(config));
                let action = match source {
                    ImageSource::Load => "load",
                    ImageSource::Import => "import",
                    _ => return Vec::new(),
                };
                vec![EventMessage::image(
                    action,
                    &id,
                    self.image_attrs(&id, &id, true),
                    t,
                )]
            }
            EventBody::ReferenceAdded {
                reference,
                image,
                tag_time: true,
            } => vec![EventMessage::image(
                "tag",
                image,
                self.image_attrs(image, &familiar(reference), true),
                t,
            )],
            EventBody::ReferenceRemoved { image, .. } => vec![EventMessage::image(
                "untag",
                image,
                self.image_attrs(image, image, true),
                t,
            )],
            EventBody::ImageDeleted { id } => {
                self.labels.remove(id);
                vec![EventMessage::image(
                    "delete",
                    id,
                    self.image_attrs(id, id, false),
                    t,
                )]
            }
            EventBody::ContainerCreated { id, name, image } => {
                let given = match next.map(|n| &n.body) {
                    Some(EventBody::ContainerConfigured { id: cid, config }) if cid == id => {
                        config_image(config)
                    }
                    _ => None,
                };
                let image = given.unwrap_or_else(|| image.clone());
                self.containers
                    .insert(id.clone(), (name.clone(), image.clone()));
                vec![container_event("create", id, name, &image, t)]
            }
            EventBody::ImagePushed {
                reference,
                image,
                repository,
                ..
            } => {
                let pushed = familiar(reference);
                vec![EventMessage::image(
                    "push",
                    &pushed,
                    self.image_attrs(image, &familiar(repository), true),
                    t,
                )]
            }
            EventBody::ImagePulled { reference, image } => {
                let repo = Reference::parse(reference)
                    .map(|r| r.familiar_name())
                    .unwrap_or_else(|_| reference.clone());
                vec![EventMessage::image(
                    "pull",
                    &familiar(reference),
                    self.image_attrs(image, &repo, true),
                    t,
                )]
            }
            EventBody::ContainerRemoved { id } => match self.containers.remove(id) {
                Some((name, image)) => vec![container_event("destroy", id, &name, &image, t)],
                None => vec![container_event("destroy", id, "", "", t)],
            },
            _ => Vec::new(),
        }
    }
}

/// The `Image` of a stored container config (`Config.Image`, as the client gave it).
fn config_image(config: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(rename = "Image")]
        image: String,
    }
    serde_json::from_slice::<Image>(config)
        .ok()
        .map(|c| c.image)
        .filter(|i| !i.is_empty())
}

fn container_event(action: &str, id: &str, name: &str, image: &str, t: i64) -> EventMessage {
    let mut m = EventMessage::image(
        action,
        id,
        BTreeMap::from([
            ("image".to_string(), image.to_string()),
            ("name".to_string(), name.to_string()),
        ]),
        t,
    );
    m.kind = "container".into();
    m.from = image.to_string();
    m
}

/// Where a broadcast event sits in the merged order.
#[derive(Clone, Copy, Debug)]
enum Pos {
    /// Mapped from the log envelope with this sequence number.
    Log(u64),
    /// The `n`th handler-emitted event.
    Ephemeral(u64),
}

#[derive(Clone, Debug)]
struct HubMsg {
    pos: Pos,
    msg: EventMessage,
}

struct HubState {
    tx: broadcast::Sender<Arc<HubMsg>>,
    /// (after_seq, n, event)
    ring: VecDeque<(u64, u64, EventMessage)>,
    next_ephemeral: u64,
    last_seq: u64,
}

/// The server's event hub.
pub struct Hub {
    state: Mutex<HubState>,
    ephemeral: mpsc::UnboundedSender<EventMessage>,
}

impl Hub {
    /// Start the hub's pump for `store`; it stops when `stop` turns true.
    pub fn start(
        store_events: broadcast::Receiver<Arc<[Envelope]>>,
        mapper: Mapper,
        head: u64,
        mut stop: watch::Receiver<bool>,
    ) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(4096);
        let (etx, mut erx) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState {
                tx,
                ring: VecDeque::new(),
                next_ephemeral: 0,
                last_seq: head,
            }),
            ephemeral: etx,
        });
        let me = hub.clone();
        let mut store_events = store_events;
        let mut mapper = mapper;
        tokio::spawn(async move {
            loop {
                // Store first: an envelope committed before a handler emitted
                // its own event is always queued before that event.
                tokio::select! {
                    biased;
                    r = store_events.recv() => match r {
                        Ok(batch) => {
                            for (i, env) in batch.iter().enumerate() {
                                let msgs = mapper.map(env, batch.get(i + 1));
                                let mut st = me.state.lock().unwrap();
                                st.last_seq = st.last_seq.max(env.seq);
                                for msg in msgs {
                                    let _ = st.tx.send(Arc::new(HubMsg { pos: Pos::Log(env.seq), msg }));
                                }
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    m = erx.recv() => match m {
                        Some(msg) => {
                            let mut st = me.state.lock().unwrap();
                            let n = st.next_ephemeral;
                            st.next_ephemeral += 1;
                            let after = st.last_seq;
                            st.ring.push_back((after, n, msg.clone()));
                            if st.ring.len() > RING {
                                st.ring.pop_front();
                            }
                            let _ = st.tx.send(Arc::new(HubMsg { pos: Pos::Ephemeral(n), msg }));
                        }
                        None => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        });
        hub
    }

    /// Emit an event the log does not record.
    pub fn emit(&self, msg: EventMessage) {
        let _ = self.ephemeral.send(msg);
    }
}

/// `since`/`until` (`<seconds>[.<nanos>]`), as dockerd's `eventTime`:
/// `None` for the zero time.
pub fn parse_event_time(value: &str) -> ApiResult<Option<i64>> {
    if value.is_empty() {
        return Ok(None);
    }
    let parse = |s: &str| -> ApiResult<i64> {
        s.parse::<i64>().map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            ApiError::new(
                500,
                format!(
                    "strconv.ParseInt: parsing {}: {why}",
                    crate::reference::go_quote(s)
                ),
            )
        })
    };
    let (secs, nanos) = match value.split_once('.') {
        Some((s, n)) => {
            let secs = parse(s)?;
            let frac = parse(n)?;
            let scale = 10f64.powi(9 - n.len() as i32);
            (secs, (frac as f64 * scale) as i64)
        }
        None => (parse(value)?, 0),
    };
    if secs == -1 {
        return Ok(None);
    }
    Ok(Some(
        secs.saturating_mul(1_000_000_000).saturating_add(nanos),
    ))
}

/// Go's `Args.FuzzyMatch`.
fn fuzzy(f: &Filters, key: &str, source: &str) -> bool {
    f.exact_match(key, source) || f.values(key).iter().any(|p| source.starts_with(p))
}

fn strip_tag(image: &str) -> String {
    match Reference::parse_normalized_named(image) {
        Ok(r) => r.familiar_name(),
        Err(_) => image.to_string(),
    }
}

/// dockerd's `events.Filter.Include`.
pub fn include(f: &Filters, ev: &EventMessage) -> bool {
    let attr = |k: &str| ev.actor.attributes.get(k).map(String::as_str).unwrap_or("");
    let name_match = |key: &str| fuzzy(f, key, &ev.actor.id) || fuzzy(f, key, attr("name"));
    let event_ok = if ["health_status", "exec_create", "exec_start"]
        .iter()
        .any(|v| f.values("event").contains(v))
    {
        fuzzy(f, "event", &ev.action)
    } else {
        f.exact_match("event", &ev.action)
    };
    let image_ok = {
        let name = if ev.kind == "image" {
            attr("name")
        } else {
            attr("image")
        };
        f.exact_match("image", &ev.actor.id)
            || f.exact_match("image", name)
            || f.exact_match("image", &strip_tag(&ev.actor.id))
            || f.exact_match("image", &strip_tag(name))
    };
    event_ok
        && f.exact_match("type", &ev.kind)
        && (!f.contains("scope") || f.exact_match("scope", &ev.scope))
        && [
            "daemon",
            "container",
            "plugin",
            "volume",
            "network",
            "node",
            "service",
            "secret",
            "config",
        ]
        .iter()
        .all(|k| name_match(k))
        && image_ok
        && (!f.contains("label") || f.match_labels("label", Some(&ev.actor.attributes)))
}

/// What one `/events` request asks for.
pub struct EventsRequest {
    /// Lower bound, unix nanoseconds.
    pub since: Option<i64>,
    /// Upper bound, unix nanoseconds.
    pub until: Option<i64>,
    /// Event filters.
    pub filters: Filters,
}

fn encode_event(ev: &EventMessage) -> Bytes {
    let mut b = json::marshal_html(ev);
    b.push(b'\n');
    Bytes::from(b)
}

/// Serve one events request: backlog, then live events until `until`, the
/// client leaving, or server shutdown.
pub fn serve_events(
    svc: crate::service::ImageService,
    hub: Arc<Hub>,
    req: EventsRequest,
    mut stop: watch::Receiver<bool>,
) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    // Subscribe before reading the log head, under the hub lock, so no event
    // is lost or doubled between history and live.
    let (mut live, ring, eph_mark) = {
        let st = hub.state.lock().unwrap();
        (st.tx.subscribe(), st.ring.clone(), st.next_ephemeral)
    };
    tokio::spawn(async move {
        let now = now_nanos();
        let only_past = req.until.is_some_and(|u| u < now);
        let head = match svc.store().head() {
            Ok(h) => h.next_seq.saturating_sub(1),
            Err(_) => return,
        };
        if req.since.is_some() || req.until.is_some() {
            let since = req.since.unwrap_or(i64::MIN);
            let until = req.until;
            let filters = req.filters.clone();
            let svc2 = svc.clone();
            let backlog = tokio::task::spawn_blocking(move || -> crate::Result<Vec<Bytes>> {
                let mut out = Vec::new();
                let mut mapper = Mapper::default();
                let mut ring = ring.into_iter().peekable();
                let push = |ev: &EventMessage, out: &mut Vec<Bytes>| {
                    if ev.time_nano >= since
                        && until.is_none_or(|u| ev.time_nano <= u)
                        && include(&filters, ev)
                    {
                        out.push(encode_event(ev));
                    }
                };
                while let Some((_, _, ev)) = ring.next_if(|(a, _, _)| *a == 0) {
                    push(&ev, &mut out);
                }
                let mut from = 1u64;
                while from <= head {
                    let to = (from + 999).min(head);
                    let mut chunk = svc2.store().events(from, to)?;
                    if to < head {
                        // One more, to see what follows the chunk's last event.
                        chunk.extend(svc2.store().events(to + 1, to + 1)?);
                    }
                    for (i, env) in chunk.iter().enumerate().filter(|(_, e)| e.seq <= to) {
                        for ev in mapper.map(env, chunk.get(i + 1)) {
                            push(&ev, &mut out);
                        }
                        while let Some((_, _, ev)) = ring.next_if(|(a, _, _)| *a <= env.seq) {
                            push(&ev, &mut out);
                        }
                    }
                    from = to + 1;
                }
                for (_, _, ev) in ring {
                    push(&ev, &mut out);
                }
                Ok(out)
            })
            .await;
            let Ok(Ok(backlog)) = backlog else { return };
            for b in backlog {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
        if only_past {
            return;
        }
        let deadline = req.until.map(|u| {
            let wait = std::time::Duration::from_nanos(u.saturating_sub(now_nanos()).max(0) as u64);
            tokio::time::Instant::now() + wait
        });
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = stop.changed() => return,
                _ = tx.closed() => return,
                m = live.recv() => match m {
                    Ok(m) => {
                        let fresh = match m.pos {
                            Pos::Log(seq) => seq > head,
                            Pos::Ephemeral(n) => n >= eph_mark,
                        };
                        if fresh && include(&req.filters, &m.msg) && tx.send(encode_event(&m.msg)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    super::stream::channel_body(rx)
}
