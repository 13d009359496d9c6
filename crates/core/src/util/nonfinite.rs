//! Non-finite floats in JSON: serde_json writes NaN and infinities as `null`; these readers take
//! `null` back as NaN, so a run whose loss diverged stays readable by the server, the summary and
//! `--resume` (use with `#[serde(deserialize_with = "...")]`; missing fields keep their defaults
//! where the field has `#[serde(default)]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

fn nan(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// `f64`, `null` read as NaN.
pub fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Option::<f64>::deserialize(d).map(nan)
}

/// `[f64]` with `null` elements read as NaN.
pub fn vec_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Vec::<Option<f64>>::deserialize(d).map(|v| v.into_iter().map(nan).collect())
}

/// An optional `[f64]` (a `null` list stays `None`) with `null` elements read as NaN.
pub fn opt_vec_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
    Option::<Vec<Option<f64>>>::deserialize(d).map(|o| o.map(|v| v.into_iter().map(nan).collect()))
}

/// A map of `[f64]` with `null` elements read as NaN.
pub fn map_vec_or_nan<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
    BTreeMap::<String, Vec<Option<f64>>>::deserialize(d).map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, v.into_iter().map(nan).collect()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "super::f64_or_nan")]
        x: f64,
        #[serde(deserialize_with = "super::vec_or_nan")]
        v: Vec<f64>,
        #[serde(default, deserialize_with = "super::opt_vec_or_nan")]
        o: Option<Vec<f64>>,
    }

    #[test]
    fn nan_is_written_as_null_and_read_back_as_nan() {
        let t = T {
            x: f64::NAN,
            v: vec![1.0, f64::INFINITY],
            o: None,
        };
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, r#"{"x":null,"v":[1.0,null],"o":null}"#);
        let back: T = serde_json::from_str(&text).unwrap();
        assert!(back.x.is_nan() && back.v[0] == 1.0 && back.v[1].is_nan() && back.o.is_none());
        let missing: T = serde_json::from_str(r#"{"x":2.0,"v":[]}"#).unwrap();
        assert_eq!((missing.x, missing.o), (2.0, None));
    }
}
