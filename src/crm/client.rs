//! The CRM.COM client (SPEC §8): logs in, renews its token before the two hours are up and once when a
//! call says the token is invalid or expired, and releases it at the end. The token is a secret: it is
//! never logged, and never part of an error.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::time::Instant;
use tracing::{debug, info};

use super::wire::{
    AwardedAmounts, CalculateAwarded, Create, Envelope, Identifier, ListQuery, Login, LoginData,
    Method, Participant, ParticipantCall, Status, Terminate, TokenOnly, Update,
};
use crate::client::{ClientError, error_chain, http_client};

/// How long a token lives, and how long before its end rrfeed logs in again.
pub const TOKEN_LIFE: Duration = Duration::from_secs(2 * 3600);
pub const RENEW_MARGIN: Duration = Duration::from_secs(10 * 60);

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
}

/// One CRM.COM organisation, for one run.
pub struct CrmClient {
    http: reqwest::Client,
    base: String,
    login: CrmLogin,
    token: Mutex<Option<Token>>,
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
            token: Mutex::new(None),
        })
    }

    fn url(&self, method: Method) -> String {
        format!("{}/{}", self.base, method.path())
    }

    /// Logs in now, replacing any token held.
    pub async fn log_in(&self) -> Result<(), CrmError> {
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
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(Token {
            value: SecretString::from(data.token),
            issued: Instant::now(),
        });
        Ok(())
    }

    /// The token, logging in first when there is none or it is within the renewal margin of its end.
    async fn token(&self) -> Result<SecretString, CrmError> {
        let current = {
            let guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .as_ref()
                .filter(|t| t.issued.elapsed() + RENEW_MARGIN < TOKEN_LIFE)
                .map(|t| t.value.clone())
        };
        match current {
            Some(token) => Ok(token),
            None => {
                self.log_in().await?;
                let guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
                Ok(guard.as_ref().expect("just logged in").value.clone())
            }
        }
    }

    /// Calls `method` with the token; a token refused as invalid or expired gets one new login and one
    /// retry.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        params: Map<String, Value>,
    ) -> Result<T, CrmError> {
        let token = self.token().await?;
        match self.send(method, &params, Some(&token)).await {
            Err(CrmError::Refused { status, .. }) if status.is_token_problem() => {
                info!(%method, "CRM.COM says the token expired; logging in again");
                self.log_in().await?;
                let token = self.token().await?;
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
        let token = self.token.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(token) = token else {
            return Ok(());
        };
        let body = TokenOnly {
            token: String::new(),
        };
        let mut params = to_map(&body);
        params.remove("token");
        self.send::<Value>(Method::Release, &params, Some(&token.value))
            .await
            .map(|_| info!("released the CRM.COM token"))
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
