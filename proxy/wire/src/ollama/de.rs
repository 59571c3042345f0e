//! Deserialization helpers that mimic Go's tolerance: `null` decodes to the zero value.

use serde::{Deserialize, Deserializer};

/// Deserialize `null` as `T::default()`, anything else as `T`.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserialize a role, lower-casing it as upstream does.
pub fn lower<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .unwrap_or_default()
        .to_lowercase())
}
