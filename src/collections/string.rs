//! [`String`]: UTF-8 text in an [`Arena`], on [`Vec<u8>`](super::Vec)'s
//! buffer (so it grows in place while it is the arena's newest block).
//!
//! ```
//! use fiberalloc::{collections::String, Arena};
//! let arena = Arena::new();
//! let mut s = String::from_str_in("hello", &arena);
//! s.push(',');
//! s.push_str(" world");
//! let frozen: &mut str = s.into_bump_str_mut();
//! assert_eq!(frozen, "hello, world");
//! ```

use crate::arena::Arena;
use crate::policy::{Fast, Policy};
use crate::AllocError;
use core::fmt;
use core::ops::{Deref, DerefMut};

use super::{FromIteratorIn, Vec};

/// A growable UTF-8 string whose buffer lives in an [`Arena`].
///
/// Invariant: the bytes of `vec` are valid UTF-8.
#[derive(Clone)]
pub struct String<'a, P: Policy = Fast> {
    vec: Vec<'a, u8, P>,
}

/// The error of [`String::from_utf8`]: the bytes were not UTF-8; they come
/// back with it.
#[derive(Debug)]
pub struct FromUtf8Error<'a, P: Policy = Fast> {
    bytes: Vec<'a, u8, P>,
    error: core::str::Utf8Error,
}

impl<'a, P: Policy> FromUtf8Error<'a, P> {
    /// The bytes that were not UTF-8.
    pub fn into_bytes(self) -> Vec<'a, u8, P> {
        self.bytes
    }

    /// Where the bytes stopped being UTF-8.
    pub fn utf8_error(&self) -> core::str::Utf8Error {
        self.error
    }
}

impl<P: Policy> fmt::Display for FromUtf8Error<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<'a, P: Policy> String<'a, P> {
    /// An empty string; allocates nothing.
    #[inline]
    pub fn new_in(arena: &'a Arena<P>) -> Self {
        String { vec: Vec::new_in(arena) }
    }

    /// An empty string with room for `capacity` bytes.
    pub fn with_capacity_in(capacity: usize, arena: &'a Arena<P>) -> Self {
        String { vec: Vec::with_capacity_in(capacity, arena) }
    }

    /// A copy of `s` in the arena.
    pub fn from_str_in(s: &str, arena: &'a Arena<P>) -> Self {
        let mut out = Self::with_capacity_in(s.len(), arena);
        out.push_str(s);
        out
    }

    /// The bytes as a string, or the error with the bytes when they are not
    /// UTF-8.
    pub fn from_utf8(bytes: Vec<'a, u8, P>) -> Result<Self, FromUtf8Error<'a, P>> {
        match core::str::from_utf8(&bytes) {
            Ok(_) => Ok(String { vec: bytes }),
            Err(error) => Err(FromUtf8Error { bytes, error }),
        }
    }

    /// The bytes as a string, with invalid sequences replaced by U+FFFD.
    pub fn from_utf8_lossy_in(bytes: &[u8], arena: &'a Arena<P>) -> Self {
        let mut out = Self::with_capacity_in(bytes.len(), arena);
        for chunk in bytes.utf8_chunks() {
            out.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
        out
    }

    /// The bytes as a string, unchecked.
    ///
    /// # Safety
    /// `bytes` is valid UTF-8.
    pub unsafe fn from_utf8_unchecked(bytes: Vec<'a, u8, P>) -> Self {
        String { vec: bytes }
    }

    /// The arena the buffer lives in (bumpalo's name).
    pub fn bump(&self) -> &'a Arena<P> {
        self.vec.arena()
    }

    /// Bytes held.
    #[inline]
    pub fn len(&self) -> usize {
        self.vec.len()
    }

    /// Whether the string is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.vec.is_empty()
    }

