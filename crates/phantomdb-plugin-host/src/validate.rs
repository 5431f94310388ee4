//! Full validation of Arrow data coming back from a plugin, tuned for the common case.
//!
//! [`validate_full`] accepts and rejects exactly what [`ArrayData::validate_full`] does (the
//! tests check both verdicts agree), but checks strings and binaries with tight loops:
//!
//! * `Utf8`/`Binary` (and large): one branch-free pass over the offsets for monotonicity,
//!   bounds from the first and last; UTF-8 of only the referenced bytes, as an ASCII check
//!   first and, only when that fails, `from_utf8` plus a char-boundary check per offset.
//! * `Utf8View`/`BinaryView`: an inline ASCII value (the common short string) is checked with
//!   one mask over its view instead of a `from_utf8` call per value.
//!
//! Arrow's own string-view check calls `from_utf8` once per value: for a scan of 1M short
//! strings that was a quarter of the whole query. Every other type, and every structural
//! check (buffer sizes, null counts, non-nullable children), is delegated to arrow.

use arrow_buffer::ArrowNativeType;
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType};

/// Validates `data` and all its children, like [`ArrayData::validate_full`]. The error names
/// the struct field (column) at fault.
pub(crate) fn validate_full(data: &ArrayData) -> Result<(), String> {
    validate_array(data).map_err(|e| match e {
        ArrowError::InvalidArgumentError(m) => m,
        other => other.to_string(),
    })
}

fn validate_array(data: &ArrayData) -> Result<(), ArrowError> {
    // Buffer counts and sizes, offsets' first/last bounds, child lengths.
    data.validate()?;
    data.validate_nulls()?;
    match data.data_type() {
        DataType::Utf8 => validate_var_width::<i32>(data, true)?,
        DataType::LargeUtf8 => validate_var_width::<i64>(data, true)?,
        DataType::Binary => validate_var_width::<i32>(data, false)?,
        DataType::LargeBinary => validate_var_width::<i64>(data, false)?,
        DataType::Utf8View => validate_views(data, true)?,
        DataType::BinaryView => validate_views(data, false)?,
        _ => data.validate_values()?,
    }
    for (i, child) in data.child_data().iter().enumerate() {
        validate_array(child).map_err(|e| {
            let e = match e {
                ArrowError::InvalidArgumentError(m) => m,
                other => other.to_string(),
            };
            let field = match data.data_type() {
                DataType::Struct(fields) => fields.get(i),
                _ => None,
            };
            invalid(match field {
                Some(f) => format!("column {}: {e}", f.name()),
                None => format!("{} child #{i}: {e}", data.data_type()),
            })
        })?;
    }
    Ok(())
}

fn invalid(msg: String) -> ArrowError {
    ArrowError::InvalidArgumentError(msg)
}

