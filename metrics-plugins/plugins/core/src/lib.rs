//! `core@1`: the built-in metric catalog of NOSTR-SEMANTICS.md, each metric at version 1.
//! Facts already carry every NIP rule (docs/metric-semantics.md); this only decides what
//! counts where.

use na_metrics_sdk::{
    ABI_VERSION, Aggregation, ContributionWriter, FactBatch, FactView, MetricInfo, Plugin,
    PluginInfo, class, counts, flag,
};

/// The catalog, in declaration order (a contribution names its metric by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Metric {
    NotesPublished,
    RepliesPublished,
    ReactionsPublished,
    RepostsPublished,
    ArticlesPublished,
    RepliesReceived,
    CommentsReceived,
    ReactionsReceived,
    RepostsReceived,
    QuotesReceived,
    MentionsReceived,
    ZapsReceived,
    ZapMsatsReceived,
    ZapsSent,
    ZapMsatsSent,
    UniqueZappers,
    UniqueEngagers,
    FollowersGained,
    FollowersLost,
    FollowerCount,
}

/// Reaction content kept as a dimension, at most this many bytes (top emojis, not essays).
const CONTENT_DIM_BYTES: usize = 32;

fn catalog() -> Vec<MetricInfo> {
    use Aggregation::{Count, Distinct, Gauge, Sum};
    use class::*;
    let m = MetricInfo::new;
    vec![
        m(
            "notes_published",
            1,
            Count,
            "events",
            &[NOTE],
            "Kind 1 notes by the pubkey that are not replies.",
        ),
        m(
            "replies_published",
            1,
            Count,
            "events",
            &[REPLY],
            "Kind 1 replies by the pubkey (NIP-10).",
        ),
        m(
            "reactions_published",
            1,
            Count,
            "events",
            &[REACTION],
            "Kind 7 reactions by the pubkey.",
        ),
        m(
            "reposts_published",
            1,
            Count,
            "events",
            &[REPOST],
            "Kind 6 and 16 reposts by the pubkey.",
        ),
        m(
            "articles_published",
            1,
            Count,
            "events",
            &[ARTICLE],
            "Kind 30023 articles by the pubkey whose coordinate is new (edits do not count).",
        ),
        m(
            "replies_received",
            1,
            Count,
            "events",
            &[REPLY],
            "Replies whose parent's author is the pubkey, by others.",
        ),
        m(
            "comments_received",
            1,
            Count,
            "events",
            &[COMMENT],
            "Kind 1111 comments whose parent's author is the pubkey, by others (NIP-22).",
        ),
        m(
            "reactions_received",
            1,
            Count,
            "events",
            &[REACTION],
            "Reactions to the pubkey's events, by others (NIP-25).",
        )
        .dims(&["class", "content"]),
        m(
            "reposts_received",
            1,
            Count,
            "events",
            &[REPOST],
            "Reposts of the pubkey's events, by others (NIP-18).",
        ),
        m(
            "quotes_received",
            1,
            Count,
            "events",
            &[QUOTE],
            "Kind 1/1111 events quoting the pubkey's events, by others (NIP-18).",
        ),
        m(
            "mentions_received",
            1,
            Count,
            "events",
            &[MENTION],
            "Kind 1 events by others that p-tag the pubkey and do not reply to or quote its event.",
        ),
        m(
            "zaps_received",
            1,
            Count,
            "zaps",
            &[ZAP],
            "Counted zap receipts to the pubkey (NIP-57), not self-zaps.",
        )
        .dims(&["lnurl"]),
        m(
            "zap_msats_received",
            1,
            Sum,
            "msats",
            &[ZAP],
            "Their amounts, from the invoices.",
        )
        .dims(&["lnurl"]),
        m(
            "zaps_sent",
            1,
            Count,
            "zaps",
            &[ZAP],
            "Counted zap receipts whose zap request the pubkey signed.",
        ),
        m("zap_msats_sent", 1, Sum, "msats", &[ZAP], "Their amounts."),
        m(
            "unique_zappers",
            1,
            Distinct,
            "pubkeys",
            &[ZAP],
            "Distinct senders among zaps received.",
        ),
        m(
            "unique_engagers",
            1,
            Distinct,
            "pubkeys",
            &[REPLY, COMMENT, REACTION, REPOST, QUOTE, ZAP],
            "Distinct others who replied, commented, reacted, reposted, quoted or zapped.",
        ),
        m(
            "followers_gained",
            1,
            Count,
            "pubkeys",
            &[FOLLOW_GAINED],
            "Follows added to lists after the follower's first (NIP-02).",
        ),
        m(
            "followers_lost",
            1,
            Count,
            "pubkeys",
            &[FOLLOW_LOST],
            "Follows removed from lists (NIP-02).",
        ),
        m(
            "follower_count",
            1,
            Gauge,
            "pubkeys",
            &[FOLLOW_BASELINE, FOLLOW_GAINED, FOLLOW_LOST],
            "Followers at the end of the window.",
        ),
    ]
}