    /// Bytes the buffer holds without growing.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.vec.capacity()
    }

    /// Makes room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.vec.reserve(additional);
    }

    /// Makes room for exactly `additional` more bytes.
    pub fn reserve_exact(&mut self, additional: usize) {
        self.vec.reserve_exact(additional);
    }

    /// Like [`reserve`](Self::reserve), with `Err(AllocError)` instead of a
    /// panic.
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), AllocError> {
        self.vec.try_reserve(additional)
    }

    /// Gives unused capacity back when the buffer is the arena's newest
    /// block.
    pub fn shrink_to_fit(&mut self) {
        self.vec.shrink_to_fit();
    }

    /// Appends `s`.
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        self.vec.extend_from_slice_copy(s.as_bytes());
    }

    /// Appends `s`, or gives `Err(AllocError)` (and changes nothing).
    #[inline]
    pub fn try_push_str(&mut self, s: &str) -> Result<(), AllocError> {
        self.vec.try_reserve(s.len())?;
        self.vec.extend_from_slice_copy(s.as_bytes());
        Ok(())
    }

    /// Appends `c`.
    #[inline]
    pub fn push(&mut self, c: char) {
        if (c as u32) < 0x80 {
            self.vec.push(c as u8);
        } else {
            self.push_str(c.encode_utf8(&mut [0; 4]));
        }
    }

    /// Appends `c`, or gives `Err(AllocError)`.
    #[inline]
    pub fn try_push(&mut self, c: char) -> Result<(), AllocError> {
        self.try_push_str(c.encode_utf8(&mut [0; 4]))
    }

    /// Removes and returns the last character.
    pub fn pop(&mut self) -> Option<char> {
        let c = self.chars().next_back()?;
        self.vec.truncate(self.len() - c.len_utf8());
        Some(c)
    }

    /// Shortens to `new_len` bytes. Panics if `new_len` is not on a
    /// character boundary.
    pub fn truncate(&mut self, new_len: usize) {
        if new_len < self.len() {
            assert!(self.is_char_boundary(new_len), "String::truncate: not a char boundary");
            self.vec.truncate(new_len);
        }
    }

    /// Empties the string, keeping the buffer.
    pub fn clear(&mut self) {
        self.vec.clear();
    }

    /// Inserts `c` at byte `index`. Panics if `index` is not a character
    /// boundary.
    pub fn insert(&mut self, index: usize, c: char) {
        self.insert_str(index, c.encode_utf8(&mut [0; 4]));
    }

    /// Inserts `s` at byte `index`. Panics if `index` is not a character
    /// boundary.
    pub fn insert_str(&mut self, index: usize, s: &str) {
        assert!(self.is_char_boundary(index), "String::insert_str: not a char boundary");
        let tail = self.vec.split_off(index);
        self.vec.extend_from_slice_copy(s.as_bytes());
        self.vec.extend_from_slice_copy(&tail);
    }

    /// Removes the character at byte `index`. Panics if `index` is not the
    /// start of a character.
    pub fn remove(&mut self, index: usize) -> char {
        let c = self[index..].chars().next().expect("String::remove: index at the end");
        let n = c.len_utf8();
        self.vec.drain(index..index + n);
        c
    }

    /// Keeps the characters for which `f` is true.
    pub fn retain(&mut self, mut f: impl FnMut(char) -> bool) {
        let mut kept = Self::with_capacity_in(self.len(), self.bump());
        for c in self.chars() {
            if f(c) {
                kept.push(c);
            }
        }
        *self = kept;
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes are UTF-8 (the type's invariant).
        unsafe { core::str::from_utf8_unchecked(&self.vec) }
    }

    /// The text, mutably.
    #[inline]
    pub fn as_mut_str(&mut self) -> &mut str {
        // SAFETY: as in `as_str`; `str`'s methods keep the bytes UTF-8.
        unsafe { core::str::from_utf8_unchecked_mut(&mut self.vec) }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.vec
    }

    /// The bytes, as a vector.
    pub fn into_bytes(self) -> Vec<'a, u8, P> {
        self.vec
    }

    /// The text, frozen as a shared `str` that lives as long as the arena's
    /// borrow.
    pub fn into_bump_str(self) -> &'a str {
        self.into_bump_str_mut()
    }

    /// The text, frozen as a `&'a mut str`.
    pub fn into_bump_str_mut(self) -> &'a mut str {
        let bytes = self.vec.into_slice();
        // SAFETY: the bytes are UTF-8 (the type's invariant).
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// Formats `args` onto the end, or gives `Err(AllocError)` when the
    /// buffer cannot grow (what was written before stays).
    pub fn try_write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), AllocError> {
        if let Some(s) = args.as_str() {
            return self.try_push_str(s);
        }
        struct Out<'s, 'a, P: Policy>(&'s mut String<'a, P>, bool);
        impl<P: Policy> fmt::Write for Out<'_, '_, P> {
            #[inline]
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0.try_push_str(s).map_err(|_| {
                    self.1 = true;
                    fmt::Error
                })
            }
        }
        let mut out = Out(self, false);
        if fmt::write(&mut out, args).is_err() && out.1 {
            return Err(AllocError);
        }
        Ok(())
    }

    /// What [`format!`](crate::format) calls: formats onto the end, and
    /// panics (through `handle_alloc_error`) when memory runs out.
    #[doc(hidden)]
    pub fn write_fmt_or_oom(&mut self, args: fmt::Arguments<'_>) {
        if self.try_write_fmt(args).is_err() {
            crate::init::oom(core::alloc::Layout::new::<u8>());
        }
    }
}

