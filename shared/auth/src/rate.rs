//! Rate limits: requests per minute for each kind of caller and class of route, a token
//! bucket per principal (IP for anonymous callers, pubkey for NIP-98, key id for API keys)
//! and class, kept where every instance sees it (`na_storage`'s `rate_limits`).

use std::fmt;

use crate::Principal;

/// What a route costs, for its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// The catalog, status, the API document, a job's state.
    Cheap,
    /// Summaries, time series, breakdowns, note drilldowns.
    Costly,
    /// What starts work: query jobs, backfills.
    Jobs,
    /// The admin routes.
    Admin,
}

impl RateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Cheap => "cheap",
            RateClass::Costly => "costly",
            RateClass::Jobs => "jobs",
            RateClass::Admin => "admin",
        }
    }
}

impl fmt::Display for RateClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests per minute per class for one kind of caller; 0 refuses the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub cheap: u32,
    pub costly: u32,
    pub jobs: u32,
    pub admin: u32,
}

impl Limits {
    pub fn of(&self, class: RateClass) -> u32 {
        match class {
            RateClass::Cheap => self.cheap,
            RateClass::Costly => self.costly,
            RateClass::Jobs => self.jobs,
            RateClass::Admin => self.admin,
        }
    }

    /// `cheap=120,costly=60,jobs=5` over `self` (classes not named keep their value).
    ///
    /// # Errors
    /// An unknown class or a value that is not a number.
    pub fn parse_over(self, text: &str) -> Result<Self, String> {
        let mut limits = self;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: give class=requests per minute"))?;
            let value: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: not a whole number of requests per minute"))?;
            match name.trim() {
                "cheap" => limits.cheap = value,
                "costly" => limits.costly = value,
                "jobs" => limits.jobs = value,
                "admin" => limits.admin = value,
                other => {
                    return Err(format!(
                        "{other:?} is not a route class (cheap, costly, jobs, admin)"
                    ));
                }
            }
        }
        Ok(limits)
    }
}

/// The limits of every kind of caller. The bootstrap token (an operator) has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per IP.
    pub anonymous: Limits,
    /// Per pubkey.
    pub user: Limits,
    /// Per key, for a key made without limits of its own.
    pub key: Limits,
}

impl RateLimits {
    pub const DEFAULT: RateLimits = RateLimits {
        anonymous: Limits {
            cheap: 300,
            costly: 60,
            jobs: 10,
            admin: 0,
        },
        user: Limits {
            cheap: 1200,
            costly: 600,
            jobs: 60,
            admin: 0,
        },
        key: Limits {
            cheap: 6000,
            costly: 3000,
            jobs: 600,
            admin: 600,
        },
    };

    /// `NA_RATE_ANONYMOUS`, `NA_RATE_USER`, `NA_RATE_KEY` (each `class=per minute,…`) over
    /// the defaults.
    ///
    /// # Errors
    /// A value that does not parse, naming its variable.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut limits = Self::DEFAULT;
        for (name, slot) in [
            ("NA_RATE_ANONYMOUS", &mut limits.anonymous),
            ("NA_RATE_USER", &mut limits.user),
            ("NA_RATE_KEY", &mut limits.key),
        ] {
            if let Some(v) = var(name) {
                *slot = slot
                    .parse_over(&v)
                    .map_err(|e| format!("{name}={v}: {e}"))?;
            }
        }
        Ok(limits)
    }

    /// The bucket `principal` (from `ip` when anonymous) spends for `class`, and its
    /// requests per minute; `None`: not limited.
    pub fn bucket(
        &self,
        principal: &Principal,
        ip: &str,
        class: RateClass,
    ) -> Option<(String, u32)> {
        let (who, limits) = match principal {
            Principal::Anonymous => (format!("ip:{ip}"), &self.anonymous),
            Principal::User(pubkey) => (format!("user:{}", pubkey.to_hex()), &self.user),
            Principal::Key { id, limits, .. } => (format!("key:{}", id.simple()), limits),
            Principal::Bootstrap => return None,
        };
        Some((format!("{who}:{class}"), limits.of(class)))
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

    use super::*;

    #[test]
    fn limits_read_over_the_defaults_and_each_principal_has_its_own_bucket() {
        let env = |name: &str| match name {
            "NA_RATE_ANONYMOUS" => Some("costly=3, jobs=0".to_owned()),
            _ => None,
        };
        let limits = RateLimits::from_lookup(&env).unwrap();
        assert_eq!(limits.anonymous.costly, 3);
        assert_eq!(limits.anonymous.jobs, 0);
        assert_eq!(limits.anonymous.cheap, RateLimits::DEFAULT.anonymous.cheap);
        assert_eq!(limits.user, RateLimits::DEFAULT.user);
        for bad in ["costly", "costly=x", "pricey=1"] {
            let env = |_: &str| Some(bad.to_owned());
            let e = RateLimits::from_lookup(&env).unwrap_err();
            assert!(e.contains("NA_RATE_ANONYMOUS"), "{e}");
        }

        let user = Principal::User(nostr::Keys::generate().public_key());
        let (a, _) = limits
            .bucket(&Principal::Anonymous, "1.2.3.4", RateClass::Costly)
            .unwrap();
        let (b, _) = limits
            .bucket(&Principal::Anonymous, "5.6.7.8", RateClass::Costly)
            .unwrap();
        let (c, _) = limits.bucket(&user, "1.2.3.4", RateClass::Costly).unwrap();
        let (d, per_minute) = limits.bucket(&user, "1.2.3.4", RateClass::Jobs).unwrap();
        assert_eq!(per_minute, RateLimits::DEFAULT.user.jobs);
        let all = std::collections::HashSet::from([&a, &b, &c, &d]);
        assert_eq!(all.len(), 4, "{all:?}");
        assert_eq!(
            limits.bucket(&Principal::Bootstrap, "1.2.3.4", RateClass::Admin),
            None
        );
        // A key spends by the limits it carries (its own, over the deployment's).
        let own = Limits {
            costly: 7,
            ..limits.key
        };
        let key = Principal::Key {
            id: uuid::Uuid::new_v4(),
            scopes: vec![],
            limits: own,
        };
        let (e, per_minute) = limits.bucket(&key, "1.2.3.4", RateClass::Costly).unwrap();
        assert_eq!(per_minute, 7);
        assert!(e.starts_with("key:"), "{e}");
    }
}
