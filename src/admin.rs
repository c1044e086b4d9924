//! `switchboard admin`: the master's operator API from the command line, with readable
//! tables (or `--json`).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use switchboard_master::admin::{GameView, ServerView};

/// Flags of `switchboard admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The master's admin endpoint; default: that of this user's running `switchboard
    /// dev`, else http://127.0.0.1:5080.
    #[arg(long, env = "SWITCHBOARD_ADMIN_URL", global = true)]
    pub url: Option<String>,
    /// The admin bearer token; default: that of this user's running `switchboard dev`
    /// when `--url` is its endpoint.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Operator commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Game servers: state, load level per controller, rooms, players.
    Servers,
    /// Games: server, lobby, players.
    Games,
    /// Set a game server's state: Normal, OutOfRotation or Offline.
    SetState {
        /// The game server's id.
        id: String,
        /// Normal, OutOfRotation or Offline.
        state: String,
        /// For Offline: seconds the players get before the server stops.
        #[arg(long, default_value_t = 900)]
        offline_after: u32,
    },
}

/// Renders rows as an aligned table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(&format!("{c:<w$}"));
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// Calls the API: `body` makes it a POST with that JSON, else a GET. Returns the response
/// text; a non-2xx status is an error carrying the API's message.
async fn call(
    client: &reqwest::Client,
    args: &AdminArgs,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<String> {
    let found = crate::devstate::DevState::find();
    let (base, token) = endpoint(args, found.as_ref().ok().cloned());
    let url = format!("{base}{path}");
    let request = match body {
        Some(json) => client.post(&url).json(&json),
        None => client.get(&url),
    };
    let resp = request
        .bearer_auth(token.with_context(|| {
            match &found {
                Err(why) if args.url.is_none() => {
                    format!("give --url and --token (the master's admin endpoint and token): {why}")
                }
                _ => "--token (or SWITCHBOARD_ADMIN_TOKEN) is required: the master's admin token"
                    .to_string(),
            }
        })?)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or(text);
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("{url}: the master refused the admin token (--token): {message}");
        }
        bail!("{url}: {status}: {message}");
    }
    Ok(text)
}

/// Runs an admin command, printing its result.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let client = crate::http_client();
    match &args.command {
        AdminCommand::Servers => {
            let body = call(&client, &args, "/servers", None).await?;
            if args.json {
                println!("{body}");
                return Ok(());
            }
            let servers: Vec<ServerView> = serde_json::from_str(&body)?;
            let rows: Vec<Vec<String>> = servers
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.address.clone(),
                        s.state.clone(),
                        s.level.to_string(),
                        format!("{}/{}/{}", s.cpu_level, s.bandwidth_level, s.peers_level),
                        s.rooms.map_or("?".into(), |n| n.to_string()),
                        s.peers.map_or("?".into(), |n| n.to_string()),
                        s.priority.to_string(),
                        match (s.link_up, s.reporting) {
                            (true, true) => "up".to_string(),
                            (true, false) => {
                                format!("silent {:.1}s", s.last_report_ms_ago as f64 / 1000.0)
                            }
                            (false, _) => {
                                format!("down {:.1}s", s.last_report_ms_ago as f64 / 1000.0)
                            }
                        },
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "ID",
                        "ADDRESS",
                        "STATE",
                        "LEVEL",
                        "CPU/BW/PEERS",
                        "ROOMS",
                        "PEERS",
                        "PRIORITY",
                        "LINK"
                    ],
                    &rows
                )
            );
        }
        AdminCommand::Games => {
            let body = call(&client, &args, "/games", None).await?;
            if args.json {
                println!("{body}");
                return Ok(());
            }
            let games: Vec<GameView> = serde_json::from_str(&body)?;
            let rows: Vec<Vec<String>> = games
                .iter()
                .map(|g| {
                    vec![
                        g.game.clone(),
                        g.server.clone(),
                        if g.lobby.is_empty() {
                            "(default)".into()
                        } else {
                            g.lobby.clone()
                        },
                        format!(
                            "{}/{}",
                            g.players,
                            if g.max_players == 0 {
                                "-".into()
                            } else {
                                g.max_players.to_string()
                            }
                        ),
                        if g.open { "yes" } else { "no" }.to_string(),
                        if g.visible { "yes" } else { "no" }.to_string(),
                        if g.stale { "stale" } else { "" }.to_string(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "GAME",
                        "SERVER",
                        "LOBBY",
                        "PLAYERS",
                        "OPEN",
                        "VISIBLE",
                        "SERVER STATUS"
                    ],
                    &rows
                )
            );
        }
        AdminCommand::SetState {
            id,
            state,
            offline_after,
        } => {
            let request =
                serde_json::json!({ "state": state, "offline_after_secs": offline_after });
            let body = call(
                &client,
                &args,
                &format!("/servers/{id}/state"),
                Some(request),
            )
            .await?;
            if args.json {
                println!("{body}");
            } else {
                println!(
                    "{id}: state {state} requested; the game server applies it and reports back"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "STATE"],
            &[
                vec!["gs-1".into(), "Normal".into()],
                vec!["gs-10".into(), "Offline".into()],
            ],
        );
        assert_eq!(t, "ID     STATE\ngs-1   Normal\ngs-10  Offline");
    }
}

