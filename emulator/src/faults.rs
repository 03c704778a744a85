//! Fault injection: latency, throttling, server errors and dropped connections, per route and
//! per count, so client retry and timeout paths can be tested against a real listener.

use serde::{Deserialize, Serialize};

/// What a fault does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Delay the answer by `latency_ms`, then answer normally.
    Latency,
    /// Answer 429 with `Retry-After` in the API's own error shape.
    Throttle,
    /// Answer `status` (default 503) in the API's own error shape.
    Error,
    /// Close the TCP connection without answering.
    Drop,
}

/// A fault rule as `POST /_emulator/faults` takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Glob over `"METHOD /path"` (when it holds a space) or over the path; `*` matches any run
    /// of characters, `"*"` alone matches everything.
    pub route: String,
    pub kind: FaultKind,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Seconds for `Retry-After` (throttle default 1; error sends it only when given).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Status for `error`.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many matching requests get the fault; null means every one, forever.
    #[serde(default)]
    pub count: Option<u64>,
}

/// An installed fault with its remaining budget.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Requests it has hit so far.
    pub hits: u64,
}

/// What to do to one request.
#[derive(Debug, Default, Clone)]
pub struct Decision {
    /// Total delay from latency faults.
    pub latency_ms: u64,
    /// The first throttle/error/drop fault that matched, if any.
    pub action: Option<FaultSpec>,
}

/// The installed faults, in the order they were added.
#[derive(Debug, Default)]
pub struct Faults {
    next_id: u64,
    rules: Vec<Fault>,
}

impl Faults {
    /// Installs a rule after checking it makes sense.
    pub fn add(&mut self, spec: FaultSpec) -> Result<Fault, String> {
        if spec.route.trim().is_empty() {
            return Err("route must not be empty".into());
        }
        if spec.kind == FaultKind::Latency && spec.latency_ms.is_none() {
            return Err("a latency fault needs latency_ms".into());
        }
        if let Some(status) = spec.status
            && !(400..=599).contains(&status)
        {
            return Err(format!("status {status} is not an error status"));
        }
        if spec.count == Some(0) {
            return Err("count must be at least 1 (or null for forever)".into());
        }
        self.next_id += 1;
        let fault = Fault {
            id: self.next_id,
            spec,
            hits: 0,
        };
        self.rules.push(fault.clone());
        Ok(fault)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.rules.clone()
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Consumes the budget of every rule that applies to this request and says what to do.
    /// All matching latency rules add up; the first matching other rule decides the answer.
    pub fn decide(&mut self, method: &str, path: &str) -> Decision {
        let mut decision = Decision::default();
        for rule in &mut self.rules {
            if !route_matches(&rule.spec.route, method, path) {
                continue;
            }
            let takes = match rule.spec.kind {
                FaultKind::Latency => true,
                _ => decision.action.is_none(),
            };
            if !takes {
                continue;
            }
            rule.hits += 1;
            if let Some(count) = rule.spec.count.as_mut() {
                *count -= 1;
            }
            match rule.spec.kind {
                FaultKind::Latency => decision.latency_ms += rule.spec.latency_ms.unwrap_or(0),
                _ => decision.action = Some(rule.spec.clone()),
            }
        }
        self.rules.retain(|r| r.spec.count != Some(0));
        decision
    }
}

/// Whether a route pattern covers a request.
pub fn route_matches(pattern: &str, method: &str, path: &str) -> bool {
    let pattern = pattern.trim();
    if pattern == "*" {
        return true;
    }
    match pattern.split_once(' ') {
        Some((m, p)) => {
            (m == "*" || m.eq_ignore_ascii_case(method))
                && glob(p.trim().as_bytes(), path.as_bytes())
        }
        None => glob(pattern.as_bytes(), path.as_bytes()),
    }
}

/// `*`-only glob, case-insensitive (ARM paths are).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_method_and_path_globs() {
        assert!(route_matches("*", "GET", "/v1.0/users/x"));
        assert!(route_matches(
            "PATCH /v1.0/users/*",
            "PATCH",
            "/v1.0/users/abc"
        ));
        assert!(!route_matches(
            "PATCH /v1.0/users/*",
            "GET",
            "/v1.0/users/abc"
        ));
        assert!(route_matches(
            "* /subscriptions/*/snapshots/*",
            "PUT",
            "/subscriptions/s/rg/snapshots/a"
        ));
        assert!(route_matches("/v1.0/*", "POST", "/v1.0/$batch"));
        assert!(!route_matches("/v1.0/users", "GET", "/v1.0/users/x"));
    }

    #[test]
    fn counted_faults_run_out() {
        let mut faults = Faults::default();
        faults
            .add(FaultSpec {
                route: "GET /a".into(),
                kind: FaultKind::Throttle,
                latency_ms: None,
                retry_after: Some(2),
                status: None,
                count: Some(2),
            })
            .unwrap();
        assert!(faults.decide("GET", "/a").action.is_some());
        assert!(faults.decide("GET", "/b").action.is_none());
        assert!(faults.decide("GET", "/a").action.is_some());
        assert!(faults.decide("GET", "/a").action.is_none());
        assert!(faults.list().is_empty());
    }
}
