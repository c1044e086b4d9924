//! Webhooks: the game server tells the studio's backend what happens in its rooms, with
//! a POST of a JSON body per room lifecycle change (Photon's PathCreate, PathJoin,
//! PathLeave, PathClose), signed with an HMAC of the body.
//!
//! Never in a room's way: a room only puts a hook in a bounded queue (a full queue drops
//! it, counted and logged); one task per game server sends them in order (so per room,
//! hooks arrive in the order they happened), retrying with backoff up to a limit. A
//! stopping game server flushes what it still holds within its drain grace.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_protocol::{GameToClient, ResultCode, RoomEvent, encode_frame};
use switchboard_transport::LogLimit;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::member::{MemberRef, Outbound};

/// Where and how to send the hooks.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The backend's base URL; a hook goes to `base_url` + `/` + its path.
    pub base_url: String,
    /// The key of the `X-Switchboard-Signature` HMAC.
    pub secret: Vec<u8>,
    /// Extra headers on every request (an API key, say).
    pub headers: Vec<(String, String)>,
    /// Paths other than the hooks' names (`GameCreate` → `rooms/create`, say), by hook
    /// name; an empty path turns that hook off (Photon's empty path).
    pub paths: std::collections::HashMap<String, String>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts per hook before it is given up (counted and logged).
    pub max_attempts: u32,
    /// Hooks held per game server before new ones are dropped.
    pub queue: usize,
    /// Tell the sender of a forwarded event the backend never accepted, with
    /// `ErrorInfo(ExternalHttpCallFailed)` (Photon's HasErrorInfo).
    pub error_info: bool,
    /// How often a room sends its batched forwarded events.
    pub batch_interval: Duration,
    /// Persistent rooms (Photon's IsPersistent): a room that ends with actors sends its
    /// whole state in its `GameClose` (`Type` `Save`), and a room is created, or joined
    /// when it is not here, only after the backend's answer to `GameCreate` (`Type`
    /// `Create` or `Load`), whose `State` it resumes from.
    pub persistent: bool,
}

/// The largest answer to a `GameCreate` read: a saved room within a game server's limits
/// (its `Joined` under 512 KiB, a cache of 1 MiB, a snapshot and replay of 256 KiB each,
/// 1 MiB of objects) takes a few times that as JSON at most.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The hooks' names (their default paths).
pub const HOOKS: [&str; 7] = [
    "GameCreate",
    "GameJoin",
    "GameLeave",
    "GameClose",
    "GameEvent",
    "GameEvents",
    "GameProperties",
];

impl WebhookConfig {
    /// The path of hook `name`: configured, else its name; `None` when turned off.
    pub fn path<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let path = self.paths.get(name).map_or(name, String::as_str);
        let path = path.trim_matches('/');
        (!path.is_empty()).then_some(path)
    }

    /// A configuration with the defaults: 2 s per attempt, 5 attempts, 4096 queued.
    pub fn new(base_url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        WebhookConfig {
            base_url: base_url.into(),
            secret: secret.into(),
            headers: Vec::new(),
            paths: std::collections::HashMap::new(),
            timeout: Duration::from_secs(2),
            max_attempts: 5,
            queue: 4096,
            error_info: false,
            batch_interval: Duration::from_secs(1),
            persistent: false,
        }
    }
}

/// Counters of the webhooks.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Hooks the backend accepted (a 2xx answer).
    pub delivered: AtomicU64,
    /// Attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Hooks given up after their last attempt.
    pub failed: AtomicU64,
    /// Hooks dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// One hook to send.
#[derive(Debug)]
pub(crate) struct Hook {
    path: &'static str,
    body: serde_json::Value,
    /// Who to tell if it is given up (a forwarded event's sender, with HasErrorInfo).
    notify: Option<MemberRef>,
    /// Who waits until it is delivered or given up (a saving room).
    done: Option<oneshot::Sender<()>>,
}

/// Which room a hook is about: its name, and the id of this incarnation of it (random,
/// new each time a room of that name starts on a game server), so `RoomId` + `Seq` is
/// unique across game servers and across saves and loads.
#[derive(Debug, Clone)]
pub(crate) struct HookRoom {
    pub game: String,
    pub id: String,
}

