//! Who may create or join a room on this game server, before the room itself is asked:
//! the server's state, the connection's, the ticket and its claims against the request.
//! Sans-IO: the keys, the time and the state come in as values.

use switchboard_protocol::messages::common::{check_expected_users, check_game_name};
use switchboard_protocol::{
    OpError, ResultCode, RoomOptions, ServerState, TicketAction, TicketClaims, TicketKeys,
    terms_digest,
};

/// What the game server knows when a create or join arrives.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    /// The ticket keys from the master (`None` before the first registration: no
    /// ticket can be genuine then).
    pub keys: Option<&'a TicketKeys>,
    /// This server's id (tickets name it).
    pub server_id: &'a str,
    /// This server's state.
    pub state: ServerState,
    /// Now, in Unix milliseconds (ticket expiry).
    pub now_ms: u64,
    /// Whether the connection is in a room already.
    pub in_room: bool,
}

/// A create or join, as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Create or join.
    pub action: TicketAction,
    /// The ticket from the master.
    pub ticket: &'a [u8],
    /// The game's name.
    pub game: &'a str,
    /// The room options (a create only).
    pub options: Option<&'a RoomOptions>,
    /// The expected users.
    pub expected_users: &'a [String],
}

fn code(code: ResultCode, message: impl Into<String>) -> OpError {
    OpError::new(code, message)
}

/// Checks a create or join, in the documented order (PROTOCOL.md 6.1, 8, 9.3): the
/// server's state, the connection's, the game name, the ticket (genuine, unexpired, for
/// this server, for this game and operation), the expected users, and the terms the
/// master granted. Returns the ticket's claims.
pub fn admit(gate: Gate<'_>, req: Request<'_>) -> Result<TicketClaims, OpError> {
    let claims = ticket(gate, req)?;
    terms(&claims, req)?;
    Ok(claims)
}

/// The first part of [`admit`]: everything up to a genuine ticket for this request.
/// (What fails after it, the master hears of: the user is no longer on its way.)
pub fn ticket(gate: Gate<'_>, req: Request<'_>) -> Result<TicketClaims, OpError> {
    match (req.action, gate.state) {
        (TicketAction::Create, ServerState::Normal) => {}
        (TicketAction::Create, state) => {
            return Err(code(
                ResultCode::GameServerUnavailable,
                format!(
                    "this game server takes no new games (state {state:?}); ask the master again"
                ),
            ));
        }
        (TicketAction::Join, ServerState::Offline) => {
            return Err(code(
                ResultCode::GameServerUnavailable,
                "this game server is going offline; ask the master again",
            ));
        }
        (TicketAction::Join, _) => {}
    }
    if gate.in_room {
        return Err(code(
            ResultCode::OperationNotAllowedInCurrentState,
            "already in a game; leave it first",
        ));
    }
    check_game_name(req.game)?;
    // Without keys from a master no ticket can be genuine.
    let keys = gate
        .keys
        .ok_or_else(|| code(ResultCode::InvalidAuthentication, "no ticket keys yet"))?;
    let claims = keys
        .verify(req.ticket, gate.now_ms, gate.server_id)
        .map_err(|e| code(e.code(), e.to_string()))?;
    claims
        .check_game(req.game, req.action)
        .map_err(|e| code(e.code(), e.to_string()))?;
    Ok(claims)
}

/// The second part of [`admit`]: the expected users, and the terms the master granted
/// with the ticket.
pub fn terms(claims: &TicketClaims, req: Request<'_>) -> Result<(), OpError> {
    check_expected_users(req.expected_users)?;
    if claims.terms != terms_digest(req.options, req.expected_users, &claims.user_id) {
        return Err(code(
            ResultCode::TicketTermsMismatch,
            "the room options or expected users differ from what the master granted; send what you sent to the master",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::Properties;

    fn keys() -> TicketKeys {
        TicketKeys::single(1, b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    fn ticket(keys: &TicketKeys, action: TicketAction, options: Option<&RoomOptions>) -> Vec<u8> {
        keys.sign(TicketClaims {
            user_id: "u".into(),
            game: "g".into(),
            game_server: "gs".into(),
            action,
            expires_at_ms: 1_000,
            key_id: 1,
            terms: terms_digest(options, &[], "u"),
            authority: false,
            claims: Properties::new(),
        })
        .to_vec()
    }

    fn gate(keys: &TicketKeys) -> Gate<'_> {
        Gate {
            keys: Some(keys),
            server_id: "gs",
            state: ServerState::Normal,
            now_ms: 500,
            in_room: false,
        }
    }

    fn refused(r: Result<TicketClaims, OpError>) -> ResultCode {
        r.unwrap_err().result_code().unwrap()
    }

    #[test]
    fn a_genuine_create_and_join_pass_and_each_check_has_its_code() {
        let k = keys();
        let options = RoomOptions::default();
        let create = ticket(&k, TicketAction::Create, Some(&options));
        let req = Request {
            action: TicketAction::Create,
            ticket: &create,
            game: "g",
            options: Some(&options),
            expected_users: &[],
        };
        assert_eq!(admit(gate(&k), req).unwrap().user_id, "u");
        // The server's state comes first, then the connection's.
        let draining = Gate {
            state: ServerState::OutOfRotation,
            in_room: true,
            ..gate(&k)
        };
        assert_eq!(
            refused(admit(draining, req)),
            ResultCode::GameServerUnavailable
        );
        let in_room = Gate {
            in_room: true,
            ..gate(&k)
        };
        assert_eq!(
            refused(admit(in_room, req)),
            ResultCode::OperationNotAllowedInCurrentState
        );
        // The ticket: no keys, expired, another server, another game or operation.
        let no_keys = Gate {
            keys: None,
            ..gate(&k)
        };
        assert_eq!(
            refused(admit(no_keys, req)),
            ResultCode::InvalidAuthentication
        );
        let late = Gate {
            now_ms: 1_000,
            ..gate(&k)
        };
        assert_eq!(
            refused(admit(late, req)),
            ResultCode::AuthenticationTokenExpired
        );
        let elsewhere = Gate {
            server_id: "gs-2",
            ..gate(&k)
        };
        assert_eq!(
            refused(admit(elsewhere, req)),
            ResultCode::ExpectedGsCheckFailure
        );
        let as_join = Request {
            action: TicketAction::Join,
            options: None,
            ..req
        };
        assert_eq!(
            refused(admit(gate(&k), as_join)),
            ResultCode::ExpectedGameCheckFailure
        );
        // Terms: other options than granted.
        let bigger = RoomOptions {
            max_players: 5,
            ..RoomOptions::default()
        };
        let other = Request {
            options: Some(&bigger),
            ..req
        };
        assert_eq!(
            refused(admit(gate(&k), other)),
            ResultCode::TicketTermsMismatch
        );
        // A join is refused only by an Offline server.
        let join = ticket(&k, TicketAction::Join, None);
        let req = Request {
            action: TicketAction::Join,
            ticket: &join,
            game: "g",
            options: None,
            expected_users: &[],
        };
        let draining = Gate {
            state: ServerState::OutOfRotation,
            ..gate(&k)
        };
        assert!(admit(draining, req).is_ok());
        let offline = Gate {
            state: ServerState::Offline,
            ..gate(&k)
        };
        assert_eq!(
            refused(admit(offline, req)),
            ResultCode::GameServerUnavailable
        );
    }
}
