//! Request bodies parsed as JSON that means one thing: `serde_json::Value` keeps the last of
//! two equal keys, so `{"preset": "a", "preset": "b"}` would silently run `b`. This parser
//! refuses a repeated key at any depth, naming it, and otherwise yields the same `Value`.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// `bytes` as JSON, refusing repeated object keys.
pub fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let shown: String = key.chars().take(80).collect();
                return Err(de::Error::custom(format!(
                    "the key {shown:?} is given twice; give each key once"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth_and_the_rest_parses_as_serde_json() {
        let ok = r#"{"preset": "q", "set": {"train.epochs": 2, "attack.eps": "8/255"}, "x": [1, -2, 0.5, null, true]}"#;
        assert_eq!(
            parse(ok.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(ok).unwrap()
        );
        for bad in [
            r#"{"preset": "a", "preset": "b"}"#,
            r#"{"set": {"train.epochs": 1, "train.epochs": 200}}"#,
            r#"[{"a": 1, "a": 1}]"#,
        ] {
            let e = parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("given twice"), "{bad}: {e}");
        }
        assert!(parse(b"{\"a\": ").is_err());
    }
}
