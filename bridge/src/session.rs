//! The Zenoh session a bridge opens: peer mode, no multicast scouting, explicit endpoints.

use zenoh::{Config, Session, Wait};

/// How a bridge joins the network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// Endpoints to listen on, e.g. `tcp/10.77.0.1:7447`.
    pub listen: Vec<String>,
    /// Endpoints to connect to (retried for ever, every [`SessionOptions::retry_ms`]).
    pub connect: Vec<String>,
    /// The link lease in ms: a link silent for this long is declared dead and the session reconnects. Zenoh's
    /// default is 10,000; keep-alives go out every lease/4.
    pub lease_ms: Option<u64>,
    /// Period of connection retries in ms (Zenoh's default starts at 1,000 and doubles up to 4,000; a constant
    /// short period bounds the time to reconnect after a repair).
    pub retry_ms: Option<u64>,
}

/// Why the session could not be opened.
#[derive(Debug)]
pub struct SessionError(pub String);

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "zenoh session: {}", self.0)
    }
}

impl std::error::Error for SessionError {}

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(","))
}

impl SessionOptions {
    /// The Zenoh configuration.
    ///
    /// # Errors
    /// A [`SessionError`] naming the setting Zenoh refused.
    pub fn config(&self) -> Result<Config, SessionError> {
        let mut c = Config::default();
        let mut set = |key: &str, value: String| {
            c.insert_json5(key, &value)
                .map_err(|e| SessionError(format!("{key} = {value}: {e}")))
        };
        set("mode", "\"peer\"".into())?;
        set("scouting/multicast/enabled", "false".into())?;
        set("listen/endpoints", json_list(&self.listen))?;
        set("connect/endpoints", json_list(&self.connect))?;
        if let Some(ms) = self.lease_ms {
            set("transport/link/tx/lease", ms.to_string())?;
        }
        if let Some(ms) = self.retry_ms {
            set(
                "connect/retry",
                format!("{{period_init_ms: {ms}, period_max_ms: {ms}, period_increase_factor: 1}}"),
            )?;
        }
        Ok(c)
    }

    /// Opens the session.
    ///
    /// # Errors
    /// A [`SessionError`] if the configuration is refused or a listen endpoint cannot be bound.
    pub fn open(&self) -> Result<Session, SessionError> {
        zenoh::open(self.config()?)
            .wait()
            .map_err(|e| SessionError(e.to_string()))
    }
}
