//! Distinct counts for buckets. A [`DistinctSketch`] is exact while a bucket holds at most
//! [`EXACT_LIMIT`] distinct keys — every key hash with how many contributions carry it, so a
//! retraction (a deleted reaction, a re-attributed reply) takes its key out again — and a
//! HyperLogLog beyond that (standard error [`STANDARD_ERROR`]), where a retraction can no
//! longer be applied and is only counted.
//!
//! Stored in postgresql-hll's format (`log2m` 11, `regwidth` 5, explicit threshold 256,
//! sparse off; keys hashed as its `hll_hash_bytea` does): the exact phase is its EXPLICIT
//! type, the approximate phase its FULL type. Any PostgreSQL with the `hll` extension (RDS,
//! Aurora, Citus included) can read, union and count our buckets with `hll_cardinality` and
//! `hll_union_agg`, and a sketch built in SQL merges with ours. The per-key counts that make
//! the exact phase retractable are stored beside the sketch, not in it.

use std::io::Cursor;

/// Registers: 2^11.
const LOG2M: u32 = 11;
const REGISTERS: usize = 1 << LOG2M;
/// Bits per register.
const REGWIDTH: u32 = 5;
/// Largest register value.
const MAX_RHO: u8 = (1 << REGWIDTH) - 1;
/// Distinct keys a sketch keeps exactly (postgresql-hll's explicit threshold, a power of two).
pub const EXACT_LIMIT: usize = 256;
/// Relative standard error of an approximate count: 1.04 / sqrt(2048).
pub const STANDARD_ERROR: f64 = 0.022_98;

const STORAGE_VERSION: u8 = 1;
const TYPE_EMPTY: u8 = 1;
const TYPE_EXPLICIT: u8 = 2;
const TYPE_SPARSE: u8 = 3;
const TYPE_FULL: u8 = 4;
const FULL_BYTES: usize = (REGISTERS * REGWIDTH as usize).div_ceil(8);

/// The hash postgresql-hll's `hll_hash_bytea(key)` gives (MurmurHash3 x64-128, seed 0, the
/// first 64 bits).
pub fn hash_key(key: &[u8]) -> i64 {
    let h = murmur3::murmur3_x64_128(&mut Cursor::new(key), 0).unwrap_or_default();
    h as u64 as i64
}

/// A distinct count over keys (see the crate documentation).
#[derive(Clone, PartialEq, Eq)]
pub enum DistinctSketch {
    /// Key hash -> contributions carrying it (> 0), sorted by hash.
    Exact(Vec<(i64, i64)>),
    /// HyperLogLog registers.
    Approx(Box<[u8; REGISTERS]>),
}

impl std::fmt::Debug for DistinctSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DistinctSketch::Exact(keys) => write!(f, "Exact({} keys)", keys.len()),
            DistinctSketch::Approx(_) => write!(f, "Approx(~{:.0})", self.cardinality()),
        }
    }
}

impl Default for DistinctSketch {
    fn default() -> Self {
        DistinctSketch::Exact(Vec::new())
    }
}

/// A count and whether it is exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: u64,
    pub exact: bool,
}

/// Bytes that are not a sketch this crate writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SketchError(pub String);

impl std::fmt::Display for SketchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad distinct sketch: {}", self.0)
    }
}

impl std::error::Error for SketchError {}

impl DistinctSketch {
    /// Adds `n` contributions carrying the key with this hash (`n < 0` retracts them).
    /// Returns false when the change could not be applied: a retraction once the sketch is
    /// approximate, or one of more contributions than the key has.
    pub fn add(&mut self, hash: i64, n: i64) -> bool {
        if n == 0 {
            return true;
        }
        match self {
            DistinctSketch::Exact(keys) => match keys.binary_search_by_key(&hash, |k| k.0) {
                Ok(i) => {
                    let left = keys[i].1 + n;
                    if left < 0 {
                        return false;
                    }
                    if left == 0 {
                        keys.remove(i);
                    } else {
                        keys[i].1 = left;
                    }
                    true
                }
                Err(_) if n < 0 => false,
                Err(i) => {
                    keys.insert(i, (hash, n));
                    if keys.len() > EXACT_LIMIT {
                        *self = DistinctSketch::Approx(registers_of(keys));
                    }
                    true
                }
            },
            DistinctSketch::Approx(regs) => {
                if n < 0 {
                    return false;
                }
                insert(regs, hash);
                true
            }
        }
    }

