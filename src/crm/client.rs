//! The CRM.COM client (README "Syncing to CRM.COM"): logs in, renews its token before the two hours
//! are up and when a call is refused with one of the codes that mean "log in again"
//! (`[crm] reauth_codes`), and releases every token it obtained. However many calls are in flight when
//! the token expires, it logs in once for all of them. The token is a secret: it is never logged, and
//! never part of an error.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use super::wire::{
    AwardedAmounts, CalculateAwarded, Create, Envelope, Identifier, ListQuery, Login, LoginData,
    Method, Participant, ParticipantCall, Status, Terminate, TokenOnly, Update,
};
use crate::client::{ClientError, error_chain, http_client};

/// How long a token lives, and how long before its end rrfeed logs in again.
pub const TOKEN_LIFE: Duration = Duration::from_secs(2 * 3600);
pub const RENEW_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The status codes that mean "the token is no longer good: log in again", unless `[crm]
/// reauth_codes` says otherwise. The vendor's document names none; this is the mock's.
pub const DEFAULT_REAUTH_CODES: [&str; 1] = ["INVALID_TOKEN"];

/// The time, injectable so that tests can move it on.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Who logs in.
#[derive(Clone, Debug)]
pub struct CrmLogin {
    pub username: String,
    pub password: SecretString,
    pub organisation: String,
}

/// Why a CRM.COM call failed.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Login refused: wrong user, password or organisation (exit 77).
    #[error("{method}: CRM.COM refused the login: {}", status.text())]
    Login { method: Method, status: Status },
    /// CRM.COM answered with a failure status.
    #[error("{method}: CRM.COM refused the call: {}", status.text())]
    Refused { method: Method, status: Status },
    /// No usable answer: the call may or may not have been carried out.
    #[error("{method}: no answer ({detail})")]
    NoAnswer { method: Method, detail: String },
    /// An answer that is not CRM.COM's envelope.
    #[error("{method}: the answer is not CRM.COM's (HTTP {http}): {detail}")]
    Wire {
        method: Method,
        http: u16,
        detail: String,
    },
}

impl CrmError {
    /// Whether the call may have been carried out although no answer said so (a create must then not be
    /// repeated blindly).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, CrmError::NoAnswer { .. } | CrmError::Wire { .. })
    }
}

struct Token {
    value: SecretString,
    issued: Instant,
    /// Counts the logins, so that calls refused with an older token renew it only once.
    generation: u64,
}

/// One CRM.COM organisation, for one run.
pub struct CrmClient {
    http: reqwest::Client,
    base: String,
    login: CrmLogin,
    /// Held across a login, so that calls needing a new token wait for the one login.
    token: tokio::sync::Mutex<Option<Token>>,
    reauth_codes: Vec<String>,
    clock: Clock,
}