/// Offsets and (for strings) UTF-8 of a variable-width array whose buffer sizes were checked
/// by [`ArrayData::validate`].
fn validate_var_width<O>(data: &ArrayData, utf8: bool) -> Result<(), ArrowError>
where
    O: ArrowNativeType + Ord,
{
    let (Some(offsets_buf), Some(values_buf)) = (data.buffers().first(), data.buffers().get(1))
    else {
        return Err(invalid(format!(
            "{} array without offset and value buffers",
            data.data_type()
        )));
    };
    if data.is_empty() && offsets_buf.is_empty() {
        return Ok(());
    }
    // `from_ffi` aligns imported buffers, and `validate` checked the length; stay checked anyway.
    // SAFETY: offsets are plain integers: every bit pattern is a valid `O`.
    let (prefix, all_offsets, _) = unsafe { offsets_buf.as_slice().align_to::<O>() };
    if !prefix.is_empty() {
        return Err(invalid(format!(
            "{} offsets are misaligned",
            data.data_type()
        )));
    }
    let Some(offsets) = all_offsets.get(data.offset()..=data.offset() + data.len()) else {
        return Err(invalid(format!(
            "{} offsets buffer is too short",
            data.data_type()
        )));
    };
    // Monotonic: a branch-free fold the compiler vectorizes.
    let monotonic = offsets.windows(2).fold(true, |ok, w| ok & (w[0] <= w[1]));
    if !monotonic {
        let slot = offsets
            .windows(2)
            .position(|w| w[0] > w[1])
            .unwrap_or_default();
        return Err(invalid(format!(
            "Offset invariant failure: non-monotonic offset at slot {slot}"
        )));
    }
    let values = values_buf.as_slice();
    let bound = |o: O, what: &str| -> Result<usize, ArrowError> {
        match o.to_usize() {
            Some(n) if n <= values.len() => Ok(n),
            _ => Err(invalid(format!(
                "Offset invariant failure: {what} offset {o:?} out of bounds (values are {} bytes)",
                values.len()
            ))),
        }
    };
    // Monotonic, so first >= 0 and last in bounds put every offset in bounds.
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
        return Ok(());
    };
    let (first, last) = (bound(first, "first")?, bound(last, "last")?);
    if !utf8 {
        return Ok(());
    }
    let referenced = &values[first..last];
    if referenced.is_ascii() {
        // Every byte is a char boundary.
        return Ok(());
    }
    std::str::from_utf8(referenced).map_err(|e| {
        invalid(format!(
            "Invalid UTF8 sequence at byte {}: {e}",
            first + e.valid_up_to()
        ))
    })?;
    // Valid UTF-8 as a whole: each value is valid iff every offset is on a char boundary.
    for (i, o) in offsets.iter().enumerate() {
        let at = o.as_usize();
        if at < last && !is_char_start(values[at]) {
            return Err(invalid(format!(
                "incomplete utf-8 byte sequence from index {}",
                i.saturating_sub(1)
            )));
        }
    }
    Ok(())
}

/// Views of a `Utf8View` / `BinaryView` array, with the checks of arrow's
/// `validate_string_view`: zero padding after inline values; buffer index, bounds and prefix
/// of the others; UTF-8 of every value. An inline ASCII value (the common short string) is
/// checked with one mask, without decoding.
fn validate_views(data: &ArrayData, utf8: bool) -> Result<(), ArrowError> {
    let Some((views_buf, buffers)) = data.buffers().split_first() else {
        return Err(invalid(format!("{} array without views", data.data_type())));
    };
    // SAFETY: views are plain integers: every bit pattern is a valid `u128`.
    let (prefix, all_views, _) = unsafe { views_buf.as_slice().align_to::<u128>() };
    if !prefix.is_empty() {
        return Err(invalid(format!(
            "{} views are misaligned",
            data.data_type()
        )));
    }
    let Some(views) = all_views.get(data.offset()..data.offset() + data.len()) else {
        return Err(invalid(format!(
            "{} views buffer is too short",
            data.data_type()
        )));
    };
    // The common case in one pass; the checks below find what failed.
    if all_simple_inline(views, utf8) {
        return Ok(());
    }
    let check_utf8 = |idx: usize, b: &[u8]| -> Result<(), ArrowError> {
        if utf8 && !b.is_ascii() {
            std::str::from_utf8(b)
                .map_err(|e| invalid(format!("Encountered non-UTF-8 data at index {idx}: {e}")))?;
        }
        Ok(())
    };
    for (idx, &v) in views.iter().enumerate() {
        let len = v as u32;
        if len <= 12 {
            if len < 12 && (v >> (32 + len * 8)) != 0 {
                return Err(invalid(format!(
                    "View at index {idx} contained non-zero padding for string of length {len}"
                )));
            }
            let bytes = v.to_le_bytes();
            check_utf8(idx, &bytes[4..4 + len as usize])?;
            continue;
        }
        let (buffer_index, offset) = ((v >> 64) as u32 as usize, (v >> 96) as u32 as usize);
        let Some(buffer) = buffers.get(buffer_index) else {
            return Err(invalid(format!(
                "Invalid buffer index at {idx}: got index {buffer_index} but only has {} buffers",
                buffers.len()
            )));
        };
        let Some(b) = buffer.get(offset..offset + len as usize) else {
            return Err(invalid(format!(
                "Invalid buffer slice at {idx}: got {offset}..{} but buffer {buffer_index} has \
                 length {}",
                offset + len as usize,
                buffer.len()
            )));
        };
        if !b.starts_with(&((v >> 32) as u32).to_le_bytes()) {
            return Err(invalid(
                "Mismatch between embedded prefix and data".to_string(),
            ));
        }
        check_utf8(idx, b)?;
    }
    Ok(())
}

