//! Reading batches: facts on the plugin side, contributions on the host side. Every read is
//! bounds-checked: the host reads what an untrusted plugin wrote, and a plugin reads only
//! what it was given. Each batch is read in one pass: a fact is checked as it is decoded.

use std::cell::Cell;

use crate::{ABI_VERSION, AbiError, Contribution, MAX_KEY_LEN};

pub(crate) const SUBJECT: u8 = 1;
pub(crate) const TARGET_EVENT: u8 = 2;
pub(crate) const AMOUNT: u8 = 4;
pub(crate) const EXPIRES: u8 = 8;

/// Size of a fact before its target coordinate and dims.
pub(crate) const FACT_FIXED: usize = 8 + 32 + 2 + 2 + 4 + 1 + 32 * 3 + 8 + 8;
/// Size of a contribution before its key and dims.
pub(crate) const CONTRIBUTION_FIXED: usize = 2 + 8 + 8 + 32 + 1;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

#[cold]
fn truncated(at: usize) -> AbiError {
    AbiError(format!("truncated at byte {at}"))
}

// The reads are inlined: out of line, each is a call per field, which in a plugin (fuel
// metered, no inlining by the WASM compiler) cost more than the reading.
impl<'a> Reader<'a> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], AbiError> {
        match self.bytes.get(self.at..).and_then(|rest| rest.get(..n)) {
            Some(out) => {
                self.at += n;
                Ok(out)
            }
            None => Err(truncated(self.at)),
        }
    }

    /// The next `N` bytes as an array: fields are then read at constant offsets, with no
    /// bounds check of their own.
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], AbiError> {
        let at = self.at;
        self.take(N)?.first_chunk().ok_or_else(|| truncated(at))
    }

    #[inline(always)]
    fn u8(&mut self) -> Result<u8, AbiError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline(always)]
    fn u16(&mut self) -> Result<u16, AbiError> {
        Ok(u16::from_le_bytes(*self.array()?))
    }

    fn u32(&mut self) -> Result<u32, AbiError> {
        Ok(u32::from_le_bytes(*self.array()?))
    }

    fn header(&mut self) -> Result<usize, AbiError> {
        let abi = self.u32()?;
        if abi != ABI_VERSION {
            return Err(AbiError(format!("layout {abi}, expected {ABI_VERSION}")));
        }
        Ok(self.u32()? as usize)
    }

    /// Packed dims, checked for structure (their strings are checked when read).
    fn dims(&mut self) -> Result<&'a [u8], AbiError> {
        let n = usize::from(self.u16()?);
        let raw = self.take(n)?;
        let mut r = Reader { bytes: raw, at: 0 };
        while r.at < raw.len() {
            let k = usize::from(r.u8()?);
            r.take(k)?;
            let v = usize::from(r.u16()?);
            r.take(v)?;
        }
        Ok(raw)
    }
}

#[inline(always)]
fn le_i64(b: &[u8], at: usize) -> i64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(v)
}

#[inline(always)]
fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn id<const AT: usize>(b: &[u8]) -> &[u8; 32] {
    // A 32-byte subslice of a fixed-size array always converts.
    b[AT..AT + 32].try_into().unwrap_or(&[0; 32])
}

/// The `(key, value)` byte pair of packed dims at `at`, and where the next one starts;
/// `None` at the end or on a malformed tail (it cannot be read as anything else).
#[inline(always)]
fn pair_at(raw: &[u8], at: usize) -> Option<(&[u8], &[u8], usize)> {
    let (&k_len, rest) = raw.get(at..)?.split_first()?;
    let (key, rest) = rest.split_at_checked(usize::from(k_len))?;
    let (v_len, rest) = rest.split_first_chunk::<2>()?;
    let v_len = usize::from(u16::from_le_bytes(*v_len));
    let value = rest.get(..v_len)?;
    Some((key, value, at + 3 + key.len() + v_len))
}

/// `(key, value)` byte pairs of packed dims.
fn raw_pairs(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (key, value, next) = pair_at(raw, at)?;
        at = next;
        Some((key, value))
    })
}

/// The pairs whose key and value are both UTF-8.
fn dim_pairs(raw: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    raw_pairs(raw)
        .filter_map(|(k, v)| Some((std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?)))
}

/// The value of dimension `key`: keys are compared as bytes, only the value found is
/// checked for UTF-8.
fn dim_value<'a>(raw: &'a [u8], key: &str) -> Option<&'a str> {
    let mut at = 0;
    while let Some((k, v, next)) = pair_at(raw, at) {
        if k == key.as_bytes() {
            return std::str::from_utf8(v).ok();
        }
        at = next;
    }
    None
}

