//! Stable numeric tables: operation result codes and QUIC application close codes.
//!
//! Result codes follow Photon's numbering where Photon has the same error, so that
//! Photon users recognise them (`32767` counting down for LoadBalancing errors, small
//! negative numbers for generic ones). The numbers are part of the wire protocol and
//! are never reused; `docs/PROTOCOL.md` carries the same table.

use std::fmt;

/// The outcome of an operation, carried as an `i16` on the wire.
///
/// Unknown numbers decode without error ([`ResultCode::from_wire`] returns `None`), so an
/// older client can still show the code a newer server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ResultCode {
    /// The operation succeeded.
    Ok = 0,
    /// An unexpected failure inside the server.
    InternalServerError = -1,
    /// The operation is not known or not allowed on this kind of server.
    OperationInvalid = -2,
    /// The operation is not allowed in the connection's current state (for example before
    /// `Authenticate`, or a second `Authenticate`).
    OperationNotAllowedInCurrentState = -3,
    /// A parameter is missing, malformed or out of range.
    InvalidRequestParameters = -6,
    /// The client speaks a protocol version this server does not.
    UnsupportedProtocolVersion = -10,
    /// Credentials or a join ticket were rejected.
    InvalidAuthentication = 32767,
    /// A game with that name already exists.
    GameIdAlreadyExists = 32766,
    /// The game is full.
    GameFull = 32765,
    /// The game is closed (`IsOpen = false`).
    GameClosed = 32764,
    /// No game server is available to host a game.
    ServerFull = 32762,
    /// No game matched a `JoinRandomGame` request.
    NoMatchFound = 32760,
    /// No game with that name exists.
    GameDoesNotExist = 32758,
    /// The custom authentication service refused the user or could not be reached.
    CustomAuthenticationFailed = 32755,
    /// A join ticket or token has expired.
    AuthenticationTokenExpired = 32753,
    /// The user is already an active member of the game.
    JoinFailedPeerAlreadyJoined = 32750,
    /// `JoinOnly` for a user who has an inactive actor in the game (rejoin instead).
    JoinFailedFoundInactiveJoiner = 32749,
    /// A rejoin found no inactive actor of this user.
    JoinFailedWithRejoinerNotFound = 32748,
    /// A limit of the operation was exceeded (sizes, counts).
    OperationLimitReached = 32743,
    /// A webhook the operation needed failed (in `ErrorInfo`: a forwarded event the
    /// backend never accepted).
    ExternalHttpCallFailed = 32744,
    /// The reservation for expected users does not fit the room.
    SlotError = 32742,
    /// The room's event cache overflowed; the room was closed.
    EventCacheExceeded = 32739,
    /// A join ticket was issued for another game server.
    ExpectedGsCheckFailure = 32738,
    /// A join ticket was issued for another game.
    ExpectedGameCheckFailure = 32737,
    /// (Switchboard's own codes count down from 32699, below Photon's.) The game server
    /// that hosts the game is not available: it stopped reporting to the master, or it is
    /// going offline, or (answered by a game server) it takes no new games. Go back to the
    /// master and ask again: it routes around the server.
    GameServerUnavailable = 32699,
    /// (Cluster link only.) A live game server is already registered under this id from
    /// another address.
    ServerIdInUse = 32698,
    /// The connection sent operations faster than its rate limit allows; try again a
    /// little later.
    RateLimited = 32697,
    /// The user holds as many open reservations (joins issued and not yet completed) as
    /// it may.
    TooManyReservations = 32696,
    /// The actor may not change that: another actor's properties, or (unless the room's
    /// policy is open) the room's properties and settings when it is not the master
    /// client.
    NotAllowed = 32695,
    /// A join (CreateGame, JoinGame, JoinRandomGame) is already in progress on this
    /// master connection: follow its redirect (or let its ticket expire) first.
    JoinInProgress = 32694,
    /// The game server was asked for other room options or expected users than the
    /// master granted with the ticket.
    TicketTermsMismatch = 32693,
    /// The room's authority refused the join, or did not answer it in time.
    JoinNotApproved = 32692,
    /// The studio's backend answered a persistent room's saved state that is not a state
    /// this game server can resume (the message says what is wrong).
    InvalidSavedState = 32691,
}

