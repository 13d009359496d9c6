//! [`named_enum!`]: a closed set of values each spelled by one string (config values,
//! checkpoint kinds, evaluation suites), so the enum, its spellings and their order are
//! written once.

/// Declare an enum whose variants are spelled by strings: `ALL`, `NAMES`, `as_str`, `parse`,
/// `Display` and `Serialize` as those spellings. How a wrong spelling is reported (serde's
/// `Deserialize`, `FromStr`) is left to the caller, which knows what the value is.
///
/// ```ignore
/// named_enum! {
///     /// Doc of the enum.
///     #[derive(PartialOrd, Ord)]
///     pub enum Mode {
///         /// Doc of the variant.
///         Fast = "fast",
///         Slow = "slow",
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every value as spelled.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
