//! Authentication providers: `dev` (any user id), `jwt` (tokens from the studio's
//! backend, verified locally) and `http` (Photon-style custom authentication: the master
//! asks the studio's backend).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use switchboard_protocol::frame::encoded_len;
use switchboard_protocol::messages::common::MAX_USER_ID;
use switchboard_protocol::{OpError, Properties, ResultCode, Value};
use tracing::warn;

/// Which provider, and its settings.
#[derive(Debug, Clone, Default)]
pub enum AuthConfig {
    /// Accepts any user id of 1 to 128 bytes; for development only.
    #[default]
    Dev,
    /// Verifies a JSON Web Token.
    Jwt(JwtConfig),
    /// Asks an HTTP backend.
    Http(HttpConfig),
}

/// JWT verification settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The only algorithm accepted (HS256, RS256 or ES256).
    pub algorithm: Algorithm,
    /// The HMAC secret (HS256) or the PEM public key (RS256, ES256).
    pub key: Vec<u8>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The `iss` the token must carry, if set.
    pub issuer: Option<String>,
    /// The `aud` the token must carry, if set.
    pub audience: Option<String>,
}

/// Custom HTTP authentication settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The backend URL; the master POSTs `{"UserId": ..., "Token": ...}` to it.
    pub url: String,
    /// How long to wait for the backend.
    pub timeout: Duration,
    /// Accept the client's user id when the backend cannot be reached (default: refuse).
    pub fail_open: bool,
}

/// A configured provider, ready to check credentials.
#[derive(Debug)]
pub enum Authenticator {
    /// See [`AuthConfig::Dev`].
    Dev,
    /// See [`AuthConfig::Jwt`].
    Jwt {
        /// The verification key.
        key: DecodingKey,
        /// The validation rules.
        validation: Box<Validation>,
    },
    /// See [`AuthConfig::Http`].
    Http {
        /// The settings.
        config: HttpConfig,
        /// A pooled HTTP client.
        client: reqwest::Client,
    },
}

/// A provider configuration that cannot work; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("auth: {0}")]
pub struct AuthConfigError(pub String);

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Every other claim of the token.
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// A user the provider accepted, with what it verified about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The user id to use.
    pub user_id: String,
    /// The verified claims a `Server` room's authority gets with the user's joins: the
    /// JWT's own claims (not `sub`, `exp`, `nbf`, `iat`, `iss`, `aud`, `jti`), or the
    /// backend's `Data`. At most [`MAX_CLAIM_BYTES`] encoded; claims past it are left out.
    pub claims: Properties,
}

/// The most encoded bytes of a user's claims (they travel in every join ticket).
pub const MAX_CLAIM_BYTES: usize = 512;

/// Claims from JSON: strings, numbers and booleans as such, anything else as its JSON
/// text; bounded by [`MAX_CLAIM_BYTES`], in key order.
fn claims_of(map: serde_json::Map<String, serde_json::Value>, skip: &[&str]) -> Properties {
    use serde_json::Value as J;
    let mut out = Properties::new();
    for (k, v) in map {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let value = match v {
            J::Null => continue,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s),
            other => Value::Str(other.to_string()),
        };
        out.insert(k.clone(), value);
        if encoded_len(&out) > MAX_CLAIM_BYTES {
            out.remove(&k);
            warn!(claim = %k, "a user's claims are over {MAX_CLAIM_BYTES} bytes: the rest are left out");
            break;
        }
    }
    out
}

/// The backend's answer (Photon's custom authentication format).
#[derive(Debug, Deserialize)]
struct BackendReply {
    #[serde(rename = "ResultCode")]
    result_code: i32,
    #[serde(rename = "UserId", default)]
    user_id: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
    /// What the backend vouches for about the user, handed to dedicated servers.
    #[serde(rename = "Data", default)]
    data: Option<serde_json::Map<String, serde_json::Value>>,
}

fn refused(code: ResultCode, message: impl Into<String>) -> OpError {
    OpError::new(code, message)
}

pub(crate) fn check_user_id(user_id: &str) -> Result<(), OpError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID {
        return Err(refused(
            ResultCode::InvalidAuthentication,
            format!("user id must be 1 to {MAX_USER_ID} bytes"),
        ));
    }
    Ok(())
}

