//! Writes `metrics-plugins/fixtures/events.jsonl`: signed events covering every fact class
//! and flag (`metrics-plugins/fixtures/README.md` tells the story). Run from the checkout:
//! `cargo run -p na-plugin-testing --example make-fixtures`. The keys are fixed; the
//! signatures are not (BIP-340 signing is randomized), so every run writes new ids.
#![allow(
    clippy::unwrap_used,
    reason = "a one-off generator: a failure should stop it"
)]

use nostr_sdk::prelude::*;

const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn keys(n: u8) -> Keys {
    Keys::new(SecretKey::from_slice(&[n; 32]).unwrap())
}

fn sign(keys: &Keys, kind: u16, content: &str, tags: Vec<Tag>, at: u64) -> Event {
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .allow_self_tagging()
        .sign_with_keys(keys)
        .unwrap()
}

/// A zap receipt signed by the wallet with `tags`.
fn resign(wallet: &Keys, tags: Vec<Tag>, at: u64) -> Event {
    EventBuilder::new(Kind::ZapReceipt, "")
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(wallet)
        .unwrap()
}

fn tag(parts: &[&str]) -> Tag {
    Tag::parse(parts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

fn main() {
    let (alice, bob, carol, dave, wallet) = (keys(1), keys(2), keys(3), keys(4), keys(9));
    let (a, b, c) = (
        alice.public_key().to_hex(),
        bob.public_key().to_hex(),
        carol.public_key().to_hex(),
    );
    let mut out: Vec<Event> = Vec::new();
    // Notes, and what others do to them.
    let note = sign(&alice, 1, "gm nostr", vec![], T0);
    let n = note.id.to_hex();
    out.push(note.clone());
    out.push(sign(
        &bob,
        1,
        "gm alice",
        vec![tag(&["e", &n, "", "root"]), tag(&["p", &a])],
        T0 + 60,
    ));
    out.push(sign(
        &carol,
        1111,
        "nice",
        vec![
            tag(&["E", &n, "", &a]),
            tag(&["K", "1"]),
            tag(&["P", &a]),
            tag(&["e", &n, "", &a]),
            tag(&["k", "1"]),
            tag(&["p", &a]),
        ],
        T0 + 120,
    ));
    out.push(sign(
        &bob,
        7,
        "+",
        vec![tag(&["e", &n]), tag(&["p", &a])],
        T0 + 180,
    ));
    out.push(sign(
        &carol,
        7,
        "🔥",
        vec![tag(&["e", &n]), tag(&["p", &a])],
        T0 + 240,
    ));
    out.push(sign(
        &dave,
        7,
        "-",
        vec![tag(&["e", &n]), tag(&["p", &a])],
        T0 + 300,
    ));
    out.push(sign(
        &alice,
        7,
        "+",
        vec![tag(&["e", &n]), tag(&["p", &a])],
        T0 + 330,
    )); // self-like
    out.push(sign(
        &carol,
        6,
        &note.as_json(),
        vec![tag(&["e", &n]), tag(&["p", &a])],
        T0 + 360,
    ));
    // A quote that p-tags the quoted author: a quote, and a mention that does not count.
    out.push(sign(
        &dave,
        1,
        "look",
        vec![tag(&["q", &n]), tag(&["p", &a])],
        T0 + 420,
    ));
    out.push(sign(
        &bob,
        1,
        "say hi to alice",
        vec![tag(&["p", &a])],
        T0 + 480,
    )); // a mention
    // A note deleted by its author, and one that expired.
    let gone = sign(&bob, 1, "oops", vec![], T0 + 540);
    out.push(gone.clone());
    out.push(sign(
        &bob,
        5,
        "",
        vec![tag(&["e", &gone.id.to_hex()])],
        T0 + 600,
    ));
    out.push(sign(
        &carol,
        1,
        "brb",
        vec![tag(&["expiration", &(T0 + 3_600).to_string()])],
        T0 + 660,
    ));
    // An article, then an edit of it.
    let d = format!("30023:{a}:hello");
    out.push(sign(
        &alice,
        30023,
        "# Hello",
        vec![tag(&["d", "hello"])],
        T0 + 720,
    ));
    out.push(sign(
        &alice,
        30023,
        "# Hello, again",
        vec![tag(&["d", "hello"])],
        T0 + 780,
    ));
    out.push(sign(
        &bob,
        7,
        "+",
        vec![tag(&["a", &d]), tag(&["p", &a])],
        T0 + 840,
    ));
    // Follows: bob's first list (a baseline), then he adds carol (gained) and drops alice (lost).
    out.push(sign(&bob, 3, "", vec![tag(&["p", &a])], T0 + 900));
    out.push(sign(
        &bob,
        3,
        "",
        vec![tag(&["p", &a]), tag(&["p", &c])],
        T0 + 960,
    ));
    out.push(sign(&bob, 3, "", vec![tag(&["p", &c])], T0 + 1_020));
    out.push(sign(
        &dave,
        3,
        "",
        vec![tag(&["p", &a]), tag(&["p", &b])],
        T0 + 1_080,
    ));
    // Zaps of alice's note: bob's; the same payment reported again; a forged receipt (the
    // request it carries was altered, so its signature fails); alice zapping herself.
    let zap_on = |sender: &Keys, msats: u64, at: u64| {
        let on_note = vec![Tag::event(note.id)];
        let receipt = na_datagen::zap_receipt(
            sender,
            &wallet,
            &alice.public_key(),
            on_note.clone(),
            msats,
            at,
        )
        .unwrap();
        resign(
            &wallet,
            receipt.tags.iter().cloned().chain(on_note).collect(),
            at,
        )
    };
    let zap = zap_on(&bob, 21_000, T0 + 1_140);
    out.push(zap.clone());
    out.push(resign(
        &wallet,
        zap.tags.iter().cloned().collect(),
        T0 + 1_200,
    ));
    let cheap = zap_on(&carol, 1_000, T0 + 1_260);
    let forged: Vec<Tag> = cheap
        .tags
        .iter()
        .map(|t| match (t.kind(), t.content()) {
            (TagKind::Description, Some(request)) => Tag::custom(
                TagKind::Description,
                [request.replace("\"1000\"", "\"1000000\"")],
            ),
            _ => t.clone(),
        })
        .collect();
    out.push(resign(&wallet, forged, T0 + 1_260));
    out.push(zap_on(&alice, 5_000, T0 + 1_320));

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = out.iter().map(|e| e.as_json() + "\n").collect();
    std::fs::write(dir.join("events.jsonl"), text).unwrap();
    println!(
        "{} events to {}",
        out.len(),
        dir.join("events.jsonl").display()
    );
}
