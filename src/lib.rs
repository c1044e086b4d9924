//! The `switchboard` command's library side: the in-process development cluster
//! ([`dev`]), the end-to-end smoke check ([`probe`]) and the operator client ([`admin`]). `main.rs` only parses flags,
//! sets up logging and calls these or the server libraries.

pub mod admin;

/// An error and its causes on one line, each cause once: libraries often repeat their
/// source's text in their own message, which `{:#}` would then print twice.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The HTTP client of the CLI (admin, bench) and the tests: rustls with the ring provider
/// and the system's roots ([`switchboard_transport::https_client_config`]).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(switchboard_transport::https_client_config())
        .build()
        .expect("a preconfigured rustls client builds")
}
pub mod bench;
pub mod dev;
pub mod devstate;
pub mod limits;
pub mod probe;
pub mod procs;