impl Authenticator {
    /// Builds the provider; keys are parsed here so a bad key fails at start.
    pub fn new(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        Ok(match config {
            AuthConfig::Dev => Authenticator::Dev,
            AuthConfig::Jwt(c) => {
                let key = match c.algorithm {
                    Algorithm::HS256 => {
                        if c.key.len() < 32 {
                            return Err(AuthConfigError(format!(
                                "an HS256 secret needs at least 32 bytes, this one has {}",
                                c.key.len()
                            )));
                        }
                        DecodingKey::from_secret(&c.key)
                            .map_err(|e| AuthConfigError(format!("not a usable secret ({e})")))?
                    }
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&c.key).map_err(|e| {
                        AuthConfigError(format!("not an RSA public key in PEM ({e})"))
                    })?,
                    Algorithm::ES256 => DecodingKey::from_ec_pem(&c.key).map_err(|e| {
                        AuthConfigError(format!("not an EC public key in PEM ({e})"))
                    })?,
                    other => {
                        return Err(AuthConfigError(format!(
                            "the algorithm {other:?} is not supported (HS256, RS256, ES256)"
                        )));
                    }
                };
                let mut v = Validation::new(c.algorithm);
                v.leeway = c.leeway.as_secs();
                v.validate_exp = true;
                v.validate_nbf = true;
                v.set_required_spec_claims(&["exp", "sub"]);
                if let Some(iss) = &c.issuer {
                    v.set_issuer(&[iss]);
                }
                match &c.audience {
                    Some(aud) => v.set_audience(&[aud]),
                    None => v.validate_aud = false,
                }
                Authenticator::Jwt {
                    key,
                    validation: Box::new(v),
                }
            }
            AuthConfig::Http(c) => {
                let client = reqwest::Client::builder()
                    .timeout(c.timeout)
                    .tls_backend_preconfigured(switchboard_transport::https_client_config())
                    .build()
                    .map_err(|e| AuthConfigError(format!("the HTTP client: {e}")))?;
                reqwest::Url::parse(&c.url)
                    .map_err(|e| AuthConfigError(format!("not a URL ({e})")))?;
                Authenticator::Http {
                    config: c.clone(),
                    client,
                }
            }
        })
    }

    /// Checks credentials; returns the user id to use and its verified claims.
    pub async fn authenticate(&self, user_id: &str, token: &str) -> Result<Verified, OpError> {
        let plain = |user_id: String| Verified {
            user_id,
            claims: Properties::new(),
        };
        match self {
            Authenticator::Dev => {
                check_user_id(user_id)?;
                Ok(plain(user_id.to_string()))
            }
            Authenticator::Jwt { key, validation } => {
                let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::ExpiredSignature => refused(
                            ResultCode::AuthenticationTokenExpired,
                            "the token has expired",
                        ),
                        _ => refused(
                            ResultCode::InvalidAuthentication,
                            format!("invalid token: {e}"),
                        ),
                    }
                })?;
                check_user_id(&data.claims.sub)?;
                let registered = ["exp", "nbf", "iat", "iss", "aud", "jti", "sub"];
                Ok(Verified {
                    user_id: data.claims.sub,
                    claims: claims_of(data.claims.rest, &registered),
                })
            }
            Authenticator::Http { config, client } => {
                let body = serde_json::json!({ "UserId": user_id, "Token": token });
                let reply = async {
                    let resp = client.post(&config.url).json(&body).send().await?;
                    resp.error_for_status()?.json::<BackendReply>().await
                }
                .await;
                match reply {
                    Ok(r) if r.result_code == 1 => {
                        let id = r
                            .user_id
                            .filter(|u| !u.is_empty())
                            .unwrap_or_else(|| user_id.to_string());
                        check_user_id(&id)?;
                        Ok(Verified {
                            user_id: id,
                            claims: claims_of(r.data.unwrap_or_default(), &[]),
                        })
                    }
                    Ok(r) => Err(refused(
                        ResultCode::CustomAuthenticationFailed,
                        r.message.unwrap_or_else(|| {
                            format!("refused by the backend (ResultCode {})", r.result_code)
                        }),
                    )),
                    Err(e) if config.fail_open => {
                        let why = backend_failure(&e);
                        warn!(error = %why, url = %config.url, "authentication backend failed; failing open");
                        check_user_id(user_id)?;
                        Ok(plain(user_id.to_string()))
                    }
                    Err(e) => {
                        let why = backend_failure(&e);
                        warn!(error = %why, url = %config.url, "authentication backend failed; refusing");
                        Err(refused(
                            ResultCode::CustomAuthenticationFailed,
                            "the authentication service is unavailable",
                        ))
                    }
                }
            }
        }
    }
}

/// What went wrong with the authentication backend, with its cause: unreachable, too
/// slow, an error status, or an answer that is not the expected JSON.
fn backend_failure(e: &reqwest::Error) -> String {
    use std::error::Error;
    let kind = if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "unreachable"
    } else if e.is_status() {
        "answered with an error status"
    } else if e.is_decode() {
        "answered something that is not {\"ResultCode\": ..} JSON"
    } else {
        "failed"
    };
    let mut why = format!("{kind}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        why.push_str(&format!(": {c}"));
        cause = c.source();
    }
    why
}

#[cfg(test)]
mod backend_tests {
    use super::*;

    /// A backend that answers 200 with a body that is not the expected JSON.
    async fn garbage_backend() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                    )
                    .await;
            }
        });
        format!("http://{addr}/auth")
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(switchboard_transport::https_client_config())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_backend_answering_garbage_is_named_as_such_with_its_cause() {
        let url = garbage_backend().await;
        let e = client()
            .post(&url)
            .send()
            .await
            .unwrap()
            .json::<BackendReply>()
            .await
            .unwrap_err();
        let why = backend_failure(&e);
        assert!(why.starts_with("answered something that is not"), "{why}");
        assert!(why.contains("expected"), "the JSON error is kept: {why}");
        // And one that is not there at all.
        let e = client()
            .post("http://127.0.0.1:1/auth")
            .send()
            .await
            .unwrap_err();
        assert!(
            backend_failure(&e).starts_with("unreachable"),
            "{}",
            backend_failure(&e)
        );
    }
}
