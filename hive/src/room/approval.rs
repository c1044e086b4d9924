//! `Server` rooms: the authority (a dedicated server) and join approval. A join waits,
//! held by the room, until the authority answers `ApproveJoin` or the approval timeout
//! passes; when the authority leaves, the room tells everyone and ends after a grace.

use std::time::{Duration, Instant};

use switchboard_protocol::{JoinMode, OpError, Properties, ResultCode, RoomEvent, RoomMode};

use super::handle::To;
use super::{Out, Room, err};

/// Most joins one room holds for approval at a time.
pub(crate) const MAX_PENDING: usize = 64;

/// Longest refusal reason an authority may give.
pub(crate) const MAX_REASON: usize = 256;

/// A join held for the authority's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub joiner: u64,
    pub id: u32,
    pub user_id: String,
    pub mode: JoinMode,
    pub expected_users: Vec<String>,
    pub properties: Properties,
    pub claims: Properties,
    pub deadline: Instant,
}

fn not_approved(message: impl Into<String>) -> OpError {
    err(ResultCode::JoinNotApproved, message)
}

impl Room {
    /// Whether `n` is the authority of a `Server` room.
    pub(crate) fn is_authority(&self, n: u32) -> bool {
        self.authority == Some(n)
    }

    /// Whether joins wait for the authority's answer.
    pub(crate) fn approval_needed(&self) -> bool {
        self.options.mode == RoomMode::Server && self.options.join_approval
    }

    /// Whether the room is ending (its authority left).
    pub(crate) fn closing(&self) -> bool {
        self.closing_at.is_some()
    }

    /// Holds a join and asks the authority.
    pub(crate) fn hold(&mut self, p: Pending) -> Vec<Out> {
        let authority = self.host();
        if authority == 0 || self.pending.len() >= MAX_PENDING {
            return vec![Out::Reply {
                to: To::Joiner(p.joiner),
                id: p.id,
                result: Err(err(
                    ResultCode::OperationLimitReached,
                    "too many joins are waiting for the room's approval; try again later",
                )),
            }];
        }
        self.next_request += 1;
        let request = self.next_request;
        let event = RoomEvent::JoinRequest {
            request,
            user_id: p.user_id.clone(),
            claims: p.claims.clone(),
            rejoin: self.actors.values().any(|a| a.user_id == p.user_id),
            properties: p.properties.clone(),
        };
        self.pending.insert(request, p);
        vec![Out::Event {
            to: vec![authority],
            event,
        }]
    }

    /// The authority's answer to held join `request`.
    pub(crate) fn answer(
        &mut self,
        sender: u32,
        request: u32,
        approve: bool,
        reason: String,
        now: Instant,
    ) -> Result<Vec<Out>, OpError> {
        if self.options.mode != RoomMode::Server {
            return Err(err(
                ResultCode::OperationInvalid,
                "joins are approved in Server rooms only",
            ));
        }
        if !self.is_authority(sender) {
            return Err(err(
                ResultCode::NotAllowed,
                "only the room's authority approves joins",
            ));
        }
        if reason.len() > MAX_REASON {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                format!("a refusal's reason has at most {MAX_REASON} bytes"),
            ));
        }
        let Some(p) = self.pending.remove(&request) else {
            return Err(err(
                ResultCode::InvalidRequestParameters,
                format!("no join {request} is waiting (answered, timed out, or gone)"),
            ));
        };
        if !approve {
            let reason = if reason.is_empty() {
                "refused by the room's authority".to_string()
            } else {
                reason
            };
            return Ok(vec![Out::Reply {
                to: To::Joiner(p.joiner),
                id: p.id,
                result: Err(not_approved(reason)),
            }]);
        }
        let r = self.join(&p.user_id, p.mode, &p.expected_users, p.properties, now);
        Ok(self.admission(p.joiner, p.id, p.user_id, r))
    }

    /// The held join of `joiner` is withdrawn (its connection closed): the authority is
    /// told, and an answer to it is refused as for any join not waiting.
    pub(crate) fn withdraw(&mut self, joiner: u64) -> Vec<Out> {
        let Some(request) = self
            .pending
            .iter()
            .find(|(_, p)| p.joiner == joiner)
            .map(|(r, _)| *r)
        else {
            return Vec::new();
        };
        self.pending.remove(&request);
        match self.host() {
            0 => Vec::new(),
            authority => vec![Out::Event {
                to: vec![authority],
                event: RoomEvent::JoinWithdrawn { request },
            }],
        }
    }

    /// Refuses held joins whose approval timeout has passed.
    pub(crate) fn expire_pending(&mut self, now: Instant) -> Vec<Out> {
        let late: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(r, _)| *r)
            .collect();
        let timeout = self.limits.approval_timeout;
        late.into_iter()
            .filter_map(|r| self.pending.remove(&r))
            .map(|p| Out::Reply {
                to: To::Joiner(p.joiner),
                id: p.id,
                result: Err(not_approved(format!(
                    "the room's authority did not answer within {timeout:?}"
                ))),
            })
            .collect()
    }

    /// Refuses every held join.
    pub(crate) fn refuse_all_pending(&mut self, why: &str) -> Vec<Out> {
        std::mem::take(&mut self.pending)
            .into_values()
            .map(|p| Out::Reply {
                to: To::Joiner(p.joiner),
                id: p.id,
                result: Err(not_approved(why)),
            })
            .collect()
    }

    /// The authority left: tell everyone, refuse what waits, end after the grace.
    pub(crate) fn start_closing(&mut self, now: Instant) -> Vec<Out> {
        if self.closing_at.is_some() {
            return Vec::new();
        }
        let grace = self.limits.authority_grace;
        self.closing_at = Some(now + grace);
        self.options.is_open = false;
        let mut out = self.refuse_all_pending("the room's authority left");
        out.push(Out::Event {
            to: self.active_actors(),
            event: RoomEvent::AuthorityLeft {
                closes_in_ms: u32::try_from(grace.as_millis()).unwrap_or(u32::MAX),
            },
        });
        out.push(Out::Publish);
        out
    }

    /// The earliest approval deadline.
    pub(crate) fn next_approval_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

/// Defaults of the `Server` room limits.
pub(crate) const APPROVAL_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const AUTHORITY_GRACE: Duration = Duration::from_secs(5);
