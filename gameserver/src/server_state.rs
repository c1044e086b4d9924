//! The game server's state (Normal, OutOfRotation, Offline), owned by the game server and
//! reported to the master. Operators set it through the master's admin API (forwarded
//! here), through a watched state file (Photon's `ServerState.txt`: line 1 the state,
//! optional line 2 the seconds until an Offline server stops), or with SIGTERM (drain).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::{RoomEvent, ServerState};
use tracing::{info, warn};

use crate::Shared;

/// Seconds an Offline server keeps running when no time is given (Photon's 15 minutes).
pub const DEFAULT_OFFLINE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Parses a state file: `Normal`, `OutOfRotation` or `Offline` (any case, `_`/`-` allowed)
/// on the first line, optionally the seconds until an Offline server stops on the second.
pub fn parse_state_file(text: &str) -> Result<(ServerState, Duration), String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .ok_or("line 1: empty file; expected Normal, OutOfRotation or Offline")?;
    let state = ServerState::parse(first)
        .ok_or_else(|| format!("line 1: {first:?} is not Normal, OutOfRotation or Offline"))?;
    let after = match lines.next() {
        None => DEFAULT_OFFLINE_AFTER,
        Some(l) => Duration::from_secs(
            l.parse::<u64>()
                .map_err(|_| format!("line 2: {l:?} is not a number of seconds"))?,
        ),
    };
    Ok((state, after))
}

impl Shared {
    /// The current state.
    pub(crate) fn server_state(&self) -> ServerState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the state; reports it at once. Going Offline tells every player how long is
    /// left and arms the stop.
    pub(crate) fn set_state(&self, state: ServerState, offline_after: Duration) {
        let old = std::mem::replace(
            &mut *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            state,
        );
        if old == state {
            return;
        }
        info!(from = ?old, to = ?state, "server state changed");
        self.report_now.notify_one();
        if state == ServerState::Offline {
            let seconds_left = offline_after.as_secs().min(u64::from(u32::MAX)) as u32;
            for room in self.rooms().rooms() {
                room.notify(RoomEvent::GameServerOffline { seconds_left });
            }
            let _ = self
                .offline_at
                .send(Some(tokio::time::Instant::now() + offline_after));
        } else {
            let _ = self.offline_at.send(None);
        }
    }
}

/// Polls the state file every second and applies changes of its content.
pub(crate) async fn watch_file(shared: Arc<Shared>, path: PathBuf) {
    let mut last: Option<String> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            // No file means no instruction.
            Err(_) => continue,
        };
        if last.as_ref() == Some(&text) {
            continue;
        }
        match parse_state_file(&text) {
            Ok((state, after)) => shared.set_state(state, after),
            Err(e) => warn!(file = %path.display(), error = %e, "ignoring the state file"),
        }
        last = Some(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files() {
        assert_eq!(
            parse_state_file("Normal\n"),
            Ok((ServerState::Normal, DEFAULT_OFFLINE_AFTER))
        );
        assert_eq!(
            parse_state_file("out_of_rotation"),
            Ok((ServerState::OutOfRotation, DEFAULT_OFFLINE_AFTER))
        );
        assert_eq!(
            parse_state_file("OFFLINE\n30\n"),
            Ok((ServerState::Offline, Duration::from_secs(30)))
        );
        assert!(parse_state_file("").unwrap_err().contains("line 1"));
        assert!(parse_state_file("busy").unwrap_err().contains("busy"));
        assert!(
            parse_state_file("Offline\nsoon")
                .unwrap_err()
                .contains("line 2")
        );
    }
}
