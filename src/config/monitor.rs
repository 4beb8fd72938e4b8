//! Monitoring settings (docs/monitoring.md): the dead-man's-switch ping URLs and the metrics file.
//!
//! A ping URL often embeds its check's token, so it is treated like a secret: it may be a secret
//! reference, and no message, log line or `Debug` output ever shows more of it than its host.

use std::path::PathBuf;

use secrecy::ExposeSecret;
use url::Url;

use super::file::UrlSetting;
use super::{Config, ConfigError, Env, Secret, env, is_loopback};

/// A checked ping URL: `https://`, or `http://` for a loopback host.
#[derive(Clone, PartialEq, Eq)]
pub struct PingUrl(Url);

impl PingUrl {
    /// Parses a ping URL; the error never quotes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text.trim()).map_err(|e| format!("it is not a URL ({e})"))?;
        let host = url.host_str().unwrap_or("no host").to_owned();
        match url.scheme() {
            "https" => Ok(Self(url)),
            "http" if is_loopback(&url) => Ok(Self(url)),
            "http" => Err(format!(
                "its host {host} is not loopback, so it must use https:// (http:// is only for a \
                 server on this machine)"
            )),
            other => Err(format!("its scheme is {other:?}; use https://")),
        }
    }

    /// The host, the only part of the URL that may be shown.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or("")
    }

    /// The URL with `segment` appended to its path (none for the check itself) and `rid` as a query.
    pub fn call(&self, segment: Option<&str>, rid: Option<&str>) -> Url {
        let mut url = self.0.clone();
        if let Some(segment) = segment
            && let Ok(mut path) = url.path_segments_mut()
        {
            path.pop_if_empty().push(segment);
        }
        if let Some(rid) = rid {
            url.query_pairs_mut().append_pair("rid", rid);
        }
        url
    }
}

/// Never the URL itself: it may hold a token.
impl std::fmt::Debug for PingUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PingUrl({}/…)", self.host())
    }
}

impl Config {
    /// The night's ping URL: `RRFEED_PING_URL`, else `[monitor] ping_url`; `None` when neither is set.
    ///
    /// Fails when the reference cannot be read or the URL is unusable (the message never shows it).
    pub fn ping_url(&self, env_fn: Env) -> Result<Option<PingUrl>, ConfigError> {
        if let Some(text) = env_fn(env::PING_URL) {
            return PingUrl::parse(&text)
                .map(Some)
                .map_err(|reason| ConfigError::invalid(env::PING_URL, reason));
        }
        self.url_setting(
            self.file.monitor.ping_url.as_ref(),
            "monitor.ping_url",
            env_fn,
        )
    }

    /// The ping URL of the configured store `name`, if it has its own.
    ///
    /// Fails as [`Config::ping_url`] does.
    pub fn store_ping_url(&self, name: &str, env_fn: Env) -> Result<Option<PingUrl>, ConfigError> {
        let setting = self.file.stores.iter().find(|s| s.name == name);
        let key = format!("store {name:?}: ping_url");
        self.url_setting(setting.and_then(|s| s.ping_url.as_ref()), &key, env_fn)
    }

    /// The receiver's ping URL, `[webhook] ping_url`.
    ///
    /// Fails as [`Config::ping_url`] does.
    pub fn webhook_ping_url(&self, env_fn: Env) -> Result<Option<PingUrl>, ConfigError> {
        self.url_setting(
            self.file.webhook.ping_url.as_ref(),
            "webhook.ping_url",
            env_fn,
        )
    }

    /// Where the metrics go: `RRFEED_METRICS_FILE`, else `[monitor] metrics_file`.
    pub fn metrics_file(&self, env_fn: Env) -> Option<PathBuf> {
        env_fn(env::METRICS_FILE)
            .map(PathBuf::from)
            .or_else(|| self.file.monitor.metrics_file.clone())
    }

    fn url_setting(
        &self,
        setting: Option<&UrlSetting>,
        key: &str,
        env_fn: Env,
    ) -> Result<Option<PingUrl>, ConfigError> {
        let text = match setting {
            None => return Ok(None),
            Some(UrlSetting::Plain(text)) => text.clone(),
            Some(UrlSetting::Reference(r)) => Secret::reference(r, key, self.path.as_deref())
                .resolve(env_fn)?
                .expose_secret()
                .to_owned(),
        };
        PingUrl::parse(&text)
            .map(Some)
            .map_err(|reason| self.invalid(key, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_call_appends_its_segment_and_run_id() {
        let url = PingUrl::parse("https://hc-ping.com/8b1c7e9a-token").unwrap();
        assert_eq!(
            url.call(Some("start"), Some("r-1")).as_str(),
            "https://hc-ping.com/8b1c7e9a-token/start?rid=r-1"
        );
        let slash = PingUrl::parse("https://hc-ping.com/key/slug/").unwrap();
        assert_eq!(
            slash.call(Some("65"), None).as_str(),
            "https://hc-ping.com/key/slug/65"
        );
        assert_eq!(
            slash.call(None, None).as_str(),
            "https://hc-ping.com/key/slug/"
        );
    }

    #[test]
    fn plain_http_is_refused_for_a_remote_host_without_quoting_the_url() {
        let err = PingUrl::parse("http://hc.example.com/secret-token").unwrap_err();
        assert!(
            err.contains("hc.example.com") && !err.contains("secret-token"),
            "{err}"
        );
        assert!(PingUrl::parse("http://127.0.0.1:9/x").is_ok());
        let err = PingUrl::parse("not a url secret-token").unwrap_err();
        assert!(!err.contains("secret-token"), "{err}");
        let debug = format!("{:?}", PingUrl::parse("https://h.example/tok").unwrap());
        assert!(!debug.contains("tok"), "{debug}");
    }
}
