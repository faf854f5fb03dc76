#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use super::*;
use Granularity::{Day, Hour, Minute, Month};

const DAY: i64 = 86_400;
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn r(granularity: Granularity, from: i64, to: i64) -> BucketRange {
    BucketRange {
        granularity,
        from,
        to,
    }
}

/// The tiles cover [from, to) exactly, in order, each aligned to its granularity.
fn check_tiles(from: i64, to: i64, months: bool) -> Vec<BucketRange> {
    let tiles = tile(from, to, months);
    let mut at = from;
    for t in &tiles {
        assert_eq!(t.from, at, "{tiles:?}");
        assert!(t.from < t.to);
        let g = t.granularity;
        assert_eq!(
            (g.bucket(t.from), g.bucket(t.to)),
            (t.from, t.to),
            "{t:?} misaligned"
        );
        assert!(months || g != Month, "{tiles:?}");
        at = t.to;
    }
    assert_eq!(at, to, "{tiles:?}");
    tiles
}

fn check(from: i64, to: i64) -> Vec<BucketRange> {
    check_tiles(from, to, false)
}

/// Retention with hours kept for less than the facts (100 days; the default is 400), so that
/// edges past the hour horizon read up to a day of facts: minutes 8 days, raw 400.
fn kept_at(now: i64) -> Retained {
    Retained::new(
        Horizons {
            minute: Some(Hour.bucket(now - 8 * DAY)),
            hour: Some(Day.bucket(now - 100 * DAY)),
        },
        true,
        Some(Month.bucket(now - 400 * DAY)),
    )
}

/// The plan reads `[from, to)` exactly once: tiles and fact ranges in order, without gaps
/// or overlaps, tiles aligned and never of pruned buckets, facts only where retained.
fn check_plan(plan: &Plan, from: i64, to: i64, kept: &Retained) {
    let mut parts: Vec<(i64, i64)> = plan
        .tiles
        .iter()
        .map(|t| (t.from, t.to))
        .chain(plan.facts.iter().map(|f| (f.from, f.to)))
        .collect();
    parts.sort_unstable();
    let mut at = from;
    for (f, t) in &parts {
        assert_eq!(*f, at, "a gap or overlap in {plan:?} for [{from}, {to})");
        assert!(f < t, "{plan:?}");
        at = *t;
    }
    assert_eq!(at, to, "{plan:?} ends short of {to}");
    for t in &plan.tiles {
        let g = t.granularity;
        assert_eq!((g.bucket(t.from), g.bucket(t.to)), (t.from, t.to), "{t:?}");
        if let Some(f) = kept.from(g) {
            assert!(t.from >= f, "{t:?} uses pruned buckets (kept from {f})");
        }
    }
    for f in &plan.facts {
        assert!(kept.has_facts_at(f.from), "{f:?} reads dropped facts");
    }
}

#[test]
fn tiles_days_inside_hours_and_minutes_at_the_edges() {
    let from = T0 + 10 * 3600 + 30 * 60;
    let to = T0 + 40 * DAY + 14 * 3600 + 15 * 60;
    assert_eq!(
        check(from, to),
        vec![
            r(Minute, from, T0 + 11 * 3600),
            r(Hour, T0 + 11 * 3600, T0 + DAY),
            r(Day, T0 + DAY, T0 + 40 * DAY),
            r(Hour, T0 + 40 * DAY, T0 + 40 * DAY + 14 * 3600),
            r(Minute, T0 + 40 * DAY + 14 * 3600, to),
        ]
    );
}

#[test]
fn tiles_short_and_aligned_windows() {
    let from = T0 + 10 * 3600 + 30 * 60;
    assert_eq!(check(from, from + 900), vec![r(Minute, from, from + 900)]);
    assert_eq!(
        check(from, T0 + 14 * 3600 + 60),
        vec![
            r(Minute, from, T0 + 11 * 3600),
            r(Hour, T0 + 11 * 3600, T0 + 14 * 3600),
            r(Minute, T0 + 14 * 3600, T0 + 14 * 3600 + 60),
        ]
    );
    assert_eq!(check(T0, T0 + 7 * DAY), vec![r(Day, T0, T0 + 7 * DAY)]);
    assert_eq!(check(T0, T0), vec![]);
    for (from, to) in [(T0 + 60, T0 + 3 * DAY + 3600), (T0 + 3600, T0 + DAY + 60)] {
        check(from, to);
    }
}

