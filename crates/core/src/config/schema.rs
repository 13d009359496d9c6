//! One declaration per config key. [`section!`] declares a section's struct, and from the same
//! lines derives each key's [`Field`] (name, form group, kind, allowed values, range, help),
//! the section's key enum and the reader that checks every key and applies its default. The
//! validator, the form, `keys::check_key` and the README table all read these declarations.

use std::path::PathBuf;

use super::error::ConfigError;
use super::reader::Reader;

/// How a field is entered in the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A number; fractions such as "8/255" are allowed where the help says so.
    Number,
    /// One of a closed set of values ([`Field::choices`]).
    Choice,
    /// true / false.
    Bool,
    /// Free text (paths, names, comma-separated lists).
    Text,
}

impl FieldKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldKind::Number => "number",
            FieldKind::Choice => "choice",
            FieldKind::Bool => "bool",
            FieldKind::Text => "text",
        }
    }
}

/// One config key, as declared.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Dotted key as in `--set` (`train.epochs`, or `name` for top-level keys).
    pub key: &'static str,
    /// Its section (`""` for top-level keys) and its name inside it.
    pub section: &'static str,
    pub name: &'static str,
    /// Form group (the section name, `run` for top-level keys).
    pub group: &'static str,
    pub kind: FieldKind,
    /// Allowed values for [`FieldKind::Choice`] (and `true`/`false` for booleans).
    pub choices: &'static [&'static str],
    /// Allowed range of a number, inclusive.
    pub bounds: Option<(f64, f64)>,
    pub help: &'static str,
}

/// A type a config key can have: how the form enters it and how a section reads it.
pub(crate) trait KeyType: Sized {
    const KIND: FieldKind;
    const CHOICES: &'static [&'static str] = &[];
    /// Read key `k` of `r`; `default` when absent; numbers checked against `bounds`.
    fn read(
        r: &Reader,
        k: &str,
        default: Self,
        bounds: Option<(Self, Self)>,
    ) -> Result<Self, ConfigError>;
}

impl KeyType for f64 {
    const KIND: FieldKind = FieldKind::Number;
    fn read(r: &Reader, k: &str, d: Self, b: Option<(f64, f64)>) -> Result<Self, ConfigError> {
        r.number(k, d, b.unwrap_or((f64::MIN, f64::MAX)))
    }
}

impl KeyType for usize {
    const KIND: FieldKind = FieldKind::Number;
    fn read(r: &Reader, k: &str, d: Self, b: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        let (lo, hi) = b.unwrap_or((0, usize::MAX));
        let v = r.number(k, d as i128, (lo as i128, hi as i128))?;
        Ok(v as usize)
    }
}

impl KeyType for u64 {
    const KIND: FieldKind = FieldKind::Number;
    fn read(r: &Reader, k: &str, d: Self, b: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        let (lo, hi) = b.unwrap_or((0, u32::MAX as u64));
        let v = r.number(k, d as i128, (lo as i128, hi as i128))?;
        Ok(v as u64)
    }
}

const BOOL: &[&str] = &["true", "false"];

impl KeyType for bool {
    const KIND: FieldKind = FieldKind::Bool;
    const CHOICES: &'static [&'static str] = BOOL;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        r.bool(k, d)
    }
}

impl KeyType for String {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        r.string(k, &d)
    }
}

impl KeyType for PathBuf {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        Ok(PathBuf::from(r.string(k, &d.to_string_lossy())?))
    }
}

/// A list of strings: a TOML array, or comma-separated text from a form.
impl KeyType for Vec<String> {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        if r.table.contains_key(k) {
            r.strings(k)
        } else {
            Ok(d)
        }
    }
}

/// `Some((lo, hi))` as `f64` for a [`Field`], `None` without a range.
#[macro_export]
#[doc(hidden)]
macro_rules! __field_bounds {
    () => {
        None
    };
    ($lo:expr, $hi:expr) => {
        Some(($lo as f64, $hi as f64))
    };
}

/// The dotted key of a field: `section.name`, or `name` in the top-level section `""`.
#[macro_export]
#[doc(hidden)]
macro_rules! __field_key {
    ("", $f:ident) => {
        stringify!($f)
    };
    ($s:tt, $f:ident) => {
        concat!($s, ".", stringify!($f))
    };
}

/// Declare a config section: its struct, its keys' [`Field`]s (`FIELDS`, `KEY_NAMES`), an enum
/// naming its keys, and `read`, which checks every key. Each key is one line:
/// `name: Type [min, max] = |ctx| default; "form help"` (the range only for numbers; the default
/// may depend on what was read before it, [`super::ctx::Ctx`]).
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $section:tt as $group:literal, keys $keys:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty $([$lo:expr, $hi:expr])? = $default:expr ; $help:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty),+
        }

        /// The keys of the section, in declaration order.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $keys {
            $($field),+
        }

        impl $keys {
            /// Every key of the section, in declaration order.
            pub const ALL: [$keys; [$(stringify!($field)),+].len()] = [$($keys::$field),+];

            /// The key's declaration.
            pub fn field(self) -> &'static $crate::config::schema::Field {
                &$name::FIELDS[self as usize]
            }

            /// The key's name inside its section.
            pub fn name(self) -> &'static str {
                $name::KEY_NAMES[self as usize]
            }
        }

        impl $name {
            /// The section's name in a config (`""` for top-level keys).
            pub const SECTION: &'static str = $section;
            /// The form group its fields are shown in.
            pub const GROUP: &'static str = $group;
            /// The section's keys.
            pub const KEY_NAMES: [&'static str; [$(stringify!($field)),+].len()] =
                [$(stringify!($field)),+];
            /// The declaration of every key.
            pub const FIELDS: [$crate::config::schema::Field; [$(stringify!($field)),+].len()] = [$(
                $crate::config::schema::Field {
                    key: $crate::__field_key!($section, $field),
                    section: $section,
                    name: stringify!($field),
                    group: $group,
                    kind: <$ty as $crate::config::schema::KeyType>::KIND,
                    choices: <$ty as $crate::config::schema::KeyType>::CHOICES,
                    bounds: $crate::__field_bounds!($($lo, $hi)?),
                    help: $help,
                }
            ),+];
        }

        impl $crate::config::ctx::Section for $name {
            const SECTION: &'static str = $section;
            const KEY_NAMES: &'static [&'static str] = &$name::KEY_NAMES;

            fn read(
                r: &$crate::config::reader::Reader,
                c: &$crate::config::ctx::Ctx,
            ) -> Result<Self, $crate::config::error::ConfigError> {
                Ok($name {
                    $($field: {
                        let default: fn(&$crate::config::ctx::Ctx) -> $ty = $default;
                        let bounds: Option<($ty, $ty)> = None $(.or(Some(($lo, $hi))))?;
                        <$ty as $crate::config::schema::KeyType>::read(
                            r,
                            stringify!($field),
                            default(c),
                            bounds,
                        )?
                    }),+
                })
            }
        }
    };
}
pub(crate) use section;

/// A field to fill arrays with before they are written.
const BLANK: Field = Field {
    key: "",
    section: "",
    name: "",
    group: "",
    kind: FieldKind::Text,
    choices: &[],
    bounds: None,
    help: "",
};

/// The fields of every section in one array (`N` = their total).
pub(crate) const fn concat_fields<const N: usize>(parts: &[&[Field]]) -> [Field; N] {
    let mut out = [BLANK; N];
    let (mut i, mut k) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(k == N, "N is the number of fields");
    out
}
