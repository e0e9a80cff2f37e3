//! Collections for an [`Arena`](crate::Arena): [`Vec`], [`String`] and
//! [`Box`], under bumpalo's names, tuned for the bump allocator under them.
//!
//! allocator-api2's `Vec` and hashbrown's `HashMap` work with any `&Arena`
//! too; these types add what an arena can do that a general allocator
//! cannot, and what bumpalo's users already write:
//!
//! - **Growth in place.** A buffer that is the arena's newest block grows
//!   by moving the cursor, so `reserve_exact(1)` before every push is
//!   linear, not quadratic, and a `String` built by `push_str` never
//!   copies while nothing else is allocated.
//! - **Growth out of line.** `push`'s growth path is a `#[cold]` function
//!   that takes and returns plain values, so a push loop keeps the length
//!   in a register (the vector's address does not escape).
//! - **Freezing.** [`Vec::into_bump_slice_mut`] and
//!   [`String::into_bump_str_mut`] hand the contents out as plain
//!   references that live as long as the arena's borrow, for ASTs and
//!   interned strings.
//! - [`Box`] runs its value's destructor when dropped (the memory itself
//!   goes back with the arena), and [`Box::leak`] turns it into a plain
//!   `&mut T`. There is no `Box::pin`: a pinned arena box could be
//!   forgotten and its memory reused by a reset without the value being
//!   dropped, which breaks `Pin`'s promise (bumpalo's issue #186).
//!   [`Arena::alloc_dropped`](crate::Arena::alloc_dropped) registers a
//!   `'static` value whose destructor runs when the arena resets, drops, or
//!   leaves the scope it was made in.
//!
//! The macros [`vec!`](crate::vec) and [`format!`](crate::format) take the
//! arena first, as bumpalo's do:
//!
//! ```
//! use fiberalloc::{collections::CollectIn, format, vec, Arena};
//!
//! let arena = Arena::new();
//! let mut v = vec![in &arena; 1, 2, 3];
//! v.push(4);
//! let s = format!(in &arena, "{} items", v.len());
//! let squares: fiberalloc::collections::Vec<u32> = (1..=3u32).map(|x| x * x).collect_in(&arena);
//! assert_eq!((&*s, squares.as_slice()), ("4 items", &[1, 4, 9][..]));
//! ```

mod boxed;
mod string;
mod vec;
mod vec_iter;

pub use boxed::Box;
pub use string::{FromUtf8Error, String};
pub use vec::Vec;
pub use vec_iter::{Drain, IntoIter};

/// A collection that can be built from an iterator into an allocator:
/// bumpalo's `FromIteratorIn`, what [`CollectIn::collect_in`] calls.
pub trait FromIteratorIn<A> {
    /// What the collection is built in (`&'a Arena<P>`).
    type Alloc;

    /// Builds the collection from `iter` in `alloc`.
    fn from_iter_in<I: IntoIterator<Item = A>>(iter: I, alloc: Self::Alloc) -> Self;
}

/// `iter.collect_in::<Vec<_>>(&arena)`: `collect` into an arena collection
/// (bumpalo's `CollectIn`, implemented for every iterator).
pub trait CollectIn: Iterator + Sized {
    /// Collects the iterator into a collection living in `alloc`.
    fn collect_in<C: FromIteratorIn<Self::Item>>(self, alloc: C::Alloc) -> C {
        C::from_iter_in(self, alloc)
    }
}

impl<I: Iterator> CollectIn for I {}

/// A [`collections::Vec`](Vec) in an arena, as `std::vec!` makes one:
/// `vec![in &arena]`, `vec![in &arena; a, b, c]` or
/// `vec![in &arena; value; n]`.
///
/// ```
/// let arena = fiberalloc::Arena::new();
/// let zeros = fiberalloc::vec![in &arena; 0u8; 4];
/// let list = fiberalloc::vec![in &arena; "a", "b"];
/// assert_eq!((zeros.len(), list[1]), (4, "b"));
/// ```
#[macro_export]
macro_rules! vec {
    (in $arena:expr $(;)?) => {
        $crate::collections::Vec::new_in($arena)
    };
    (in $arena:expr; $elem:expr; $n:expr) => {
        $crate::collections::Vec::from_elem_in($elem, $n, $arena)
    };
    (in $arena:expr; $($x:expr),+ $(,)?) => {{
        // The element count, without evaluating the elements twice.
        let n = <[()]>::len(&[$({ let _ = ::core::stringify!($x); }),+]);
        let mut v = $crate::collections::Vec::with_capacity_in(n, $arena);
        $(v.push($x);)+
        v
    }};
}

/// A [`collections::String`](String) in an arena, formatted as
/// `std::format!` does: `format!(in &arena, "{x} and {}", y)`.
///
/// ```
/// let arena = fiberalloc::Arena::new();
/// let s = fiberalloc::format!(in &arena, "{}-{}", 1, "two");
/// assert_eq!(&*s, "1-two");
/// ```
#[macro_export]
macro_rules! format {
    (in $arena:expr, $($arg:tt)*) => {{
        let mut s = $crate::collections::String::new_in($arena);
        s.write_fmt_or_oom(::core::format_args!($($arg)*));
        s
    }};
}