#[test]
fn tiles_whole_calendar_months_when_month_buckets_are_built() {
    // 2026-01-01 + 10:30 to 2026-04-10 + 14:15: January from its second day, then
    // February and March whole, then April's first nine days.
    let from = T0 + 10 * 3600 + 30 * 60;
    let (feb, apr) = (T0 + 31 * DAY, T0 + 90 * DAY);
    let to = apr + 9 * DAY + 14 * 3600 + 15 * 60;
    assert_eq!(
        check_tiles(from, to, true),
        vec![
            r(Minute, from, T0 + 11 * 3600),
            r(Hour, T0 + 11 * 3600, T0 + DAY),
            r(Day, T0 + DAY, feb),
            r(Month, feb, apr),
            r(Day, apr, apr + 9 * DAY),
            r(Hour, apr + 9 * DAY, apr + 9 * DAY + 14 * 3600),
            r(Minute, apr + 9 * DAY + 14 * 3600, to),
        ]
    );
    // Inside one month, or without month buckets, days as before.
    assert_eq!(
        check_tiles(feb, feb + 20 * DAY, true),
        vec![r(Day, feb, feb + 20 * DAY)]
    );
    assert_eq!(check(T0, apr), vec![r(Day, T0, apr)]);
    assert_eq!(check_tiles(T0, apr, true), vec![r(Month, T0, apr)]);
    // Every rolling window, ending at every hour of a year: a whole tiling.
    for h in (0..365 * 24).step_by(7) {
        let end = T0 + h * 3600 + 17 * 60;
        for (_, len) in ROLLING {
            check_tiles(end - len, end, true);
        }
    }
}

#[test]
fn months_are_calendar_months() {
    let feb = T0 + 31 * DAY;
    assert_eq!(Month.bucket(feb - 1), T0);
    assert_eq!(Month.bucket(feb), feb);
    assert_eq!(Month.next(T0 + 5), feb);
    assert_eq!(Month.next(feb), feb + 28 * DAY, "2026 is not a leap year");
    assert_eq!(Month.ceil(feb + 1), feb + 28 * DAY);
    assert_eq!(Month.count(T0, T0 + 365 * DAY), 12);
    // December rolls into January; a leap February has 29 days.
    let dec_2027 = 1_827_619_200; // 2027-12-01
    assert_eq!(Month.next(dec_2027), dec_2027 + 31 * DAY);
    let feb_2028 = dec_2027 + 62 * DAY;
    assert_eq!(Month.next(feb_2028), feb_2028 + 29 * DAY);
    assert_eq!(Month.bucket(-1), -31 * DAY, "before 1970");
    assert_eq!(Day.count(T0, T0 + DAY + 1), 2);
}

#[test]
fn bucket_arithmetic_ends_at_every_instant() {
    // Past chrono's calendar and at the ends of i64, every step moves forward and nothing
    // overflows: a loop over bucket starts always ends.
    for at in [
        i64::MIN,
        i64::MIN + 1,
        -9_000_000_000_000_000,
        -1,
        0,
        9_000_000_000_000_000,
        i64::MAX - 1,
        i64::MAX,
    ] {
        for g in Granularity::ALL {
            let b = g.bucket(at);
            let n = g.next(at);
            assert!(b <= at, "{g:?} bucket({at}) = {b}");
            assert!(n > at || at == i64::MAX, "{g:?} next({at}) = {n}");
            assert!(g.ceil(at) >= at);
            assert!(g.count(at, at.saturating_add(10 * DAY)) <= 10 * DAY);
            assert!(
                g.starts(b, at.saturating_add(3 * 31 * DAY))
                    .take(10_000_000)
                    .count()
                    < 10_000_000
            );
        }
    }
}