    /// Folds `other` in: the union of the keys (counts add while both are exact).
    pub fn merge(&mut self, other: &DistinctSketch) {
        match (&mut *self, other) {
            (DistinctSketch::Exact(_), DistinctSketch::Exact(theirs)) => {
                for &(h, n) in theirs {
                    self.add(h, n);
                }
            }
            (DistinctSketch::Exact(mine), DistinctSketch::Approx(theirs)) => {
                let mut regs = theirs.clone();
                for &(h, _) in mine.iter() {
                    insert(&mut regs, h);
                }
                *self = DistinctSketch::Approx(regs);
            }
            (DistinctSketch::Approx(regs), DistinctSketch::Exact(theirs)) => {
                for &(h, _) in theirs {
                    insert(regs, h);
                }
            }
            (DistinctSketch::Approx(regs), DistinctSketch::Approx(theirs)) => {
                for (r, t) in regs.iter_mut().zip(theirs.iter()) {
                    *r = (*r).max(*t);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            DistinctSketch::Exact(keys) => keys.is_empty(),
            DistinctSketch::Approx(regs) => regs.iter().all(|r| *r == 0),
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, DistinctSketch::Exact(_))
    }

    /// postgresql-hll's `hll_cardinality`.
    pub fn cardinality(&self) -> f64 {
        match self {
            DistinctSketch::Exact(keys) => keys.len() as f64,
            DistinctSketch::Approx(regs) => hll_cardinality(regs),
        }
    }

    pub fn estimate(&self) -> Estimate {
        Estimate {
            value: self.cardinality().round() as u64,
            exact: self.is_exact(),
        }
    }

    /// The sketch in postgresql-hll's storage format.
    pub fn to_hll_bytes(&self) -> Vec<u8> {
        match self {
            DistinctSketch::Exact(keys) if keys.is_empty() => header(TYPE_EMPTY).to_vec(),
            DistinctSketch::Exact(keys) => {
                let mut out = Vec::with_capacity(3 + keys.len() * 8);
                out.extend_from_slice(&header(TYPE_EXPLICIT));
                for (h, _) in keys {
                    out.extend_from_slice(&h.to_be_bytes());
                }
                out
            }
            DistinctSketch::Approx(regs) => {
                let mut out = Vec::with_capacity(3 + FULL_BYTES);
                out.extend_from_slice(&header(TYPE_FULL));
                out.extend_from_slice(&pack(regs));
                out
            }
        }
    }

    /// The contributions per key of an exact sketch (big-endian i64s in key order), which
    /// the stored sketch itself cannot hold; `None` once approximate.
    pub fn counts_bytes(&self) -> Option<Vec<u8>> {
        match self {
            DistinctSketch::Exact(keys) => {
                Some(keys.iter().flat_map(|(_, n)| n.to_be_bytes()).collect())
            }
            DistinctSketch::Approx(_) => None,
        }
    }

    /// Reads what [`DistinctSketch::to_hll_bytes`] and [`DistinctSketch::counts_bytes`] wrote.
    /// An EXPLICIT sketch without counts (built in SQL) counts one contribution per key.
    ///
    /// # Errors
    /// When the bytes are not a postgresql-hll value with our parameters.
    pub fn from_stored(hll: &[u8], counts: Option<&[u8]>) -> Result<Self, SketchError> {
        let bad = |why: &str| Err(SketchError(why.into()));
        let [head, params, _cutoff, body @ ..] = hll else {
            return bad("shorter than its header");
        };
        if head >> 4 != STORAGE_VERSION {
            return bad("not storage version 1");
        }
        if *params != header(TYPE_EMPTY)[1] {
            return bad("log2m/regwidth other than 11/5");
        }
        match head & 0x0f {
            TYPE_EMPTY => Ok(DistinctSketch::default()),
            TYPE_EXPLICIT => {
                if body.len() % 8 != 0 {
                    return bad("explicit list not a whole number of elements");
                }
                let hashes = body
                    .chunks_exact(8)
                    .map(|c| i64::from_be_bytes(c.try_into().unwrap_or_default()));
                let mut keys: Vec<(i64, i64)> = match counts {
                    Some(c) if c.len() == body.len() => hashes
                        .zip(
                            c.chunks_exact(8)
                                .map(|c| i64::from_be_bytes(c.try_into().unwrap_or_default())),
                        )
                        .collect(),
                    Some(_) => return bad("counts do not match the explicit list"),
                    None => hashes.map(|h| (h, 1)).collect(),
                };
                keys.sort_unstable();
                keys.dedup_by_key(|k| k.0);
                if keys.len() > EXACT_LIMIT {
                    return Ok(DistinctSketch::Approx(registers_of(&keys)));
                }
                Ok(DistinctSketch::Exact(keys))
            }
            TYPE_FULL if body.len() == FULL_BYTES => Ok(DistinctSketch::Approx(unpack(body))),
            TYPE_FULL => bad("full register array of the wrong size"),
            TYPE_SPARSE => bad("sparse sketches are not written by us (sparse is off)"),
            t => bad(&format!("storage type {t}")),
        }
    }
}

fn header(kind: u8) -> [u8; 3] {
    // Explicit threshold 2^(9-1) = 256, sparse off (bit 6 clear).
    const CUTOFF: u8 = EXACT_LIMIT.trailing_zeros() as u8 + 1;
    [
        (STORAGE_VERSION << 4) | kind,
        (((REGWIDTH - 1) << 5) | LOG2M) as u8,
        CUTOFF,
    ]
}

fn registers_of(keys: &[(i64, i64)]) -> Box<[u8; REGISTERS]> {
    let mut regs = Box::new([0u8; REGISTERS]);
    for &(h, _) in keys {
        insert(&mut regs, h);
    }
    regs
}

/// postgresql-hll's register update: the low `log2m` bits pick the register, the position of
/// the lowest set bit of the rest (capped) is the value.
fn insert(regs: &mut [u8; REGISTERS], hash: i64) {
    let raw = hash as u64;
    let index = (raw & (REGISTERS as u64 - 1)) as usize;
    let rest = raw >> LOG2M;
    if rest == 0 {
        return;
    }
    let cap = 1u64 << (u32::from(MAX_RHO) - 1);
    let rho = ((rest | cap).trailing_zeros() + 1) as u8;
    regs[index] = regs[index].max(rho);
}

fn hll_cardinality(regs: &[u8; REGISTERS]) -> f64 {
    let m = REGISTERS as f64;
    let alpha_m2 = 0.7213 / (1.0 + 1.079 / m) * m * m;
    let (mut sum, mut zeros) = (0.0, 0u32);
    for &r in regs.iter() {
        sum += 1.0 / f64::from(1u32 << r);
        if r == 0 {
            zeros += 1;
        }
    }
    let estimator = alpha_m2 / sum;
    let two_to_l = 2f64.powi((i32::from(MAX_RHO) - 1) + LOG2M as i32);
    if zeros != 0 && estimator < 5.0 * m / 2.0 {
        m * (m / f64::from(zeros)).ln()
    } else if estimator <= two_to_l / 30.0 {
        estimator
    } else {
        -two_to_l * (1.0 - estimator / two_to_l).ln()
    }
}

/// Registers as big-endian ascending `regwidth`-bit words (register 0 in the top bits).
fn pack(regs: &[u8; REGISTERS]) -> Vec<u8> {
    let mut out = vec![0u8; FULL_BYTES];
    for (i, &r) in regs.iter().enumerate() {
        for b in 0..REGWIDTH as usize {
            if r & (1 << (REGWIDTH as usize - 1 - b)) != 0 {
                let bit = i * REGWIDTH as usize + b;
                out[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
    }
    out
}

fn unpack(bytes: &[u8]) -> Box<[u8; REGISTERS]> {
    // Eight 5-bit registers fill five bytes exactly (most significant bit first, as
    // postgresql-hll packs them): read each group as one 40-bit word (a summary over a
    // year unpacks hundreds of sketches; bit by bit it was most of its time).
    const _: () = assert!(REGWIDTH == 5 && REGISTERS.is_multiple_of(8));
    let mut regs = Box::new([0u8; REGISTERS]);
    for (group, chunk) in regs.chunks_exact_mut(8).zip(bytes.chunks_exact(5)) {
        let word = chunk.iter().fold(0u64, |w, b| (w << 8) | u64::from(*b));
        for (j, r) in group.iter_mut().enumerate() {
            *r = ((word >> (35 - 5 * j)) & 0x1f) as u8;
        }
    }
    regs
}

#[cfg(test)]
mod tests;