impl HookRoom {
    pub(crate) fn new(game: &str) -> HookRoom {
        HookRoom {
            game: game.to_string(),
            id: format!("{:016x}", rand::random::<u64>()),
        }
    }
}

/// Why the backend's answer to a `GameCreate` asked before a room exists does not let
/// the room be made.
#[derive(Debug)]
pub(crate) enum AskError {
    /// No answer, an error status, or not the expected JSON.
    Failed(String),
    /// The backend answered with a non-zero `ResultCode`.
    Refused(String),
}

/// A property value in JSON: null, booleans, numbers and strings as such; bytes as
/// `{"Bytes": "<base64>"}`.
fn value_json(v: &switchboard_protocol::Value) -> serde_json::Value {
    use base64::Engine;
    use switchboard_protocol::Value;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Str(s) => s.clone().into(),
        Value::Bytes(b) => serde_json::json!({
            "Bytes": base64::engine::general_purpose::STANDARD.encode(b)
        }),
    }
}

/// A forwarded event as its webhook carries it.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    pub actor: u32,
    pub user_id: String,
    pub code: u8,
    pub data: bytes::Bytes,
    pub time: u64,
}

impl Forwarded {
    pub(crate) fn new(actor: u32, user_id: String, code: u8, data: bytes::Bytes) -> Forwarded {
        Forwarded {
            actor,
            user_id,
            code,
            data,
            time: unix_ms(),
        }
    }

    fn json(&self) -> serde_json::Value {
        use base64::Engine;
        serde_json::json!({
            "ActorNr": self.actor,
            "UserId": self.user_id,
            "EvCode": self.code,
            "Data": base64::engine::general_purpose::STANDARD.encode(&self.data),
            "Time": self.time,
        })
    }
}

/// The way in to the sender task.
#[derive(Debug, Clone)]
pub(crate) struct Webhooks {
    tx: mpsc::Sender<Hook>,
    stats: Arc<WebhookStats>,
    server_id: Arc<str>,
    /// Hooks queued or being sent.
    pending: Arc<AtomicU64>,
    error_info: bool,
    batch_interval: Duration,
    /// The HTTP client and settings, for the hooks asked before a room exists.
    client: Option<reqwest::Client>,
    config: Arc<WebhookConfig>,
}

static DROP_LOG: LogLimit = LogLimit::new(Duration::from_secs(1));
static FAIL_LOG: LogLimit = LogLimit::new(Duration::from_secs(1));

