//! Property values: the typed values of room and actor properties.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A property value. The variant order is part of the wire format (postcard writes the
/// variant index as a varint before the content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// 0: no value.
    Null,
    /// 1: one byte, 0 or 1.
    Bool(bool),
    /// 2: a signed integer (zigzag varint).
    Int(i64),
    /// 3: an IEEE 754 double, 8 bytes little-endian.
    Float(f64),
    /// 4: UTF-8 text (varint length, then bytes).
    Str(String),
    /// 5: raw bytes (varint length, then bytes).
    Bytes(Bytes),
}

/// A property map. Keys are text; the map is encoded as a varint count followed by
/// `(key, value)` pairs in ascending key order.
pub type Properties = BTreeMap<String, Value>;