impl CrmClient {
    /// Builds a client. Fails when `ca_cert` cannot be read or the TLS stack cannot start.
    pub fn new(
        base: &Url,
        login: CrmLogin,
        timeout: Duration,
        ca_cert: Option<&Path>,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http: http_client(base, timeout, Duration::from_secs(10).min(timeout), ca_cert)?,
            base: base.as_str().trim_end_matches('/').to_owned(),
            login,
            token: tokio::sync::Mutex::new(None),
            reauth_codes: DEFAULT_REAUTH_CODES.map(str::to_owned).to_vec(),
            clock: Arc::new(Instant::now),
        })
    }

    /// The status codes after which the client logs in again and retries the call once.
    pub fn with_reauth_codes(mut self, codes: Vec<String>) -> Self {
        self.reauth_codes = codes;
        self
    }

    /// The clock the token's age is measured by.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn needs_login_again(&self, status: &Status) -> bool {
        self.reauth_codes
            .iter()
            .any(|code| code.eq_ignore_ascii_case(&status.code))
    }

    fn url(&self, method: Method) -> String {
        format!("{}/{}", self.base, method.path())
    }

    /// Logs in now (the start of every run), replacing and releasing any token held.
    pub async fn log_in(&self) -> Result<(), CrmError> {
        let mut held = self.token.lock().await;
        self.log_in_locked(&mut held).await
    }

    /// Logs in while holding the token's lock; the token it replaces is released (best effort: an
    /// expired one cannot be).
    async fn log_in_locked(&self, held: &mut Option<Token>) -> Result<(), CrmError> {
        let body = Login {
            username: self.login.username.clone(),
            password: self.login.password.expose_secret().to_owned(),
            organisation: self.login.organisation.clone(),
        };
        let data: LoginData = match self.send(Method::Login, &to_map(&body), None).await {
            Err(CrmError::Refused { status, .. }) => {
                return Err(CrmError::Login {
                    method: Method::Login,
                    status,
                });
            }
            other => other?,
        };
        info!("logged in to CRM.COM");
        let generation = held.as_ref().map_or(1, |t| t.generation + 1);
        let replaced = held.replace(Token {
            value: SecretString::from(data.token),
            issued: (self.clock)(),
            generation,
        });
        if let Some(old) = replaced {
            self.release_token(&old.value).await;
        }
        Ok(())
    }

    /// The token and its generation, logging in first when there is none or it is within the renewal
    /// margin of its end.
    async fn token(&self) -> Result<(SecretString, u64), CrmError> {
        let mut held = self.token.lock().await;
        let now = (self.clock)();
        let fresh = held
            .as_ref()
            .is_some_and(|t| now.saturating_duration_since(t.issued) + RENEW_MARGIN < TOKEN_LIFE);
        if !fresh {
            self.log_in_locked(&mut held).await?;
        }
        let token = held.as_ref().expect("logged in above");
        Ok((token.value.clone(), token.generation))
    }

    /// A new token after `stale` was refused: one login, whichever call asks first; the others get
    /// its token.
    async fn renewed(&self, stale: u64) -> Result<SecretString, CrmError> {
        let mut held = self.token.lock().await;
        if held.as_ref().is_none_or(|t| t.generation == stale) {
            info!("CRM.COM refused the token; logging in again");
            self.log_in_locked(&mut held).await?;
        }
        Ok(held.as_ref().expect("logged in above").value.clone())
    }

    /// Calls `method` with the token; a refusal whose code means "log in again" gets one new login
    /// (shared by every call in flight) and one retry. No other refusal causes a login.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        params: Map<String, Value>,
    ) -> Result<T, CrmError> {
        let (token, generation) = self.token().await?;
        match self.send(method, &params, Some(&token)).await {
            Err(CrmError::Refused { status, .. }) if self.needs_login_again(&status) => {
                let token = self.renewed(generation).await?;
                self.send(method, &params, Some(&token)).await
            }
            other => other,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        params: &Map<String, Value>,
        token: Option<&SecretString>,
    ) -> Result<T, CrmError> {
        // Without the URL: a GET's query string holds the token.
        let no_answer = |e: reqwest::Error| CrmError::NoAnswer {
            method,
            detail: error_chain(&e.without_url()),
        };
        let request = if method.is_get() {
            let mut query: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect();
            if let Some(token) = token {
                query.push(("token".into(), token.expose_secret().to_owned()));
            }
            let mut url = Url::parse(&self.url(method)).map_err(|e| CrmError::NoAnswer {
                method,
                detail: e.to_string(),
            })?;
            url.query_pairs_mut().extend_pairs(&query);
            self.http.get(url)
        } else {
            let mut body = params.clone();
            if let Some(token) = token {
                body.insert(
                    "token".into(),
                    Value::String(token.expose_secret().to_owned()),
                );
            }
            self.http
                .post(self.url(method))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body).expect("requests serialize"))
        };
        debug!(%method, "calling CRM.COM");
        let response = request.send().await.map_err(no_answer)?;
        let http = response.status().as_u16();
        let bytes = response.bytes().await.map_err(no_answer)?;
        let envelope: Envelope<Value> =
            serde_json::from_slice(&bytes).map_err(|e| CrmError::Wire {
                method,
                http,
                detail: format!(
                    "{e}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
            })?;
        if !envelope.status.is_ok() {
            return Err(CrmError::Refused {
                method,
                status: envelope.status,
            });
        }
        serde_json::from_value(envelope.data.unwrap_or(Value::Null)).map_err(|e| CrmError::Wire {
            method,
            http,
            detail: format!("the data is not as documented: {e}"),
        })
    }

    /// Releases the token, if any (the end of every run).
    pub async fn release(&self) -> Result<(), CrmError> {
        let token = self.token.lock().await.take();
        let Some(token) = token else {
            return Ok(());
        };
        self.send_release(&token.value)
            .await
            .map(|()| info!("released the CRM.COM token"))
    }

    async fn send_release(&self, token: &SecretString) -> Result<(), CrmError> {
        let mut params = to_map(&TokenOnly {
            token: String::new(),
        });
        params.remove("token");
        self.send::<Value>(Method::Release, &params, Some(token))
            .await
            .map(drop)
    }

    /// Releases a token that was replaced; one that expired cannot be, which is only worth a debug line.
    async fn release_token(&self, token: &SecretString) {
        match self.send_release(token).await {
            Ok(()) => info!("released the replaced CRM.COM token"),
            Err(CrmError::Refused { status, .. }) if self.needs_login_again(&status) => {
                debug!("the replaced token had expired already");
            }
            Err(e) => warn!("could not release the replaced CRM.COM token: {e}"),
        }
    }

    /// Participants on an accounts receivable, in a life cycle state.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Participant>, CrmError> {
        let params = query
            .pairs("")
            .into_iter()
            .filter(|(k, _)| *k != "token")
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        self.call(Method::List, params).await
    }

    pub async fn show(&self, participant: &Identifier) -> Result<Participant, CrmError> {
        self.call(Method::Show, participant_params(participant))
            .await
    }

    pub async fn create(&self, create: &Create) -> Result<Participant, CrmError> {
        self.call(Method::Create, without_token(create)).await
    }

    pub async fn update(&self, update: &Update) -> Result<Participant, CrmError> {
        self.call(Method::Update, without_token(update)).await
    }

    pub async fn terminate(&self, terminate: &Terminate) -> Result<Participant, CrmError> {
        self.call(Method::Terminate, without_token(terminate)).await
    }

    pub async fn spend_blocking(
        &self,
        participant: &Identifier,
        enable: bool,
    ) -> Result<Participant, CrmError> {
        let method = if enable {
            Method::EnableSpendBlocking
        } else {
            Method::DisableSpendBlocking
        };
        self.call(method, participant_params(participant)).await
    }

    pub async fn awarded(&self, request: &CalculateAwarded) -> Result<AwardedAmounts, CrmError> {
        self.call(Method::CalculateTotalAwardedAmount, without_token(request))
            .await
    }
}

fn to_map(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value).expect("requests serialize") {
        Value::Object(map) => map,
        other => panic!("a request is an object, not {other}"),
    }
}

/// A request's fields; the token is added when it is sent.
fn without_token(value: &impl Serialize) -> Map<String, Value> {
    let mut map = to_map(value);
    map.remove("token");
    map
}

fn participant_params(participant: &Identifier) -> Map<String, Value> {
    without_token(&ParticipantCall {
        token: String::new(),
        rewards_participant_identifier: participant.clone(),
    })
}