/// One fact of a batch, borrowed from the batch bytes.
#[derive(Debug, Clone, Copy)]
pub struct FactView<'a> {
    pub created_at: i64,
    pub event_id: &'a [u8; 32],
    pub seq: i16,
    pub class: u16,
    pub flags: u32,
    pub actor: &'a [u8; 32],
    pub subject: Option<&'a [u8; 32]>,
    pub target_event: Option<&'a [u8; 32]>,
    pub target_coord: Option<&'a str>,
    pub amount_msats: Option<i64>,
    pub expires_at: Option<i64>,
    dims: &'a [u8],
}

impl<'a> FactView<'a> {
    /// The value of dimension `key`.
    pub fn dim(&self, key: &str) -> Option<&'a str> {
        dim_value(self.dims, key)
    }

    pub fn dims(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        dim_pairs(self.dims)
    }

    pub fn has_flag(&self, bit: u32) -> bool {
        self.flags & bit != 0
    }
}

/// A fact batch, decoded and checked as it is iterated: a batch costs no allocation and one
/// pass, which matters inside a plugin whose memory starts empty on every call. Whether
/// what was iterated was well formed is [`FactBatch::check`]ed after.
pub struct FactBatch<'a> {
    /// The facts, after the header.
    body: &'a [u8],
    len: usize,
    /// The first fault an iteration met (the iteration stopped there).
    fault: Cell<Option<AbiError>>,
}

impl std::fmt::Debug for FactBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactBatch")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'a> FactBatch<'a> {
    /// Reads the header of a batch; the facts are checked as they are iterated.
    ///
    /// # Errors
    /// When the bytes are not a layout-1 fact batch.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader { bytes, at: 0 };
        let n = r.header()?;
        if n > bytes.len() / (FACT_FIXED + 4) + 1 {
            return Err(AbiError(format!(
                "{n} facts cannot fit in {} bytes",
                bytes.len()
            )));
        }
        Ok(FactBatch {
            body: &bytes[r.at..],
            len: n,
            fault: Cell::new(None),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The facts in order. A malformed fact ends the iteration and is reported by
    /// [`FactBatch::check`]; so are bytes left over after the last fact.
    pub fn iter(&self) -> impl Iterator<Item = FactView<'a>> + '_ {
        let mut r = Reader {
            bytes: self.body,
            at: 0,
        };
        let mut left = self.len;
        std::iter::from_fn(move || {
            if left == 0 {
                if r.at != r.bytes.len() {
                    self.fault
                        .set(Some(AbiError("trailing bytes after the last fact".into())));
                    r.at = r.bytes.len();
                }
                return None;
            }
            match next_fact(&mut r) {
                Ok(f) => {
                    left -= 1;
                    Some(f)
                }
                Err(e) => {
                    self.fault.set(Some(e));
                    left = 0;
                    r.at = r.bytes.len();
                    None
                }
            }
        })
    }

    /// Whether every iteration so far read well-formed facts.
    ///
    /// # Errors
    /// The first fault met.
    pub fn check(&self) -> Result<(), AbiError> {
        match self.fault.take() {
            Some(e) => {
                self.fault.set(Some(e.clone()));
                Err(e)
            }
            None => Ok(()),
        }
    }
}

/// Decodes and checks the fact at the reader.
#[inline(always)]
fn next_fact<'a>(r: &mut Reader<'a>) -> Result<FactView<'a>, AbiError> {
    // The fixed part and the coordinate's length, read at once.
    let b: &'a [u8; FACT_FIXED + 2] = r.array()?;
    let present = b[48];
    let coord_len = usize::from(le_u16(b, FACT_FIXED));
    let coord = if coord_len == 0 {
        None
    } else {
        Some(
            std::str::from_utf8(r.take(coord_len)?)
                .map_err(|_| AbiError("a target coordinate is not UTF-8".into()))?,
        )
    };
    let dims_len = usize::from(r.u16()?);
    let dims = r.take(dims_len)?;
    let has = |bit: u8| present & bit != 0;
    Ok(FactView {
        created_at: le_i64(b, 0),
        event_id: id::<8>(b),
        seq: le_u16(b, 40) as i16,
        class: le_u16(b, 42),
        flags: u32::from_le_bytes([b[44], b[45], b[46], b[47]]),
        actor: id::<49>(b),
        subject: has(SUBJECT).then_some(id::<81>(b)),
        target_event: has(TARGET_EVENT).then_some(id::<113>(b)),
        target_coord: coord,
        amount_msats: has(AMOUNT).then_some(le_i64(b, 145)),
        expires_at: has(EXPIRES).then_some(le_i64(b, 153)),
        dims,
    })
}