/// For each inline length 0..=12, and 13 for "longer", the bits of a view's low and high
/// 64-bit halves that must be zero for the view to be valid without further checks: the
/// padding after the value and, when `ascii`, the high bit of each value byte. For "longer"
/// every bit (the view needs the full check).
const fn view_masks(ascii: bool) -> [(u64, u64); 14] {
    let mut out = [(u64::MAX, u64::MAX); 14];
    let mut len = 0;
    while len <= 12 {
        let (mut lo, mut hi) = (0u64, 0u64);
        let mut i = 0;
        while i < 12 {
            let byte: u64 = if i >= len {
                0xff
            } else if ascii {
                0x80
            } else {
                0
            };
            // Value byte i is byte 4 + i of the little-endian view.
            let at = 4 + i;
            if at < 8 {
                lo |= byte << (8 * at);
            } else {
                hi |= byte << (8 * (at - 8));
            }
            i += 1;
        }
        out[len] = (lo, hi);
        len += 1;
    }
    out
}

const STRING_VIEW_MASKS: [(u64, u64); 14] = view_masks(true);
const BINARY_VIEW_MASKS: [(u64, u64); 14] = view_masks(false);

/// Whether every view is inline (at most 12 bytes), zero-padded and, for strings, ASCII: valid
/// without further checks. One branch-free pass: a table lookup, two ANDs and two ORs a view.
fn all_simple_inline(views: &[u128], utf8: bool) -> bool {
    let masks = if utf8 {
        &STRING_VIEW_MASKS
    } else {
        &BINARY_VIEW_MASKS
    };
    let bad = views.iter().fold(0u64, |bad, &v| {
        let (lo, hi) = (v as u64, (v >> 64) as u64);
        let (mask_lo, mask_hi) = masks[(lo as u32).min(13) as usize];
        bad | (lo & mask_lo) | (hi & mask_hi)
    });
    bad == 0
}

