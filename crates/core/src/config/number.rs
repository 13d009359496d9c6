//! Numbers as the config reads and shows them: fractions such as "8/255", and numbers short
//! enough for a message.

/// Parse "8/255", "0.031" or "2e-3" into a finite float.
pub fn parse_fraction(s: &str) -> Option<f64> {
    let s = s.trim();
    let v = match s.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().ok()? / b.trim().parse::<f64>().ok()?,
        None => s.parse::<f64>().ok()?,
    };
    v.is_finite().then_some(v)
}

/// A number as a message shows it: plain when short, else scientific (`1e308`, not 309 digits).
pub fn short_number(v: f64) -> String {
    let plain = v.to_string();
    if plain.len() <= 12 {
        plain
    } else if (1e-4..1e12).contains(&v.abs()) {
        let fixed = format!("{v:.6}");
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_numbers_are_shortened() {
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(1e308), "1e308");
        assert_eq!(short_number(8.0 / 255.0), "0.031373");
        assert_eq!(short_number(-1.5e-300), "-1.5e-300");
        assert_eq!(short_number(100.0), "100");
    }

    #[test]
    fn fractions() {
        assert!((parse_fraction("8/255").unwrap() - 8.0 / 255.0).abs() < 1e-15);
        assert_eq!(parse_fraction("0.5"), Some(0.5));
        assert_eq!(parse_fraction("1/0"), None);
        assert_eq!(parse_fraction("abc"), None);
    }
}