/// The hex HMAC-SHA256 of `body` under `key`, as sent in `X-Switchboard-Signature`
/// (`sha256=<hex>`).
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Webhooks {
    /// Starts the sender task; returns the way in and the task (done once every sender
    /// is dropped and the queue is empty).
    pub(crate) fn start(
        config: WebhookConfig,
        server_id: &str,
        stats: Arc<WebhookStats>,
    ) -> (Webhooks, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let pending = Arc::new(AtomicU64::new(0));
        let (error_info, batch_interval) = (config.error_info, config.batch_interval);
        let client = match reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirect is an answer from the wrong place (and would turn the POST into
            // a GET elsewhere): it counts as a failure.
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(switchboard_transport::https_client_config())
            .build()
        {
            Ok(c) => Some(c),
            Err(e) => {
                warn!(error = %e, "webhooks disabled: no HTTP client");
                None
            }
        };
        let config = Arc::new(config);
        let task = tokio::spawn(send_loop(
            config.clone(),
            client.clone(),
            rx,
            stats.clone(),
            pending.clone(),
        ));
        (
            Webhooks {
                tx,
                stats,
                server_id: server_id.into(),
                pending,
                error_info,
                batch_interval,
                client,
                config,
            },
            task,
        )
    }

    /// Hooks queued or being sent.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Whether rooms are persistent.
    pub(crate) fn persistent(&self) -> bool {
        self.config.persistent
    }

    /// The longest a queued hook may take to be delivered or given up once it is sent:
    /// every attempt timing out, with the backoff between them.
    pub(crate) fn delivery_bound(&self) -> Duration {
        let attempts = self.config.max_attempts.max(1);
        (self.config.timeout + Duration::from_secs(2)) * attempts
    }

    /// A room's end with its whole state (`GameClose`, `Type` `Save`); the receiver hears
    /// when it was delivered or given up.
    pub(crate) fn save(
        &self,
        room: &HookRoom,
        seq: u64,
        state: serde_json::Value,
    ) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let body = serde_json::json!({
            "Type": "Save",
            "GameId": room.game,
            "RoomId": room.id,
            "GameServer": &*self.server_id,
            "Seq": seq,
            "ActorNr": 0,
            "UserId": "",
            "State": state,
            "Time": unix_ms(),
        });
        self.push_hook(Hook {
            path: "GameClose",
            body,
            notify: None,
            done: Some(done),
        });
        rx
    }

    /// Asks the backend before a room exists (`GameCreate` with `Type` `Create` for a
    /// create, `Load` for a join of a room that is not here), one attempt: its `State`,
    /// if it answered one.
    pub(crate) async fn ask(
        &self,
        kind: &'static str,
        room: &HookRoom,
        user_id: &str,
    ) -> Result<Option<serde_json::Value>, AskError> {
        let Some(client) = &self.client else {
            return Err(AskError::Failed("no HTTP client".into()));
        };
        // A create hook turned off: nothing is ever loaded.
        let Some(path) = self.config.path("GameCreate") else {
            return Ok(None);
        };
        let body = serde_json::json!({
            "Type": kind,
            "GameId": room.game,
            "RoomId": room.id,
            "GameServer": &*self.server_id,
            "Seq": 1,
            "ActorNr": 0,
            "UserId": user_id,
            "Time": unix_ms(),
        });
        let body = serde_json::to_vec(&body).expect("JSON values serialize");
        let url = format!("{}/{path}", self.config.base_url.trim_end_matches('/'));
        let mut req = client
            .post(&url)
            .header("Content-Type", "application/json")
            .header(
                "X-Switchboard-Signature",
                signature(&self.config.secret, &body),
            )
            .body(body);
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        let failed = |why: String| {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            AskError::Failed(why)
        };
        let resp = req.send().await.map_err(|e| failed(cause(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(failed(format!("status {status}")));
        }
        // Read bounded: a backend's answer is input like any other.
        let mut resp = resp;
        let mut text = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(cause(&e)))? {
            if text.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(failed(format!(
                    "the answer is over {MAX_ANSWER_BYTES} bytes"
                )));
            }
            text.extend_from_slice(&chunk);
        }
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let answer: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| AskError::Failed(format!("the answer is not JSON ({e})")))?;
        // Strict: a refusal must never read as a success.
        if !answer.is_object() {
            return Err(AskError::Failed("the answer is not a JSON object".into()));
        }
        let code = match answer.get("ResultCode") {
            Some(c) => c.as_i64().ok_or_else(|| {
                AskError::Failed(format!("the answer's ResultCode {c} is not an integer"))
            })?,
            None => return Err(AskError::Failed("the answer has no ResultCode".into())),
        };
        if code != 0 {
            let message = answer
                .get("Message")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string();
            return Err(AskError::Refused(format!(
                "the backend refused (ResultCode {code}): {message}"
            )));
        }
        Ok(answer.get("State").filter(|s| !s.is_null()).cloned())
    }

    /// Waits (at most `within`) until every queued hook was delivered or given up.
    pub(crate) async fn flush(&self, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        while self.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether forwarded events' failures go back to their senders.
    pub(crate) fn error_info(&self) -> bool {
        self.error_info
    }

    /// How often rooms send their batched events.
    pub(crate) fn batch_interval(&self) -> Duration {
        self.batch_interval
    }

    /// A forwarded event, at once (`GameEvent`).
    pub(crate) fn event(
        &self,
        room: &HookRoom,
        seq: u64,
        e: &Forwarded,
        notify: Option<MemberRef>,
    ) {
        let mut body = e.json();
        body["Type"] = "Event".into();
        body["GameId"] = room.game.as_str().into();
        body["RoomId"] = room.id.as_str().into();
        body["GameServer"] = (&*self.server_id).into();
        body["Seq"] = seq.into();
        self.push_notify("GameEvent", body, notify);
    }

    /// A forwarded property change (`GameProperties`).
    pub(crate) fn properties(
        &self,
        room: &HookRoom,
        seq: u64,
        actor: u32,
        user_id: &str,
        target: u32,
        properties: &switchboard_protocol::Properties,
    ) {
        let props: serde_json::Map<String, serde_json::Value> = properties
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        let body = serde_json::json!({
            "Type": "Properties",
            "GameId": room.game,
            "RoomId": room.id,
            "GameServer": &*self.server_id,
            "Seq": seq,
            "ActorNr": actor,
            "UserId": user_id,
            "TargetActor": target,
            "Properties": props,
            "Time": unix_ms(),
        });
        self.push("GameProperties", body);
    }

    /// A room's batched events, in order (`GameEvents`).
    pub(crate) fn events(&self, room: &HookRoom, seq: u64, events: &[Forwarded]) {
        let body = serde_json::json!({
            "Type": "Events",
            "GameId": room.game,
            "RoomId": room.id,
            "GameServer": &*self.server_id,
            "Seq": seq,
            "Events": events.iter().map(Forwarded::json).collect::<Vec<_>>(),
            "Time": unix_ms(),
        });
        self.push("GameEvents", body);
    }

    /// Queues a hook; never waits.
    fn push(&self, path: &'static str, body: serde_json::Value) {
        self.push_notify(path, body, None);
    }

    fn push_notify(&self, path: &'static str, body: serde_json::Value, notify: Option<MemberRef>) {
        self.push_hook(Hook {
            path,
            body,
            notify,
            done: None,
        });
    }

    fn push_hook(&self, hook: Hook) {
        // A hook turned off is not sent (a saving room does not wait for it).
        if self.config.path(hook.path).is_none() {
            return;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(hook).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(left_out) = DROP_LOG.check(std::time::Instant::now()) {
                warn!(left_out, "webhook queue full: hooks dropped");
            }
        }
    }

    /// A room lifecycle hook: `kind` is `Create`, `Join`, `Leave` or `Close`.
    pub(crate) fn room(
        &self,
        kind: &'static str,
        room: &HookRoom,
        seq: u64,
        actor: u32,
        user_id: &str,
        reason: Option<&str>,
    ) {
        let mut body = serde_json::json!({
            "Type": kind,
            "GameId": room.game,
            "RoomId": room.id,
            "GameServer": &*self.server_id,
            "Seq": seq,
            "ActorNr": actor,
            "UserId": user_id,
            "Time": unix_ms(),
        });
        if let Some(reason) = reason {
            body["Reason"] = reason.into();
        }
        let path = match kind {
            "Create" => "GameCreate",
            "Join" => "GameJoin",
            "Leave" => "GameLeave",
            _ => "GameClose",
        };
        self.push(path, body);
    }
}

