//! Wire names for the protocol's fieldless enums: one text per variant, the same in
//! JSON (the `serde` feature), in the history database and in text output.

/// A text that names no variant of one of the wire enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    /// What was being parsed, e.g. "route".
    pub kind: &'static str,
    pub value: String,
}

/// A fieldless enum with one wire name per variant ([`wire_enum!`]).
pub trait WireName: Copy + Sized + 'static {
    /// What a value is, for errors ("route").
    const KIND: &'static str;
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// The wire name.
    fn wire_name(self) -> &'static str;

    /// The variant named `s`.
    fn from_wire(s: &str) -> Result<Self, UnknownValue> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.wire_name() == s)
            .ok_or_else(|| UnknownValue { kind: Self::KIND, value: s.to_owned() })
    }
}

/// Gives a fieldless enum its wire names: `ALL`, `as_str`, `Display`, `FromStr`
/// ([`UnknownValue`] for anything else), comparison with a wire name
/// (`Route::Ibb == "ibb"`, for tests and logs) and [`WireName`]. A `serde` rename
/// on the enum must give the same names; each crate tests that.
#[macro_export]
macro_rules! wire_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The wire name (JSON, SQLite, text output).
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl $crate::vocab::WireName for $ty {
            const KIND: &'static str = $kind;
            const ALL: &'static [$ty] = $ty::ALL;
            fn wire_name(self) -> &'static str {
                self.as_str()
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = $crate::vocab::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::vocab::UnknownValue> {
                <$ty as $crate::vocab::WireName>::from_wire(s)
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::WireName;
    use crate::negotiation::TlsMode;
    use crate::transfer::{FailReason, Method, Route};

    /// Every variant parses back from its wire name, the names differ, and (with the
    /// `serde` feature) the JSON names are the wire names.
    fn check<T: WireName + std::fmt::Debug + PartialEq + Serde>() {
        let mut seen = std::collections::HashSet::new();
        for &v in T::ALL {
            assert!(seen.insert(v.wire_name()), "{} named twice", v.wire_name());
            assert_eq!(T::from_wire(v.wire_name()), Ok(v));
            if let Some(json) = v.json() {
                assert_eq!(json, format!("\"{}\"", v.wire_name()));
            }
        }
        let e = T::from_wire("no such name").unwrap_err();
        assert_eq!((e.kind, e.to_string()), (T::KIND, format!("unknown {} \"no such name\"", T::KIND)));
    }

    trait Serde {
        fn json(&self) -> Option<String>;
    }

    #[cfg(feature = "serde")]
    impl<T: serde::Serialize> Serde for T {
        fn json(&self) -> Option<String> {
            Some(serde_json::to_string(self).unwrap())
        }
    }

    #[cfg(not(feature = "serde"))]
    impl<T> Serde for T {
        fn json(&self) -> Option<String> {
            None
        }
    }

    #[test]
    fn wire_names() {
        check::<Method>();
        check::<Route>();
        check::<FailReason>();
        check::<TlsMode>();
        assert_eq!(Route::S5bProxy.to_string(), "s5b-proxy");
        assert_eq!("starttls".parse::<TlsMode>(), Ok(TlsMode::StartTls));
        assert!(FailReason::Cancelled == "cancelled");
    }
}