impl<P: Policy> Deref for String<'_, P> {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<P: Policy> DerefMut for String<'_, P> {
    #[inline]
    fn deref_mut(&mut self) -> &mut str {
        self.as_mut_str()
    }
}

impl<P: Policy> fmt::Write for String<'_, P> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }

    #[inline]
    fn write_char(&mut self, c: char) -> fmt::Result {
        self.push(c);
        Ok(())
    }
}

impl<P: Policy> fmt::Display for String<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<P: Policy> fmt::Debug for String<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<P: Policy, Q: Policy> PartialEq<String<'_, Q>> for String<'_, P> {
    fn eq(&self, other: &String<'_, Q>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<P: Policy> PartialEq<str> for String<'_, P> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<P: Policy> PartialEq<&str> for String<'_, P> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<P: Policy> PartialEq<String<'_, P>> for str {
    fn eq(&self, other: &String<'_, P>) -> bool {
        self == other.as_str()
    }
}

impl<P: Policy> PartialEq<String<'_, P>> for &str {
    fn eq(&self, other: &String<'_, P>) -> bool {
        *self == other.as_str()
    }
}

impl<P: Policy> Eq for String<'_, P> {}

impl<P: Policy> PartialOrd for String<'_, P> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<P: Policy> Ord for String<'_, P> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<P: Policy> core::hash::Hash for String<'_, P> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl<P: Policy> AsRef<str> for String<'_, P> {
    fn as_ref(&self) -> &str {
        self
    }
}

impl<P: Policy> AsRef<[u8]> for String<'_, P> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<P: Policy> core::borrow::Borrow<str> for String<'_, P> {
    fn borrow(&self) -> &str {
        self
    }
}

impl<P: Policy> Extend<char> for String<'_, P> {
    fn extend<I: IntoIterator<Item = char>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for c in iter {
            self.push(c);
        }
    }
}

impl<'s, P: Policy> Extend<&'s str> for String<'_, P> {
    fn extend<I: IntoIterator<Item = &'s str>>(&mut self, iter: I) {
        for s in iter {
            self.push_str(s);
        }
    }
}

impl<'s, P: Policy> Extend<&'s char> for String<'_, P> {
    fn extend<I: IntoIterator<Item = &'s char>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<'a, P: Policy> FromIteratorIn<char> for String<'a, P> {
    type Alloc = &'a Arena<P>;
    fn from_iter_in<I: IntoIterator<Item = char>>(iter: I, arena: &'a Arena<P>) -> Self {
        let mut s = String::new_in(arena);
        s.extend(iter);
        s
    }
}

impl<'a, 's, P: Policy> FromIteratorIn<&'s str> for String<'a, P> {
    type Alloc = &'a Arena<P>;
    fn from_iter_in<I: IntoIterator<Item = &'s str>>(iter: I, arena: &'a Arena<P>) -> Self {
        let mut s = String::new_in(arena);
        s.extend(iter);
        s
    }
}

impl<P: Policy> core::ops::Add<&str> for String<'_, P> {
    type Output = Self;
    fn add(mut self, rhs: &str) -> Self {
        self.push_str(rhs);
        self
    }
}

impl<P: Policy> core::ops::AddAssign<&str> for String<'_, P> {
    fn add_assign(&mut self, rhs: &str) {
        self.push_str(rhs);
    }
}
