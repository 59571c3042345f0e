//! Just enough JSON scanning to know where a value ends in streamed text.

/// Byte length of the first complete JSON object/array at the start of `s`, if it is complete
/// (brackets balanced outside strings).
pub fn value_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// True when `s` (already trimmed) cannot be the start of a JSON object or array.
pub fn cannot_start(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b != b'{' && b != b'[')
}