#[test]
fn every_edge_is_exact_where_facts_are_retained() {
    let now = T0 + 200 * DAY + 5 * 3600 + 17 * 60 + 9;
    let kept = kept_at(now);
    for (name, len) in ROLLING {
        let w = resolve(&WindowRequest::Rolling(name), now, &kept).unwrap();
        assert_eq!(w.bounds(), (now - len, now), "{name} is answered as asked");
        assert_eq!(w.rounded, Rounded::default());
        check_plan(&Plan::of(&w), now - len, now, &kept);
        // The end: the seconds since the current minute began, from facts.
        assert_eq!(
            w.facts.last(),
            Some(&TimeRange {
                from: now - 9,
                to: now
            })
        );
    }
    // The start of 30 days back lies past the minute horizon: facts up to the next hour.
    let w = resolve(&WindowRequest::Rolling("30d"), now, &kept).unwrap();
    assert_eq!(
        w.facts[0],
        TimeRange {
            from: now - 30 * DAY,
            to: Hour.ceil(now - 30 * DAY)
        }
    );
    // 365 days back: past the hour horizon, facts up to the next day.
    let w = resolve(&WindowRequest::Rolling("365d"), now, &kept).unwrap();
    assert_eq!(w.facts[0].to, Day.ceil(now - 365 * DAY));
    // A window inside one minute is all facts; an aligned one all buckets.
    let w = resolve(
        &WindowRequest::Custom {
            from: now - 40,
            to: now - 20,
        },
        now,
        &kept,
    )
    .unwrap();
    assert!(w.tiles.is_empty());
    assert_eq!(
        w.facts,
        vec![TimeRange {
            from: now - 40,
            to: now - 20
        }]
    );
    let w = resolve(
        &WindowRequest::Custom {
            from: T0 + 150 * DAY,
            to: T0 + 180 * DAY,
        },
        now,
        &kept,
    )
    .unwrap();
    assert!(w.facts.is_empty(), "{w:?}");
}

#[test]
fn random_windows_are_planned_exactly() {
    // A small deterministic generator: windows at any second, of any length up to 400 days,
    // against retention at several clocks.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |m: i64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as i64
    };
    for _ in 0..20_000 {
        let now = T0 + next(400 * DAY);
        let kept = kept_at(now);
        let to = now - next(400 * DAY);
        let from = to - 1 - next(400 * DAY);
        let w = resolve(&WindowRequest::Custom { from, to }, now, &kept).unwrap();
        let (f, t) = w.bounds();
        check_plan(&Plan::of(&w), f, t, &kept);
        assert_eq!(w.rounded.from, f != from);
        assert_eq!(w.rounded.to, t != to);
        assert!(f <= from && t >= to, "rounded outward only");
        if kept.has_facts_at(from) {
            assert_eq!(f, from);
        } else {
            assert_eq!(
                f,
                Day.bucket(from),
                "rounded to the day past the raw horizon"
            );
        }
        for g in [Hour, Day, Month] {
            let Ok(s) = resolve_series(&WindowRequest::Custom { from, to }, g, now, &kept, 20_000)
            else {
                continue;
            };
            let (sf, st) = s.bounds();
            check_plan(&Plan::of(&s.resolved), sf, st, &kept);
            assert_eq!(s.starts().count() as i64, s.points);
        }
    }
}

#[test]
fn edges_past_the_raw_horizon_are_rounded_and_say_so() {
    let now = T0 + 500 * DAY + 3 * 3600 + 5;
    let kept = kept_at(now);
    let from = now - 450 * DAY; // before the raw horizon (~400 days)
    let w = resolve(
        &WindowRequest::Custom {
            from,
            to: now - 3600,
        },
        now,
        &kept,
    )
    .unwrap();
    assert_eq!(
        w.rounded,
        Rounded {
            from: true,
            to: false
        }
    );
    assert_eq!(w.from.timestamp(), Day.bucket(from));
    assert_eq!(w.to.timestamp(), now - 3600);
    // A window ending before the horizon: both edges rounded.
    let w = resolve(
        &WindowRequest::Custom {
            from,
            to: from + 5 * DAY + 7,
        },
        now,
        &kept,
    )
    .unwrap();
    assert_eq!(
        w.rounded,
        Rounded {
            from: true,
            to: true
        }
    );
    assert!(w.facts.is_empty());
}

