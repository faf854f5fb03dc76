//! Reading batches: facts on the plugin side, contributions on the host side. Every read is
//! bounds-checked: the host reads what an untrusted plugin wrote.

use crate::{ABI_VERSION, AbiError, Contribution, MAX_KEY_LEN};

pub(crate) const SUBJECT: u8 = 1;
pub(crate) const TARGET_EVENT: u8 = 2;
pub(crate) const AMOUNT: u8 = 4;
pub(crate) const EXPIRES: u8 = 8;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AbiError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| AbiError(format!("truncated at byte {}", self.at)))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], AbiError> {
        self.take(N)?
            .try_into()
            .map_err(|_| AbiError("length".into()))
    }

    fn u8(&mut self) -> Result<u8, AbiError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, AbiError> {
        Ok(u16::from_le_bytes(*self.array()?))
    }

    fn u32(&mut self) -> Result<u32, AbiError> {
        Ok(u32::from_le_bytes(*self.array()?))
    }

    fn i64(&mut self) -> Result<i64, AbiError> {
        Ok(i64::from_le_bytes(*self.array()?))
    }

    fn str(&mut self, n: usize) -> Result<&'a str, AbiError> {
        std::str::from_utf8(self.take(n)?).map_err(|_| AbiError("a string is not UTF-8".into()))
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

/// `(key, value)` byte pairs of packed dims that [`Reader::dims`] checked.
fn raw_pairs(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut r = Reader { bytes: raw, at: 0 };
    std::iter::from_fn(move || {
        if r.at >= raw.len() {
            return None;
        }
        let k = usize::from(r.u8().ok()?);
        let key = r.take(k).ok()?;
        let v = usize::from(r.u16().ok()?);
        Some((key, r.take(v).ok()?))
    })
}

/// The pairs whose key and value are both UTF-8.
fn dim_pairs(raw: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    raw_pairs(raw)
        .filter_map(|(k, v)| Some((std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?)))
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
        dim_pairs(self.dims)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    pub fn dims(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        dim_pairs(self.dims)
    }

    pub fn has_flag(&self, bit: u32) -> bool {
        self.flags & bit != 0
    }
}

/// Size of a fact before its target coordinate and dims.
const FIXED: usize = 8 + 32 + 2 + 2 + 4 + 1 + 32 * 3 + 8 + 8;

/// A checked fact batch. Facts are decoded as they are iterated: a batch costs no
/// allocation, which matters inside a plugin whose memory starts empty on every call.
#[derive(Debug, Clone, Copy)]
pub struct FactBatch<'a> {
    /// The facts, after the header.
    body: &'a [u8],
    len: usize,
}

impl<'a> FactBatch<'a> {
    /// Checks the structure of a batch: every length in bounds, nothing left over.
    ///
    /// # Errors
    /// When the bytes are not a layout-1 fact batch.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader { bytes, at: 0 };
        let n = r.header()?;
        if n > bytes.len() / (FIXED + 4) + 1 {
            return Err(AbiError(format!(
                "{n} facts cannot fit in {} bytes",
                bytes.len()
            )));
        }
        let start = r.at;
        for _ in 0..n {
            r.take(FIXED)?;
            let coord_len = usize::from(r.u16()?);
            r.str(coord_len)?;
            r.dims()?;
        }
        if r.at != bytes.len() {
            return Err(AbiError("trailing bytes after the last fact".into()));
        }
        Ok(FactBatch {
            body: &bytes[start..],
            len: n,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = FactView<'a>> + 'a {
        let mut r = Reader {
            bytes: self.body,
            at: 0,
        };
        (0..self.len).map_while(move |_| next_fact(&mut r).ok())
    }
}

/// Decodes the fact at the reader (checked by [`FactBatch::parse`]).
fn next_fact<'a>(r: &mut Reader<'a>) -> Result<FactView<'a>, AbiError> {
    let created_at = r.i64()?;
    let event_id = r.array()?;
    let seq = i16::from_le_bytes(*r.array()?);
    let class = r.u16()?;
    let flags = r.u32()?;
    let present = r.u8()?;
    let actor = r.array()?;
    let subject = r.array()?;
    let target_event = r.array()?;
    let amount = r.i64()?;
    let expires = r.i64()?;
    let coord_len = usize::from(r.u16()?);
    let coord = r.str(coord_len)?;
    let dims_len = usize::from(r.u16()?);
    let dims = r.take(dims_len)?;
    Ok(FactView {
        created_at,
        event_id,
        seq,
        class,
        flags,
        actor,
        subject: (present & SUBJECT != 0).then_some(subject),
        target_event: (present & TARGET_EVENT != 0).then_some(target_event),
        target_coord: (coord_len > 0).then_some(coord),
        amount_msats: (present & AMOUNT != 0).then_some(amount),
        expires_at: (present & EXPIRES != 0).then_some(expires),
        dims,
    })
}

/// One contribution, borrowed (the host copies what it keeps).
#[derive(Debug, Clone, Copy)]
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

/// Reads a contribution batch, at most `limit` entries.
///
/// # Errors
/// When the bytes are not a layout-1 contribution batch, or hold more than `limit`.
pub fn decode_contributions(
    bytes: &[u8],
    limit: usize,
) -> Result<Vec<ContributionView<'_>>, AbiError> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.header()?;
    if n > limit {
        return Err(AbiError(format!(
            "{n} contributions, more than the limit of {limit}"
        )));
    }
    if n > bytes.len() / 53 + 1 {
        return Err(AbiError(format!(
            "{n} contributions cannot fit in {} bytes",
            bytes.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let metric = r.u16()?;
        let at = r.i64()?;
        let value = r.i64()?;
        let subject = r.array()?;
        let key_len = usize::from(r.u8()?);
        if key_len > MAX_KEY_LEN {
            return Err(AbiError(format!(
                "a key of {key_len} bytes (at most {MAX_KEY_LEN})"
            )));
        }
        let key = r.take(key_len)?;
        let dims = r.dims()?;
        out.push(ContributionView {
            metric,
            at,
            value,
            subject,
            key,
            dims,
        });
    }
    if r.at != bytes.len() {
        return Err(AbiError(
            "trailing bytes after the last contribution".into(),
        ));
    }
    Ok(out)
}