/// The endpoint and token to use: the flags'; with neither, those of the user's running
/// `dev`. A token given without a URL never goes to `dev`'s endpoint (it may be a
/// production token), and `dev`'s token goes nowhere but `dev`'s endpoint.
fn endpoint(args: &AdminArgs, dev: Option<crate::devstate::DevState>) -> (String, Option<String>) {
    if args.url.is_none()
        && args.token.is_none()
        && let Some(d) = dev
    {
        return (base_url(&d.admin), Some(d.admin_token));
    }
    let base = base_url(args.url.as_deref().unwrap_or("http://127.0.0.1:5080"));
    let token = args.token.clone().or_else(|| {
        dev.filter(|d| base_url(&d.admin) == base)
            .map(|d| d.admin_token)
    });
    (base, token)
}

/// The admin endpoint's base URL as given, with `http://` when it names no scheme and
/// without a trailing slash.
fn base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

#[cfg(test)]
mod url_tests {
    use super::{AdminArgs, base_url, endpoint};
    use crate::devstate::DevState;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn args(line: &[&str]) -> AdminArgs {
        Cli::try_parse_from(std::iter::once("admin").chain(line.iter().copied()))
            .unwrap()
            .admin
    }

    #[test]
    fn a_running_dev_gives_the_endpoint_and_its_token() {
        let dev = DevState {
            pid: 1,
            master: "127.0.0.1:5055".into(),
            ca: "/x/cert.pem".into(),
            admin: "http://127.0.0.1:40000".into(),
            admin_token: "t0k".into(),
            server_secret: "s".into(),
            game_servers: vec![],
        };
        let e = endpoint(&args(&["servers"]), Some(dev.clone()));
        assert_eq!(e, ("http://127.0.0.1:40000".into(), Some("t0k".into())));
        // The same endpoint written without a scheme still gets dev's token.
        let e = endpoint(
            &args(&["servers", "--url", "127.0.0.1:40000"]),
            Some(dev.clone()),
        );
        assert_eq!(e.1.as_deref(), Some("t0k"));
        // Another endpoint never gets dev's token.
        let e = endpoint(
            &args(&["servers", "--url", "10.0.0.1:5080"]),
            Some(dev.clone()),
        );
        assert_eq!(e, ("http://10.0.0.1:5080".into(), None));
        // A token given alone goes to the default endpoint, never to dev's.
        let e = endpoint(&args(&["--token", "mine", "servers"]), Some(dev));
        assert_eq!(e, ("http://127.0.0.1:5080".into(), Some("mine".into())));
        // No dev: the default endpoint, no token.
        let e = endpoint(&args(&["servers"]), None);
        assert_eq!(e, ("http://127.0.0.1:5080".into(), None));
    }

    #[test]
    fn an_address_without_a_scheme_gets_http() {
        assert_eq!(base_url("127.0.0.1:5080"), "http://127.0.0.1:5080");
        assert_eq!(base_url("http://h:1/"), "http://h:1");
        assert_eq!(base_url("https://ops.example"), "https://ops.example");
    }
}