/// The built-in catalog.
#[derive(Debug)]
pub struct Core;

struct Out<'w> {
    w: &'w mut ContributionWriter,
}

impl Out<'_> {
    fn count(&mut self, m: Metric, subject: &[u8; 32], f: &FactView<'_>) {
        self.w.push(m as u16, subject, f.created_at, 1, b"", &[]);
    }
}

/// Credited to someone other than the actor.
fn received<'a>(f: &FactView<'a>) -> Option<&'a [u8; 32]> {
    f.subject.filter(|_| !f.has_flag(flag::SELF))
}

fn content_dim(content: &str) -> &str {
    let mut end = content.len().min(CONTENT_DIM_BYTES);
    while !content.is_char_boundary(end) {
        end -= 1;
    }
    &content[..end]
}

impl Plugin for Core {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "core".into(),
            version: 1,
            abi: ABI_VERSION,
            metrics: catalog(),
        }
    }

    fn map(facts: &FactBatch<'_>, w: &mut ContributionWriter) -> Result<(), String> {
        use Metric::*;
        let mut out = Out { w };
        for f in facts.iter().filter(counts) {
            let f = &f;
            let engaged = |out: &mut Out<'_>, subject: &[u8; 32]| {
                out.w.push(
                    UniqueEngagers as u16,
                    subject,
                    f.created_at,
                    1,
                    f.actor,
                    &[],
                );
            };
            match f.class {
                class::NOTE => out.count(NotesPublished, f.actor, f),
                class::REPLY | class::COMMENT | class::REPOST | class::QUOTE => {
                    let (published, got) = match f.class {
                        class::REPLY => (Some(RepliesPublished), RepliesReceived),
                        class::COMMENT => (None, CommentsReceived),
                        class::REPOST => (Some(RepostsPublished), RepostsReceived),
                        _ => (None, QuotesReceived),
                    };
                    if let Some(m) = published {
                        out.count(m, f.actor, f);
                    }
                    if let Some(subject) = received(f) {
                        out.count(got, subject, f);
                        engaged(&mut out, subject);
                    }
                }
                class::REACTION => {
                    out.count(ReactionsPublished, f.actor, f);
                    if let Some(subject) = received(f) {
                        let dims = [
                            ("class", f.dim("class").unwrap_or("")),
                            ("content", content_dim(f.dim("content").unwrap_or(""))),
                        ];
                        out.w.push(
                            ReactionsReceived as u16,
                            subject,
                            f.created_at,
                            1,
                            b"",
                            &dims,
                        );
                        engaged(&mut out, subject);
                    }
                }
                class::MENTION => {
                    if let Some(subject) =
                        received(f).filter(|_| !f.has_flag(flag::MENTIONS_TARGET_AUTHOR))
                    {
                        out.count(MentionsReceived, subject, f);
                    }
                }
                class::ZAP if !f.has_flag(flag::INVALID | flag::DUPLICATE_PAYMENT) => {
                    let Some(amount) = f.amount_msats else {
                        continue;
                    };
                    out.count(ZapsSent, f.actor, f);
                    out.w
                        .push(ZapMsatsSent as u16, f.actor, f.created_at, amount, b"", &[]);
                    if let Some(subject) = received(f) {
                        let dims = [("lnurl", f.dim("lnurl").unwrap_or("unverified"))];
                        out.w
                            .push(ZapsReceived as u16, subject, f.created_at, 1, b"", &dims);
                        out.w.push(
                            ZapMsatsReceived as u16,
                            subject,
                            f.created_at,
                            amount,
                            b"",
                            &dims,
                        );
                        out.w
                            .push(UniqueZappers as u16, subject, f.created_at, 1, f.actor, &[]);
                        engaged(&mut out, subject);
                    }
                }
                class::ARTICLE if !f.has_flag(flag::EDIT) => {
                    out.count(ArticlesPublished, f.actor, f)
                }
                class::FOLLOW_BASELINE | class::FOLLOW_GAINED | class::FOLLOW_LOST => {
                    let Some(followee) = f.subject else { continue };
                    let level = match f.class {
                        class::FOLLOW_GAINED => {
                            out.count(FollowersGained, followee, f);
                            1
                        }
                        class::FOLLOW_LOST => {
                            out.count(FollowersLost, followee, f);
                            -1
                        }
                        _ => 1,
                    };
                    out.w.push(
                        FollowerCount as u16,
                        followee,
                        f.created_at,
                        level,
                        b"",
                        &[],
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

na_metrics_sdk::export_plugin!(Core);

#[cfg(test)]
mod tests;
