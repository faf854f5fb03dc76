//! Writing batches: facts on the host side, contributions on the plugin side.

use crate::decode::{AMOUNT, CONTRIBUTION_FIXED, EXPIRES, FACT_FIXED, SUBJECT, TARGET_EVENT};
use crate::{ABI_VERSION, Fact, MAX_KEY_LEN};

/// Bytes before a batch's first entry: `u32 abi, u32 count`.
const HEADER: usize = 8;

fn header(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&ABI_VERSION.to_le_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
}

/// Appends packed dims; pairs that do not fit the layout (key over 255 bytes, value over
/// 64 KiB, all dims over 64 KiB) are left out.
fn dims<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    for (k, v) in pairs {
        let size = 1 + k.len() + 2 + v.len();
        if k.len() > usize::from(u8::MAX)
            || v.len() > usize::from(u16::MAX)
            || out.len() - len_at - 2 + size > usize::from(u16::MAX)
        {
            continue;
        }
        out.push(k.len() as u8);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    let n = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&n.to_le_bytes());
}

/// Packs facts into a layout-1 batch (replacing `out`'s contents). A target coordinate
/// longer than 64 KiB is left out.
pub fn encode_facts(facts: &[Fact], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(HEADER + facts.len() * (FACT_FIXED + 4));
    header(out, facts.len());
    for f in facts {
        let mut present = 0;
        for (bit, is) in [
            (SUBJECT, f.subject.is_some()),
            (TARGET_EVENT, f.target_event.is_some()),
            (AMOUNT, f.amount_msats.is_some()),
            (EXPIRES, f.expires_at.is_some()),
        ] {
            if is {
                present |= bit;
            }
        }
        let mut fixed = [0u8; FACT_FIXED];
        fixed[0..8].copy_from_slice(&f.created_at.to_le_bytes());
        fixed[8..40].copy_from_slice(&f.event_id);
        fixed[40..42].copy_from_slice(&f.seq.to_le_bytes());
        fixed[42..44].copy_from_slice(&f.class.to_le_bytes());
        fixed[44..48].copy_from_slice(&f.flags.to_le_bytes());
        fixed[48] = present;
        fixed[49..81].copy_from_slice(&f.actor);
        fixed[81..113].copy_from_slice(&f.subject.unwrap_or_default());
        fixed[113..145].copy_from_slice(&f.target_event.unwrap_or_default());
        fixed[145..153].copy_from_slice(&f.amount_msats.unwrap_or_default().to_le_bytes());
        fixed[153..161].copy_from_slice(&f.expires_at.unwrap_or_default().to_le_bytes());
        out.extend_from_slice(&fixed);
        let coord = f
            .target_coord
            .as_deref()
            .filter(|c| c.len() <= usize::from(u16::MAX))
            .unwrap_or("");
        out.extend_from_slice(&(coord.len() as u16).to_le_bytes());
        out.extend_from_slice(coord.as_bytes());
        dims(out, f.dims.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
}

/// Builds a contribution batch (the plugin side).
#[derive(Debug)]
pub struct ContributionWriter {
    buf: Vec<u8>,
    count: u32,
}

impl ContributionWriter {
    pub fn with_capacity(facts: usize) -> Self {
        let mut buf = Vec::with_capacity(8 + facts * 60);
        header(&mut buf, 0);
        ContributionWriter { buf, count: 0 }
    }

    /// Adds one contribution. A key longer than [`MAX_KEY_LEN`] is cut to it.
    // Inlined into the plugin's loop: in WASM a call with this many arguments costs about
    // as much as the push.
    #[inline(always)]
    pub fn push(
        &mut self,
        metric: u16,
        subject: &[u8; 32],
        at: i64,
        value: i64,
        key: &[u8],
        dim_pairs: &[(&str, &str)],
    ) {
        // The common shapes (no dims; no key or an id as key) are assembled on the stack and
        // appended at once in a constant size: one capacity check and no copy of a variable
        // length (in WASM, a call out of the plugin's code).
        let mut head = [0u8; CONTRIBUTION_FIXED + 32 + 2];
        head[0..2].copy_from_slice(&metric.to_le_bytes());
        head[2..10].copy_from_slice(&at.to_le_bytes());
        head[10..18].copy_from_slice(&value.to_le_bytes());
        head[18..50].copy_from_slice(subject);
        match (key.len(), dim_pairs.is_empty()) {
            (0, true) => self.buf.extend_from_slice(&head[..CONTRIBUTION_FIXED + 2]),
            (32, true) => {
                head[50] = 32;
                head[CONTRIBUTION_FIXED..CONTRIBUTION_FIXED + 32].copy_from_slice(key);
                self.buf.extend_from_slice(&head);
            }
            _ => self.push_rest(&head, key, dim_pairs),
        }
        self.count += 1;
    }

    /// The rest of [`ContributionWriter::push`]: any key, dims.
    #[inline(never)]
    fn push_rest(&mut self, head: &[u8], key: &[u8], dim_pairs: &[(&str, &str)]) {
        let key = &key[..key.len().min(MAX_KEY_LEN)];
        self.buf.extend_from_slice(&head[..CONTRIBUTION_FIXED - 1]);
        self.buf.push(key.len() as u8);
        self.buf.extend_from_slice(key);
        dims(&mut self.buf, dim_pairs.iter().copied());
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The packed batch.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[4..HEADER].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }
}