/// Whether `b` starts a UTF-8 character (is not a continuation byte `0b10xx_xxxx`).
fn is_char_start(b: u8) -> bool {
    (b as i8) >= -0x40
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Array, BinaryArray, BinaryViewArray, LargeStringArray, ListArray, StringArray,
        StringViewArray, StructArray,
    };
    use arrow_buffer::Buffer;
    use arrow_schema::Field;
    use std::sync::Arc;

    /// A raw Utf8/Binary array from parts, unchecked (the plugin's side of the boundary).
    fn raw(dt: DataType, len: usize, offset: usize, offsets: &[i32], values: &[u8]) -> ArrayData {
        // SAFETY: only validated, never read as an array, in these tests.
        unsafe {
            ArrayData::builder(dt)
                .len(len)
                .offset(offset)
                .add_buffer(Buffer::from_slice_ref(offsets))
                .add_buffer(Buffer::from_slice_ref(values))
                .build_unchecked()
        }
    }

    /// Both validators give the same verdict; returns it.
    fn agree(data: &ArrayData) -> bool {
        let ours = validate_full(data);
        let arrow = data.validate_full();
        assert_eq!(
            ours.is_ok(),
            arrow.is_ok(),
            "verdicts differ for {data:?}: ours {ours:?}, arrow {arrow:?}"
        );
        ours.is_ok()
    }

    #[test]
    fn accepts_valid_strings_ascii_and_multibyte_and_slices() {
        let a = StringArray::from(vec![Some("a"), None, Some("héllo"), Some(""), Some("日本")]);
        assert!(agree(&a.to_data()));
        assert!(agree(&a.slice(2, 3).to_data()));
        assert!(agree(&a.slice(5, 0).to_data()));
        let ascii = StringArray::from_iter_values((0..1000).map(|i| format!("row {i}")));
        assert!(agree(&ascii.slice(900, 100).to_data()));
        let large = LargeStringArray::from(vec!["x", "ÿ", ""]);
        assert!(agree(&large.to_data()));
        let bin = BinaryArray::from(vec![&[0xffu8, 0xfe][..], b"", b"ok"]);
        assert!(agree(&bin.to_data()));
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert!(!agree(&raw(DataType::Utf8, 2, 0, &[0, 1, 3], b"a\xff\xfe")));
        // Invalid bytes outside the referenced range are not this array's business.
        assert!(agree(&raw(DataType::Utf8, 1, 1, &[0, 2, 3], b"\xff\xfea")));
        // The same bytes as binary are fine.
        assert!(agree(&raw(
            DataType::Binary,
            2,
            0,
            &[0, 1, 3],
            b"a\xff\xfe"
        )));
    }

    #[test]
    fn rejects_offsets_inside_a_character() {
        // "é" is two bytes; an offset between them splits it.
        let v = "é".as_bytes();
        assert!(!agree(&raw(DataType::Utf8, 2, 0, &[0, 1, 2], v)));
        assert!(agree(&raw(DataType::Utf8, 1, 0, &[0, 2], v)));
    }

    #[test]
    fn rejects_bad_offsets() {
        // Non-monotonic.
        assert!(!agree(&raw(DataType::Utf8, 2, 0, &[0, 3, 1], b"abc")));
        assert!(!agree(&raw(DataType::Binary, 2, 0, &[0, 3, 1], b"abc")));
        // Beyond the values.
        assert!(!agree(&raw(DataType::Utf8, 1, 0, &[0, 9], b"abc")));
        // Negative.
        assert!(!agree(&raw(DataType::Utf8, 1, 0, &[-1, 2], b"abc")));
        // Too few offsets for the length.
        assert!(!agree(&raw(DataType::Utf8, 3, 0, &[0, 1], b"abc")));
    }

    /// A raw view array from parts, unchecked.
    fn raw_views(dt: DataType, views: &[u128], buffers: &[&[u8]]) -> ArrayData {
        let mut b = ArrayData::builder(dt)
            .len(views.len())
            .add_buffer(Buffer::from_slice_ref(views));
        for data in buffers {
            b = b.add_buffer(Buffer::from_slice_ref(data));
        }
        // SAFETY: only validated.
        unsafe { b.build_unchecked() }
    }

    /// An inline view of `s` (at most 12 bytes), padded with `pad`.
    fn inline_view(s: &[u8], pad: u8) -> u128 {
        let mut bytes = [pad; 16];
        bytes[..4].copy_from_slice(&(s.len() as u32).to_le_bytes());
        bytes[4..4 + s.len()].copy_from_slice(s);
        u128::from_le_bytes(bytes)
    }

    /// A view of `len` bytes at `offset` of buffer `index`, with the given 4-byte prefix.
    fn buffer_view(len: u32, prefix: &[u8], index: u32, offset: u32) -> u128 {
        let mut p = [0u8; 4];
        p.copy_from_slice(prefix);
        (len as u128)
            | ((u32::from_le_bytes(p) as u128) << 32)
            | ((index as u128) << 64)
            | ((offset as u128) << 96)
    }

    #[test]
    fn views_valid_and_invalid() {
        let long = "a long string, over twelve bytes: ünïcödé";
        let a = StringViewArray::from(vec![
            Some("short"),
            None,
            Some(long),
            Some("日本語"),
            Some(""),
        ]);
        assert!(agree(&a.to_data()));
        assert!(agree(&a.slice(1, 3).to_data()));
        let b = BinaryViewArray::from(vec![&[0xffu8][..], long.as_bytes()]);
        assert!(agree(&b.to_data()));
        let utf8 = DataType::Utf8View;
        // Invalid UTF-8 inline, and the same bytes as binary.
        assert!(!agree(&raw_views(
            utf8.clone(),
            &[inline_view(b"a\xff", 0)],
            &[]
        )));
        assert!(agree(&raw_views(
            DataType::BinaryView,
            &[inline_view(b"a\xff", 0)],
            &[]
        )));
        // Non-zero padding.
        assert!(!agree(&raw_views(
            utf8.clone(),
            &[inline_view(b"abc", b'x')],
            &[]
        )));
        // Out-of-line: fine, bad UTF-8, bad prefix, bad buffer index, out of bounds.
        let data = "0123456789abcdef\u{e9}\u{e9}".as_bytes();
        let ok = buffer_view(20, b"0123", 0, 0);
        assert!(agree(&raw_views(utf8.clone(), &[ok], &[data])));
        let mut bad = data.to_vec();
        bad[15] = 0xff;
        assert!(!agree(&raw_views(utf8.clone(), &[ok], &[&bad])));
        assert!(!agree(&raw_views(
            utf8.clone(),
            &[buffer_view(20, b"x123", 0, 0)],
            &[data]
        )));
        assert!(!agree(&raw_views(
            utf8.clone(),
            &[buffer_view(20, b"0123", 1, 0)],
            &[data]
        )));
        assert!(!agree(&raw_views(
            utf8.clone(),
            &[buffer_view(20, b"3456", 0, 3)],
            &[data]
        )));
        // A multi-byte character cut at the end of the view.
        assert!(!agree(&raw_views(
            utf8,
            &[buffer_view(17, b"0123", 0, 0)],
            &[data]
        )));
    }

    #[test]
    fn checks_children() {
        let bad = raw(DataType::Utf8, 1, 0, &[0, 2], b"\xc3(");
        let field = Arc::new(Field::new("s", DataType::Utf8, true));
        // SAFETY: only validated.
        let s = unsafe {
            ArrayData::builder(DataType::Struct(vec![field.clone()].into()))
                .len(1)
                .add_child_data(bad.clone())
                .build_unchecked()
        };
        assert!(!agree(&s));
        let ok = StructArray::from(vec![(
            field.clone(),
            Arc::new(StringArray::from(vec!["fine"])) as _,
        )]);
        assert!(agree(&ok.to_data()));
        let list = ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
        ]);
        assert!(agree(&list.to_data()));
    }

    /// A tiny deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random, mostly almost-valid strings and views: both validators give the same verdict.
    #[test]
    fn agrees_with_arrow_on_random_input() {
        // ASCII, a two-byte and a three-byte character, and stray bytes.
        let pieces: [&[u8]; 6] = [
            b"a",
            b"xyz",
            "é".as_bytes(),
            "日".as_bytes(),
            b"\x80",
            b"\xff",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut rejected) = (0, 0);
        for case in 0..3000 {
            let mut values = Vec::new();
            let mut offsets = vec![0i32];
            let n = rng.below(8) as usize;
            for _ in 0..n {
                for _ in 0..rng.below(4) {
                    let p = pieces[rng.below(if case % 3 == 0 { 6 } else { 4 }) as usize];
                    values.extend_from_slice(p);
                }
                offsets.push(values.len() as i32);
            }
            // Sometimes nudge one offset (into a character, backwards, or past the end).
            if case % 4 == 0 && n > 0 {
                let i = 1 + rng.below(n as u64) as usize;
                offsets[i] += rng.below(5) as i32 - 2;
            }
            let offset = if n > 0 {
                rng.below(n as u64) as usize
            } else {
                0
            };
            let data = raw(DataType::Utf8, n - offset, offset, &offsets, &values);
            if agree(&data) {
                accepted += 1;
            } else {
                rejected += 1;
            }
            // The same values as views (inline or in one buffer), sometimes with a bad prefix.
            let views: Vec<u128> = offsets
                .windows(2)
                .filter(|w| 0 <= w[0] && w[0] <= w[1] && w[1] as usize <= values.len())
                .map(|w| {
                    let v = &values[w[0] as usize..w[1] as usize];
                    if v.len() <= 12 {
                        inline_view(v, 0)
                    } else {
                        let prefix = if case % 5 == 0 { b"zzzz" } else { &v[..4] };
                        buffer_view(v.len() as u32, prefix, 0, w[0] as u32)
                    }
                })
                .collect();
            agree(&raw_views(DataType::Utf8View, &views, &[&values]));
        }
        // The generator exercises both verdicts.
        assert!(
            accepted > 300 && rejected > 300,
            "{accepted} accepted, {rejected} rejected"
        );
    }
}