impl ResultCode {
    /// Every defined code, in table order.
    pub const ALL: [ResultCode; 33] = [
        ResultCode::Ok,
        ResultCode::InternalServerError,
        ResultCode::OperationInvalid,
        ResultCode::OperationNotAllowedInCurrentState,
        ResultCode::InvalidRequestParameters,
        ResultCode::UnsupportedProtocolVersion,
        ResultCode::InvalidAuthentication,
        ResultCode::GameIdAlreadyExists,
        ResultCode::GameFull,
        ResultCode::GameClosed,
        ResultCode::ServerFull,
        ResultCode::NoMatchFound,
        ResultCode::GameDoesNotExist,
        ResultCode::CustomAuthenticationFailed,
        ResultCode::AuthenticationTokenExpired,
        ResultCode::JoinFailedPeerAlreadyJoined,
        ResultCode::JoinFailedFoundInactiveJoiner,
        ResultCode::JoinFailedWithRejoinerNotFound,
        ResultCode::ExternalHttpCallFailed,
        ResultCode::OperationLimitReached,
        ResultCode::SlotError,
        ResultCode::EventCacheExceeded,
        ResultCode::ExpectedGsCheckFailure,
        ResultCode::ExpectedGameCheckFailure,
        ResultCode::GameServerUnavailable,
        ResultCode::ServerIdInUse,
        ResultCode::RateLimited,
        ResultCode::TooManyReservations,
        ResultCode::NotAllowed,
        ResultCode::JoinInProgress,
        ResultCode::TicketTermsMismatch,
        ResultCode::JoinNotApproved,
        ResultCode::InvalidSavedState,
    ];

    /// The number sent on the wire.
    pub const fn to_wire(self) -> i16 {
        self as i16
    }

    /// The code for a wire number, or `None` for a number this version does not know.
    pub fn from_wire(n: i16) -> Option<ResultCode> {
        Self::ALL.into_iter().find(|c| c.to_wire() == n)
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", self.to_wire())
    }
}

/// QUIC application close codes (the `error_code` of a CONNECTION_CLOSE frame of type
/// 0x1d). The close reason bytes carry a human-readable UTF-8 text a client can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CloseCode {
    /// Normal close: the peer is done.
    Normal = 0,
    /// The peer sent bytes that do not decode, a frame over the size limit, or a message
    /// that is not allowed at that point of the protocol.
    ProtocolViolation = 1,
    /// The `Hello` carried a protocol version this side does not speak.
    UnsupportedVersion = 2,
    /// Authentication failed or did not happen in time.
    AuthenticationFailed = 3,
    /// The peer did not read fast enough; its outgoing queue overflowed.
    SlowConsumer = 4,
    /// The server is shutting down.
    ServerShutdown = 5,
    /// An unexpected failure inside the server.
    InternalError = 6,
    /// (Cluster link.) Another registration took this game server's id: the operator
    /// asked it to replace this one.
    Displaced = 7,
    /// The room the connection was in has ended (its dedicated server left).
    RoomClosed = 8,
}

impl CloseCode {
    /// The number sent on the wire.
    pub const fn to_wire(self) -> u32 {
        self as u32
    }

    /// The code for a wire number, or `None` for a number this version does not know.
    pub fn from_wire(n: u64) -> Option<CloseCode> {
        use CloseCode::*;
        [
            Normal,
            ProtocolViolation,
            UnsupportedVersion,
            AuthenticationFailed,
            SlowConsumer,
            ServerShutdown,
            InternalError,
            Displaced,
            RoomClosed,
        ]
        .into_iter()
        .find(|c| u64::from(c.to_wire()) == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photon_numbers_are_kept() {
        assert_eq!(ResultCode::InvalidAuthentication.to_wire(), 32767);
        assert_eq!(ResultCode::GameIdAlreadyExists.to_wire(), 32766);
        assert_eq!(ResultCode::ServerFull.to_wire(), 32762);
        assert_eq!(ResultCode::GameDoesNotExist.to_wire(), 32758);
        assert_eq!(ResultCode::AuthenticationTokenExpired.to_wire(), 32753);
        assert_eq!(ResultCode::ExpectedGsCheckFailure.to_wire(), 32738);
        assert_eq!(ResultCode::ExpectedGameCheckFailure.to_wire(), 32737);
        assert_eq!(ResultCode::OperationNotAllowedInCurrentState.to_wire(), -3);
    }

    #[test]
    fn wire_numbers_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ResultCode::ALL {
            assert!(seen.insert(c.to_wire()), "{c:?} reuses a number");
            assert_eq!(ResultCode::from_wire(c.to_wire()), Some(c));
        }
        assert_eq!(ResultCode::from_wire(1234), None);
        assert_eq!(CloseCode::from_wire(4), Some(CloseCode::SlowConsumer));
        assert_eq!(CloseCode::from_wire(99), None);
    }
}