/// An HTTP failure with its cause (reqwest's message alone says only "error sending
/// request").
fn cause(e: &reqwest::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    why
}

async fn send_loop(
    config: Arc<WebhookConfig>,
    client: Option<reqwest::Client>,
    mut rx: mpsc::Receiver<Hook>,
    stats: Arc<WebhookStats>,
    pending: Arc<AtomicU64>,
) {
    let Some(client) = client else {
        return;
    };
    let base = config.base_url.trim_end_matches('/').to_string();
    while let Some(hook) = rx.recv().await {
        let body = serde_json::to_vec(&hook.body).expect("JSON values serialize");
        let sig = signature(&config.secret, &body);
        let Some(path) = config.path(hook.path) else {
            continue;
        };
        let url = format!("{base}/{path}");
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=config.max_attempts.max(1) {
            let mut req = client
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-Switchboard-Signature", &sig)
                .body(body.clone());
            for (k, v) in &config.headers {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                outcome if attempt == config.max_attempts.max(1) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = &hook.notify {
                        let _ = m.queue(Outbound::Frame(encode_frame(&GameToClient::Event(
                            RoomEvent::ErrorInfo {
                                code: ResultCode::ExternalHttpCallFailed.to_wire(),
                                message: "the backend did not accept a forwarded event".into(),
                            },
                        ))));
                    }
                    if let Some(left_out) = FAIL_LOG.check(std::time::Instant::now()) {
                        let why = match outcome {
                            Ok(r) => format!("status {}", r.status()),
                            Err(e) => e.to_string(),
                        };
                        warn!(left_out, %url, %why, "webhook given up after its last attempt");
                    }
                }
                _ => {
                    stats.retried.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        if let Some(done) = hook.done {
            let _ = done.send(());
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}
