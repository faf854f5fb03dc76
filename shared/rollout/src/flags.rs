//! A flag's answer for one pubkey.

use na_api_types::{Flag, Mode};
use na_storage::rollout::FlagRecord;
use sha2::{Digest, Sha256};

/// The flag of `GET /api/v1/analytics/{pubkey}`.
pub const V1_SUMMARY_FLAG: &str = "analytics-v1-summary";

/// Why a pubkey got its mode (OpenFeature's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// In the allow or deny list.
    TargetingMatch,
    /// Its cohort is inside or outside the percentage.
    Split,
    /// The flag is `legacy` for everyone.
    Default,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
        }
    }
}

/// A flag's answer for one pubkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub mode: Mode,
    pub reason: Reason,
    /// The pubkey's cohort, 0–99.
    pub cohort: u8,
}

/// The pubkey's cohort under flag `key`, 0–99: the first eight bytes of
/// SHA-256(`key` `:` `pubkey`) modulo 100. Stable across instances and restarts; another
/// flag splits the same pubkeys differently. `pubkey` is hex, lowercase.
pub fn cohort(key: &str, pubkey: &str) -> u8 {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(b":")
        .chain_update(pubkey.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// Which path answers `pubkey` (hex, lowercase) under `flag`: `legacy` in the deny list;
/// the flag's mode in the allow list or when the pubkey's cohort is below its percentage;
/// `legacy` otherwise.
pub fn evaluate(flag: &Flag, pubkey: &str) -> Evaluation {
    let cohort = cohort(&flag.key, pubkey);
    let listed = |list: &[String]| list.iter().any(|p| p == pubkey);
    let (mode, reason) = if listed(&flag.deny) {
        (Mode::Legacy, Reason::TargetingMatch)
    } else if flag.mode == Mode::Legacy {
        (Mode::Legacy, Reason::Default)
    } else if listed(&flag.allow) {
        (flag.mode, Reason::TargetingMatch)
    } else if cohort < flag.percent {
        (flag.mode, Reason::Split)
    } else {
        (Mode::Legacy, Reason::Split)
    };
    Evaluation {
        mode,
        reason,
        cohort,
    }
}

/// The stored flag as the API shows it (a mode the table's check let through is known).
pub fn flag_of(r: FlagRecord) -> Flag {
    Flag {
        mode: Mode::parse(&r.mode).unwrap_or(Mode::Legacy),
        percent: u8::try_from(r.percent.clamp(0, 100)).unwrap_or(0),
        key: r.key,
        allow: r.allow,
        deny: r.deny,
        revision: r.revision,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(mode: Mode, percent: u8) -> Flag {
        Flag {
            key: V1_SUMMARY_FLAG.into(),
            mode,
            percent,
            allow: Vec::new(),
            deny: Vec::new(),
            revision: 1,
            updated_at: chrono::DateTime::UNIX_EPOCH,
            updated_by: "test".into(),
        }
    }

    fn pubkeys(n: u32) -> Vec<String> {
        (0..n)
            .map(|i| hex_of(&Sha256::digest(i.to_be_bytes())))
            .collect()
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_percentage_takes_about_that_share_and_grows_by_adding() {
        let keys = pubkeys(10_000);
        let share = |f: &Flag| {
            keys.iter()
                .filter(|k| evaluate(f, k).mode == Mode::V2)
                .count()
        };
        let ten = share(&flag(Mode::V2, 10));
        assert!((800..1200).contains(&ten), "{ten} of 10000 at 10%");
        assert_eq!(share(&flag(Mode::V2, 100)), keys.len());
        assert_eq!(share(&flag(Mode::V2, 0)), 0);
        // Whoever is in at 10 % stays in at 50 %: raising the percentage only adds.
        for k in &keys {
            if evaluate(&flag(Mode::V2, 10), k).mode == Mode::V2 {
                assert_eq!(evaluate(&flag(Mode::V2, 50), k).mode, Mode::V2);
            }
        }
    }

    #[test]
    fn lists_override_the_split_and_deny_wins() {
        let keys = pubkeys(200);
        let out = keys
            .iter()
            .find(|k| cohort(V1_SUMMARY_FLAG, k) >= 10)
            .unwrap();
        let mut f = flag(Mode::Dual, 10);
        assert_eq!(evaluate(&f, out).mode, Mode::Legacy);
        f.allow.push(out.clone());
        let e = evaluate(&f, out);
        assert_eq!((e.mode, e.reason), (Mode::Dual, Reason::TargetingMatch));
        f.deny.push(out.clone());
        assert_eq!(evaluate(&f, out).mode, Mode::Legacy);
        // A legacy flag is legacy for its allow list too: rolling back is one change.
        f.deny.clear();
        f.mode = Mode::Legacy;
        let e = evaluate(&f, out);
        assert_eq!((e.mode, e.reason), (Mode::Legacy, Reason::Default));
    }

    #[test]
    fn cohorts_are_stable_and_per_flag() {
        let k = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";
        assert_eq!(cohort("a", k), cohort("a", k));
        let differ = pubkeys(100)
            .iter()
            .filter(|p| cohort("a", p) != cohort("b", p))
            .count();
        assert!(differ > 80, "{differ}");
    }
}
