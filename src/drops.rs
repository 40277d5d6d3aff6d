//! Drop reasons, declared once for every program that counts why it discarded something: the
//! fast path's nodes, kernel-serve and the DPDK load client. `drop_reasons!` makes an enum
//! whose discriminants index its name list, so a reason's counter and its name cannot drift
//! apart, and a report iterates `ALL` instead of keeping a table by hand.

#![forbid(unsafe_code)]

/// `drop_reasons! { /// doc  Name { Variant => "counter-name", ... } }` declares `enum Name`
/// with `NAMES`, `ALL`, `COUNT`, `name()` and `Into<usize>`.
macro_rules! drop_reasons {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
        }

        impl $name {
            /// Counter names, indexed by discriminant.
            pub const NAMES: &'static [&'static str] = &[$($s,)*];
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            /// How many reasons: the length of a counter array indexed by them.
            pub const COUNT: usize = Self::NAMES.len();

            pub const fn name(self) -> &'static str {
                Self::NAMES[self as usize]
            }
        }

        impl From<$name> for usize {
            #[inline]
            fn from(r: $name) -> usize {
                r as usize
            }
        }
    };
}
pub(crate) use drop_reasons;

#[cfg(test)]
mod tests {
    drop_reasons! {
        /// Two reasons, to check the tables agree.
        Why {
            Short => "short",
            /// A documented variant.
            Long => "too-long",
        }
    }

    #[test]
    fn names_index_by_discriminant() {
        assert_eq!(Why::COUNT, 2);
        assert_eq!(Why::Long.name(), "too-long");
        assert_eq!(usize::from(Why::Short), 0);
        assert_eq!(Why::ALL, &[Why::Short, Why::Long]);
    }
}