/// One contribution, borrowed (the host copies what it keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContributionView<'a> {
    pub metric: u16,
    pub at: i64,
    pub value: i64,
    pub subject: &'a [u8; 32],
    pub key: &'a [u8],
    dims: &'a [u8],
}

impl<'a> ContributionView<'a> {
    pub fn dims(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        dim_pairs(self.dims)
    }

    pub fn has_dims(&self) -> bool {
        !self.dims.is_empty()
    }

    pub fn to_owned(&self) -> Contribution {
        Contribution {
            metric: self.metric,
            subject: *self.subject,
            at: self.at,
            value: self.value,
            key: self.key.to_vec(),
            dims: self
                .dims()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

/// Checks the contribution at the reader and moves past it: its metric index below
/// `metrics`, its key within [`MAX_KEY_LEN`], its lengths and its dims' structure.
#[inline]
fn check_contribution(r: &mut Reader<'_>, metrics: usize) -> Result<(), AbiError> {
    let b: &[u8; CONTRIBUTION_FIXED] = r.array()?;
    let metric = le_u16(b, 0);
    if usize::from(metric) >= metrics {
        return Err(AbiError(format!(
            "a contribution to metric #{metric} (it declares {metrics})"
        )));
    }
    let key_len = usize::from(b[50]);
    if key_len > MAX_KEY_LEN {
        return Err(AbiError(format!(
            "a key of {key_len} bytes (at most {MAX_KEY_LEN})"
        )));
    }
    r.take(key_len)?;
    r.dims()?;
    Ok(())
}

/// Reads the contribution at the reader, already checked by [`check_contribution`].
fn next_contribution<'a>(r: &mut Reader<'a>) -> Result<ContributionView<'a>, AbiError> {
    let b: &'a [u8; CONTRIBUTION_FIXED] = r.array()?;
    let key = r.take(usize::from(b[50]))?;
    let dims_len = usize::from(r.u16()?);
    let dims = r.take(dims_len)?;
    Ok(ContributionView {
        metric: le_u16(b, 0),
        at: le_i64(b, 2),
        value: le_i64(b, 10),
        subject: id::<18>(b),
        key,
        dims,
    })
}

/// A plugin's output, checked once and then read in place: the host keeps the packed bytes
/// and hands out [`ContributionView`]s, so a batch of contributions costs no allocation per
/// contribution. The parts of a split batch are kept as they came, in order (joining them
/// would copy every byte once more).
#[derive(Debug, Clone, Default)]
pub struct Contributions {
    /// Layout-1 contribution batches, each checked, their header's counts summing to `len`.
    parts: Vec<Vec<u8>>,
    len: usize,
}

impl Contributions {
    /// Checks a contribution batch and keeps it: metric indexes below `metrics`, keys
    /// within [`MAX_KEY_LEN`], every length in bounds, nothing left over. (How many a batch
    /// may hold is the caller's to judge: [`Contributions::len`].)
    ///
    /// # Errors
    /// What is wrong, first.
    pub fn decode(bytes: Vec<u8>, metrics: usize) -> Result<Self, AbiError> {
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        let n = r.header()?;
        for _ in 0..n {
            check_contribution(&mut r, metrics)?;
        }
        if r.at != bytes.len() {
            return Err(AbiError(
                "trailing bytes after the last contribution".into(),
            ));
        }
        Ok(Contributions {
            parts: vec![bytes],
            len: n,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = ContributionView<'_>> {
        self.parts.iter().flat_map(|bytes| {
            let mut r = Reader { bytes, at: 0 };
            // Checked in `decode`: the reads cannot fail.
            let n = r.header().unwrap_or(0);
            (0..n).map_while(move |_| next_contribution(&mut r).ok())
        })
    }

    /// Appends `other`'s contributions after these.
    pub fn append(&mut self, other: Contributions) {
        self.parts.extend(other.parts);
        self.len += other.len;
    }

    /// Every contribution, owned.
    pub fn to_vec(&self) -> Vec<Contribution> {
        self.iter().map(|c| c.to_owned()).collect()
    }
}

/// The same contributions in the same order, however they were split into parts.
impl PartialEq for Contributions {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Contributions {}
