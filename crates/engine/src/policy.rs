//! The engine's own per-step settings in `config`: `timeout_ms` and `retry`.

use std::time::Duration;

use rand::Rng;
use serde_json::Value;

/// Engine-level keys removed from `config` before it reaches the connector.
pub(crate) const ENGINE_KEYS: [&str; 2] = ["timeout_ms", "retry"];

/// The most attempts a step may ask for.
const MAX_ATTEMPTS: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backoff {
    Constant,
    Exponential,
}

/// `config.retry`: `{attempts, backoff, delay_ms, max_delay_ms, jitter}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Total attempts, including the first.
    pub(crate) attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Backoff::Constant,
            delay: Duration::from_millis(1000),
            max_delay: Duration::from_millis(60_000),
            jitter: false,
        }
    }
}

impl RetryPolicy {
    /// Reads `config.retry`; `Null` means no retries.
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        let mut policy = Self::default();
        let Value::Object(map) = value else {
            if value.is_null() {
                return Ok(policy);
            }
            return Err("`config.retry` must be an object".into());
        };
        if let Some(n) = map.get("attempts") {
            let n = n.as_u64().filter(|n| (1..=u64::from(MAX_ATTEMPTS)).contains(n));
            let Some(n) = n else {
                return Err(format!("`retry.attempts` must be 1..={MAX_ATTEMPTS}"));
            };
            policy.attempts = n as u32;
        }
        if let Some(b) = map.get("backoff") {
            policy.backoff = match b.as_str() {
                Some("constant") => Backoff::Constant,
                Some("exponential") => Backoff::Exponential,
                _ => return Err("`retry.backoff` must be `constant` or `exponential`".into()),
            };
        }
        if let Some(ms) = map.get("delay_ms") {
            let Some(ms) = ms.as_u64() else {
                return Err("`retry.delay_ms` must be a non-negative integer".into());
            };
            policy.delay = Duration::from_millis(ms);
        }
        if let Some(ms) = map.get("max_delay_ms") {
            let Some(ms) = ms.as_u64() else {
                return Err("`retry.max_delay_ms` must be a non-negative integer".into());
            };
            policy.max_delay = Duration::from_millis(ms);
        }
        if let Some(j) = map.get("jitter") {
            let Some(j) = j.as_bool() else {
                return Err("`retry.jitter` must be a boolean".into());
            };
            policy.jitter = j;
        }
        Ok(policy)
    }

    /// The pause before attempt `next` (2 or later).
    pub(crate) fn delay_before(&self, next: u32) -> Duration {
        let base = match self.backoff {
            Backoff::Constant => self.delay,
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(next.saturating_sub(2).min(30));
                self.delay.saturating_mul(factor)
            }
        };
        let capped = base.min(self.max_delay);
        if !self.jitter {
            return capped;
        }
        // Jitter keeps between half and all of the delay, so retries spread out but never
        // hammer the remote side sooner than half the configured pause.
        capped.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// Reads `config.timeout_ms`.
pub(crate) fn parse_timeout(value: Option<&Value>) -> Result<Option<Duration>, String> {
    let Some(value) = value else { return Ok(None) };
    if value.is_null() {
        return Ok(None);
    }
    match value.as_u64() {
        Some(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err("`config.timeout_ms` must be a positive integer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exponential_backoff_doubles_and_caps() {
        let retry = json!({"attempts": 5, "backoff": "exponential", "delay_ms": 10,
                           "max_delay_ms": 30});
        let policy = RetryPolicy::parse(&retry).unwrap();
        assert_eq!(policy.delay_before(2), Duration::from_millis(10));
        assert_eq!(policy.delay_before(3), Duration::from_millis(20));
        assert_eq!(policy.delay_before(4), Duration::from_millis(30));
    }

    #[test]
    fn bad_retry_is_refused() {
        assert!(RetryPolicy::parse(&json!({"attempts": 0})).is_err());
        assert!(RetryPolicy::parse(&json!({"backoff": "linear"})).is_err());
    }
}
