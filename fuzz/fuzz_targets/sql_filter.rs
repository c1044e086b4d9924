//! The SQL lobby filter: parsing arbitrary text never panics, and a parsed filter
//! evaluates against lobby properties without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_master::sql_filter;
use switchboard_protocol::{Properties, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = sql_filter::parse(src) else {
        return;
    };
    let mut props = Properties::new();
    props.insert("C0".into(), Value::Str("eu".into()));
    props.insert("C1".into(), Value::Int(12));
    props.insert("C2".into(), Value::Bool(true));
    props.insert("C3".into(), Value::Null);
    let _ = expr.matches(&props);
    let _ = expr.matches(&Properties::new());
    let _ = expr.required_equalities();
});
