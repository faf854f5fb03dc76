//! The access matrix: who ([`Principal`]) may call which class of route ([`Class`]), for
//! whose pubkey. One function decides; the HTTP layer only finds the caller and the
//! route's class, and the README's table is this one.

use nostr::PublicKey;
use uuid::Uuid;

use crate::api_key::Scope;
use crate::rate::Limits;

/// Who is calling, once their credential has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential.
    Anonymous,
    /// A Nostr user, by a NIP-98 event they signed for this request.
    User(PublicKey),
    /// A service, by an API key, with its requests per minute (the deployment's key limits
    /// under any the key was made with).
    Key {
        id: Uuid,
        scopes: Vec<Scope>,
        limits: Limits,
    },
    /// The deployment's bootstrap credential (`ADMIN_TOKEN`): admin, meant for making the
    /// first admin key.
    Bootstrap,
}

impl Principal {
    fn has(&self, scope: Scope) -> bool {
        match self {
            Principal::Key { scopes, .. } => {
                scopes.contains(&scope) || scopes.contains(&Scope::Admin)
            }
            Principal::Bootstrap => true,
            Principal::Anonymous | Principal::User(_) => false,
        }
    }
}

/// What a route gives, from which its callers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Public aggregates (summaries, series, breakdowns, note totals, the catalog, status,
    /// the API document, query jobs): anyone.
    Public,
    /// What names other users' actions (who engaged with whom), for one pubkey: that user
    /// (NIP-98), a `read` key, admin.
    Personal,
    /// A relay backfill of one pubkey: that user (NIP-98), a `backfill` key, admin.
    Backfill,
    /// The admin routes (plugins, backfills of any pubkey, jobs, API keys): an `admin` key
    /// or the bootstrap credential.
    Admin,
}

impl Class {
    pub const ALL: [Class; 4] = [
        Class::Public,
        Class::Personal,
        Class::Backfill,
        Class::Admin,
    ];
}

/// A refusal: 401 when a credential would help (none was sent), 403 when the one sent does
/// not allow this. `detail` names the credential that would work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized(String),
    Forbidden(String),
}

/// Whether `principal` may call a route of `class` about `subject` (the pubkey the route
/// names, for [`Class::Personal`] and [`Class::Backfill`]).
///
/// # Errors
/// The refusal, naming what would be allowed.
pub fn decide(
    principal: &Principal,
    class: Class,
    subject: Option<&PublicKey>,
) -> Result<(), Refusal> {
    let (scope, own) = match class {
        Class::Public => return Ok(()),
        Class::Personal => (Scope::Read, true),
        Class::Backfill => (Scope::Backfill, true),
        Class::Admin => (Scope::Admin, false),
    };
    if principal.has(scope) {
        return Ok(());
    }
    let own_key = match subject {
        Some(s) if own => format!("a NIP-98 event signed by {} or ", s.to_hex()),
        _ => String::new(),
    };
    let would = format!(
        "{own_key}an API key with the {scope} scope (Authorization: Bearer na_…){}",
        if scope == Scope::Admin {
            ""
        } else {
            " or admin"
        }
    );
    match principal {
        Principal::Anonymous => Err(Refusal::Unauthorized(format!("this needs {would}"))),
        Principal::User(pubkey) if own && subject == Some(pubkey) => Ok(()),
        Principal::User(pubkey) => Err(Refusal::Forbidden(format!(
            "a NIP-98 event grants this only for the signer's own pubkey ({}); this needs {would}",
            pubkey.to_hex()
        ))),
        Principal::Key { id, .. } => Err(Refusal::Forbidden(format!(
            "API key {} has no {scope} scope; this needs {would}",
            id.simple()
        ))),
        Principal::Bootstrap => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

    use nostr::Keys;

    use super::*;

    /// Every cell of the matrix: each kind of caller against each class, for their own
    /// pubkey and someone else's.
    #[test]
    fn every_cell_of_the_matrix() {
        let me = Keys::generate().public_key();
        let other = Keys::generate().public_key();
        let key = |scopes: &[Scope]| Principal::Key {
            id: Uuid::new_v4(),
            scopes: scopes.to_vec(),
            limits: crate::RateLimits::DEFAULT.key,
        };
        use Class::*;
        use Scope as S;
        // (caller, [Public, Personal, Backfill, Admin] allowed about `me`)
        let cells: Vec<(Principal, [bool; 4])> = vec![
            (Principal::Anonymous, [true, false, false, false]),
            (Principal::User(me), [true, true, true, false]),
            (Principal::User(other), [true, false, false, false]),
            (key(&[]), [true, false, false, false]),
            (key(&[S::Read]), [true, true, false, false]),
            (key(&[S::Backfill]), [true, false, true, false]),
            (key(&[S::Read, S::Backfill]), [true, true, true, false]),
            (key(&[S::Admin]), [true, true, true, true]),
            (Principal::Bootstrap, [true, true, true, true]),
        ];
        for (principal, allowed) in cells {
            for (class, allowed) in Class::ALL.into_iter().zip(allowed) {
                let decision = decide(&principal, class, Some(&me));
                assert_eq!(
                    decision.is_ok(),
                    allowed,
                    "{principal:?} on {class:?}: {decision:?}"
                );
                if let Err(refusal) = decision {
                    let anonymous = principal == Principal::Anonymous;
                    match refusal {
                        Refusal::Unauthorized(detail) => {
                            assert!(anonymous, "{principal:?}");
                            assert!(detail.contains("API key"), "{detail}");
                        }
                        Refusal::Forbidden(detail) => {
                            assert!(!anonymous, "{principal:?}");
                            assert!(detail.contains("this needs"), "{detail}");
                        }
                    }
                }
            }
        }
        // A refusal of a user's own data names the signature that would work.
        let Err(Refusal::Unauthorized(detail)) = decide(&Principal::Anonymous, Backfill, Some(&me))
        else {
            panic!("anonymous backfill allowed");
        };
        assert!(detail.contains(&me.to_hex()), "{detail}");
        // Admin routes name only the admin key.
        let Err(Refusal::Forbidden(detail)) = decide(&Principal::User(me), Admin, None) else {
            panic!("NIP-98 admin allowed");
        };
        assert!(detail.contains("admin scope") && !detail.contains("NIP-98 event signed"));
    }
}