#[test]
fn bad_windows_are_refused_with_what_to_change() {
    let kept = Retained::default();
    for (req, says) in [
        (WindowRequest::Custom { from: 10, to: 5 }, "must be before"),
        (
            WindowRequest::Custom {
                from: 0,
                to: 20 * 365 * DAY,
            },
            "at most 3653 days",
        ),
        (
            WindowRequest::Custom {
                from: 9_000_000_000_000_000,
                to: 9_000_000_000_086_400,
            },
            "from=9000000000000000 is outside the instants answered",
        ),
        (
            WindowRequest::Custom {
                from: i64::MIN,
                to: i64::MAX,
            },
            "outside the instants answered",
        ),
        (
            WindowRequest::Custom {
                from: T0,
                to: i64::MAX,
            },
            "to=9223372036854775807 is outside",
        ),
    ] {
        let e = resolve(&req, T0, &kept).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
    assert!(WindowRequest::rolling("2w").is_err());
    let e = resolve_series(&WindowRequest::Rolling("365d"), Minute, T0, &kept, 5000)
        .unwrap_err()
        .to_string();
    assert!(e.contains("525600 minute points"), "{e}");
    let kept = Retained::new(
        Horizons {
            minute: Some(T0 - DAY),
            hour: None,
        },
        false,
        None,
    );
    let e = resolve_series(&WindowRequest::Rolling("7d"), Minute, T0, &kept, 50_000)
        .unwrap_err()
        .to_string();
    assert!(e.contains("minute buckets are kept from"), "{e}");
    let w = resolve_series(&WindowRequest::Rolling("7d"), Hour, T0 + 1, &kept, 5000).unwrap();
    assert_eq!(w.points, 7 * 24 + 1);
    let e = resolve_series(&WindowRequest::Rolling("365d"), Month, T0, &kept, 5000)
        .unwrap_err()
        .to_string();
    assert!(e.contains("being built"), "{e}");
    let kept = Retained::everything();
    let w = resolve_series(&WindowRequest::Rolling("365d"), Month, T0, &kept, 5000).unwrap();
    assert_eq!(
        (w.points, w.resolved.from.timestamp()),
        (12, T0 - 365 * DAY)
    );
}

#[test]
fn a_rolling_week_of_minutes_is_answered() {
    let now = T0 + 30 * DAY + 5 * 3600 + 17 * 60 + 9;
    let kept = kept_at(now);
    let w = resolve_series(&WindowRequest::Rolling("7d"), Minute, now, &kept, 10_080).unwrap();
    assert_eq!(w.points, 10_081, "a partial minute at each end");
    assert_eq!(w.bounds(), (now - 7 * DAY, now));
    assert_eq!(
        w.resolved.facts,
        vec![
            TimeRange {
                from: now - 7 * DAY,
                to: now - 7 * DAY + 51
            },
            TimeRange {
                from: now - 9,
                to: now
            }
        ]
    );
    // A minute longer is one point too many.
    let e = resolve_series(
        &WindowRequest::Custom {
            from: now - 7 * DAY - 60,
            to: now,
        },
        Minute,
        now,
        &kept,
        10_080,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("10081 minute points"), "{e}");
}

#[test]
fn union_joins_overlapping_and_touching_ranges() {
    let r = |from, to| TimeRange { from, to };
    assert_eq!(
        union([r(50, 60), r(0, 10), r(10, 20), r(55, 70), r(5, 5)]),
        vec![r(0, 20), r(50, 70)]
    );
    assert_eq!(union([]), vec![]);
}
